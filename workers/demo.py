"""`kgedit demo`: the main job end to end on the embedded defaults.

1. build the demo graph (`workers.demo_graph`: EVOKE when present, the synthetic world
   otherwise) in the configured store;
2. train the `small` knowledge model on its facts, or reuse the cached one;
3. apply counterfactual edits (EVOKE's own where present) with the default editing method
   (`default_method("edit")`), prepared by `editor.prepare` as a job is, one after another;
4. print rewrite, paraphrase, neighbourhood and same-subject accuracy before and after;
5. revert every edit and show that the weights match the original checksum bit for bit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from contracts.types import EditRequest
from editor.knowledge.presets import get_preset
from editor.loading import load_model, state_checksum, weights_sha256
from editor.methods import default_method, method_layers
from editor.prepare import Prepared
from kg.store import GraphStore
from workers.demo_graph import DEMO_CASES, EVOKE, demo_graph
from workers.edit_run import KIND_ORDER, probes_for, run_edits, select_known_edits
from workers.graph_models import load_report, prepare_on_graph, train_or_reuse
from workers.progress_bar import progress_bar
from workers.settings import get_settings


@dataclass
class EditSetup:
    """What an edit run starts from: the graph, its knowledge model and the EVOKE edits."""

    store: GraphStore
    facts: list
    model_dir: Path
    model: Any
    tokenizer: Any
    model_key: str
    preset: str
    cases: list[EditRequest]
    source: str  # the graph: "evoke" or "synthetic" (`workers.demo_graph`)

    def prepare(
        self,
        method: str,
        overrides: Any = None,
        progress: Callable[[float, str], None] | None = None,
    ) -> Prepared:
        """Return `method` prepared for this model as the job runner prepares it."""
        return prepare_on_graph(
            method,
            self.model,
            self.tokenizer,
            self.facts,
            self.model_key,
            self.preset,
            overrides,
            progress,
        )


def prepare(
    console: Console,
    preset_name: str = "small",
    n_cases: int = DEMO_CASES,
    models_dir: Path | None = None,
) -> EditSetup:
    """Build or open the EVOKE graph, train or reuse the model, load it and pick the edits."""
    settings = get_settings()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    graph = demo_graph(settings, n_cases)
    console.print(graph.describe())
    store, facts = graph.store, graph.facts

    preset = get_preset(preset_name)
    with progress_bar(f"training {preset.name} model", preset.steps) as update:
        model_dir, report = train_or_reuse(
            facts, preset, models_dir or settings.models_dir, progress=update
        )
    info = load_report(model_dir)
    console.print(
        f"model: {model_dir} ({'trained' if report else 'cached'}; {info['n_params']:,} params, "
        f"top-1 {info['accuracy_train_template']:.1%} on training templates, "
        f"{info['accuracy_heldout_template']:.1%} on held-out ones)"
    )
    model, tok = load_model(model_dir, device=settings.device)
    cases = interleave_sets(graph.cases)
    key = weights_sha256(model_dir)
    return EditSetup(store, facts, model_dir, model, tok, key, preset_name, cases, graph.source)


def interleave_sets(cases: list[EditRequest]) -> list[EditRequest]:
    """Alternate main-set and subject-specificity cases, so any prefix holds both kinds."""
    subj = [c for c in cases if (c.request_id or "").startswith("evoke-subj-")]
    main = [c for c in cases if c not in subj]
    out: list[EditRequest] = []
    for i in range(max(len(main), len(subj))):
        out += main[i : i + 1] + subj[i : i + 1]
    return out


def rates_table(title: str, rates: dict) -> Table:
    """Return a rich table of per-kind probe accuracy before and after."""
    table = Table(title=title)
    for col in ("probe", "n", "before", "after"):
        table.add_column(col, justify="right" if col != "probe" else "left")
    for kind in KIND_ORDER:
        if kind in rates:
            r = rates[kind]
            table.add_row(kind, str(r["n"]), f"{r['before']:.1%}", f"{r['after']:.1%}")
    return table


def run_demo(
    console: Console,
    n_edits: int = 10,
    preset_name: str = "small",
    n_cases: int = DEMO_CASES,
    models_dir: Path | None = None,
) -> dict:
    """Run the demo and print its tables; return the figures."""
    started = time.perf_counter()
    setup = prepare(console, preset_name, n_cases, models_dir)
    model, tok = setup.model, setup.tokenizer
    method = default_method("edit")
    t0 = time.perf_counter()
    ready = setup.prepare(method)
    prepare_seconds = time.perf_counter() - t0
    base_checksum = state_checksum(model)
    edits = select_known_edits(model, tok, setup.cases, n_edits)
    if not edits:
        raise RuntimeError("the model knows none of the demo edits' true objects; retrain it")
    probes = [probes_for(setup.store, tok, r, batch=edits) for r in edits]
    with progress_bar(f"{method} edits", len(edits)) as update:
        run = run_edits(
            model, tok, edits, probes, ready, mode="sequential", progress=lambda i, t: update(i, t)
        )
    rates = run.rates()
    graph_name = "EVOKE" if setup.source == EVOKE else "synthetic-world"
    layers = ", ".join(str(layer) for layer in method_layers(ready.hparams))
    title = f"{len(edits)} {graph_name} edits with {method} (layer {layers}), applied in sequence"
    console.print(rates_table(title, rates))
    timings = run.mean_timings()
    stats = ready.second_moment
    cached = stats is None or all(stats(layer).from_cache for layer in method_layers(ready.hparams))
    console.print(
        f"seconds per edit: {timings['total']:.2f} (key {timings.get('key', 0):.2f}, "
        f"v* {timings.get('v_star', 0):.2f}, solve {timings.get('solve', 0):.3f}); "
        + ("statistics from cache" if cached else f"preparation {prepare_seconds:.1f} s once")
    )
    for request in edits[:3]:
        console.print(
            f"  {request.rendered()} … {request.target_true} → [bold]{request.target_new}[/]"
        )
    for delta in reversed(run.deltas):
        delta.revert(model)
    restored = state_checksum(model)
    same = restored == base_checksum
    console.print(
        f"reverted {len(run.deltas)} deltas: checksum {restored[:16]}… "
        + ("[bold green]matches[/] the original" if same else "[bold red]DIFFERS[/]")
    )
    console.print(f"demo took {time.perf_counter() - started:.0f} s")
    if not same:
        raise RuntimeError("reverting the deltas did not restore the weights")
    return {"rates": rates, "timings": timings, "reverted": same, "n_edits": len(edits)}
