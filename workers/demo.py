"""`kgedit demo`: the main job end to end on the embedded defaults.

1. build the EVOKE graph (a subset that trains within the time budget) in the SQL store;
2. train the `small` knowledge model on its facts, or reuse the cached one;
3. apply real EVOKE edits with ROME, one after another;
4. print rewrite, paraphrase, neighbourhood and same-subject accuracy before and after;
5. revert every edit and show that the weights match the original checksum bit for bit.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

import torch
from rich.console import Console
from rich.table import Table

from api.progress import progress_bar
from editor.context import context_templates
from editor.knowledge.corpus import statement
from editor.knowledge.presets import get_preset
from editor.loading import load_model, state_checksum, weights_sha256
from editor.methods.rome import RomeHyperParams
from editor.stats import layer_second_moment
from kg.importers.evoke import evoke_cases
from kg.store.sql import SqlGraphStore
from workers.edit_run import KIND_ORDER, probes_for, run_edits, select_known_edits
from workers.knowledge import build_evoke_graph, graph_facts, load_report, train_or_reuse
from workers.settings import get_settings

# EVOKE cases per file in the demo graph: the subset the `small` preset learns in its budget.
DEMO_CASES = 150


def demo_store(settings) -> SqlGraphStore:
    """Return the demo's graph store (its own SQLite file unless a URL is configured)."""
    url = settings.graph_url or f"sqlite:///{settings.var_dir / 'demo' / 'kg.sqlite'}"
    return SqlGraphStore(url)


def rome_hparams_for(preset_name: str) -> RomeHyperParams:
    """Return ROME hyper-parameters for a knowledge-model preset (layer from the trace)."""
    preset = get_preset(preset_name)
    return RomeHyperParams(layer=preset.edit_layer, mom2_n_samples=20_000)


def corpus_statements(facts) -> list[str]:
    """Return the graph's verbalised facts, the default corpus of the second moment."""
    texts = []
    for f in facts:
        for template in f.templates[:4]:
            texts.append(statement(template, f.subject, f.object))
    return texts


def run_demo(console: Console, n_edits: int = 10, preset_name: str = "small") -> dict:
    """Run the demo and print its tables; return the figures."""
    settings = get_settings()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    store = demo_store(settings)
    summary = build_evoke_graph(
        store, settings.evoke_main, settings.evoke_subj_spec, limit=DEMO_CASES
    )
    if summary is not None:
        console.print(
            f"graph: imported {summary.facts} facts, {summary.entities} entities "
            f"from {summary.cases_main}+{summary.cases_subj} EVOKE cases"
        )
    facts = graph_facts(store)
    console.print(f"graph: {len(facts)} current facts in {store.url}")

    preset = get_preset(preset_name)
    with progress_bar(f"training {preset.name} model", preset.steps) as update:
        model_dir, report = train_or_reuse(facts, preset, settings.models_dir, progress=update)
    info = load_report(model_dir)
    console.print(
        f"model: {model_dir} ({'trained' if report else 'cached'}; {info['n_params']:,} params, "
        f"top-1 {info['accuracy_train_template']:.1%} on training templates, "
        f"{info['accuracy_heldout_template']:.1%} on held-out ones)"
    )

    model, tok = load_model(model_dir)
    base_checksum = state_checksum(model)
    cases = evoke_cases(settings.evoke_main, settings.evoke_subj_spec, limit=DEMO_CASES)
    edits = select_known_edits(model, tok, cases, n_edits)
    if not edits:
        raise RuntimeError("the model knows none of the EVOKE edit subjects; retrain it")
    probes = [probes_for(store, tok, facts, r) for r in edits]

    hparams = rome_hparams_for(preset_name)
    key = weights_sha256(model_dir)
    sm = layer_second_moment(
        model,
        tok,
        hparams.layer,
        corpus_statements(facts),
        n_samples=hparams.mom2_n_samples,
        cache_dir=settings.cache_dir / "stats",
        model_key=key,
    )
    ctx = context_templates(
        model,
        tok,
        hparams.context_template_length_params,
        model_key=key,
        cache_dir=settings.cache_dir / "context",
    )
    with progress_bar("ROME edits", len(edits)) as update:
        run = run_edits(
            model,
            tok,
            edits,
            probes,
            replace(hparams),
            sm,
            ctx,
            mode="sequential",
            progress=lambda i, t: update(i, t),
        )

    table = Table(title=f"{len(edits)} EVOKE edits with ROME (layer {hparams.layer}), sequential")
    for col in ("probe", "n", "before", "after"):
        table.add_column(col, justify="right" if col != "probe" else "left")
    rates = run.rates()
    for kind in KIND_ORDER:
        if kind in rates:
            r = rates[kind]
            table.add_row(kind, str(r["n"]), f"{r['before']:.1%}", f"{r['after']:.1%}")
    console.print(table)
    timings = run.mean_timings()
    console.print(
        "seconds per edit: "
        + ", ".join(f"{k} {v:.2f}" for k, v in timings.items() if k != "context")
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
    return {"rates": rates, "timings": timings, "reverted": same}
