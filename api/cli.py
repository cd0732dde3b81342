"""The `kgedit` command line: thin commands over `workers`, `kg` and `editor`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from api.progress import progress_bar

app = typer.Typer(
    name="kgedit",
    help="Keep a language model's knowledge in line with a knowledge graph.",
    no_args_is_help=True,
)
console = Console()

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _fail(message: str) -> None:
    """Print an error and exit with status 2."""
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


@app.command("import")
def import_cmd(
    source: Annotated[str, typer.Argument(help="'evoke' or a JSONL file of facts")],
    graph: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the graph store")] = None,
    limit: Annotated[
        int | None, typer.Option(help="EVOKE: only the first N cases of each file")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Import EVOKE or a JSONL file of facts into the graph store."""
    from kg.errors import KGError
    from kg.importers.evoke import import_evoke
    from kg.io_jsonl import import_jsonl
    from kg.store.sql import SqlGraphStore
    from workers.settings import get_settings

    settings = get_settings()
    store = SqlGraphStore(graph or settings.graph_store_url)
    try:
        if source == "evoke":
            summary = import_evoke(
                store, settings.evoke_main, settings.evoke_subj_spec, limit=limit
            )
        else:
            if not Path(source).is_file():
                _fail(f"no such file: {source}")
            summary = import_jsonl(store, source, "cli", "kgedit import")
    except KGError as exc:
        _fail(str(exc))
    data = summary.__dict__ if hasattr(summary, "__dict__") else summary
    if as_json:
        console.print_json(json.dumps(data, default=str))
    else:
        for key, value in data.items():
            console.print(f"{key}: {value}")


@app.command("export")
def export_cmd(
    dest: Annotated[Path, typer.Argument(help="JSONL file to write")],
    graph: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the graph store")] = None,
) -> None:
    """Export the graph's relations, entities and facts as JSONL."""
    from kg.io_jsonl import export_jsonl
    from kg.store.sql import SqlGraphStore
    from workers.settings import get_settings

    store = SqlGraphStore(graph or get_settings().graph_store_url)
    n = export_jsonl(store, dest)
    console.print(f"wrote {n} facts to {dest}")


@app.command("train-model")
def train_model(
    out: Annotated[Path, typer.Option(help="output model directory")],
    preset: Annotated[str, typer.Option(help="tiny, small or base")] = "small",
    graph: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the graph store")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    max_subjects: Annotated[int | None, typer.Option(help="train on the first N subjects")] = None,
) -> None:
    """Train a knowledge model on the graph's facts and save it as an HF directory."""
    from editor.knowledge.presets import get_preset
    from editor.knowledge.train import train_knowledge_model
    from kg.store.sql import SqlGraphStore
    from workers.knowledge import graph_facts, subset_by_subjects
    from workers.settings import get_settings

    try:
        spec = get_preset(preset)
    except ValueError as exc:
        _fail(str(exc))
    store = SqlGraphStore(graph or get_settings().graph_store_url)
    facts = graph_facts(store)
    if max_subjects:
        facts = subset_by_subjects(facts, max_subjects)
    if not facts:
        _fail("the graph holds no facts; run `kgedit import evoke` first")
    console.print(f"training preset {spec.name!r} on {len(facts)} facts")
    with progress_bar("training", spec.steps) as update:
        report = train_knowledge_model(facts, spec, out, seed=seed, progress=update)
    console.print_json(json.dumps(report.to_dict()))


@app.command()
def trace(
    model: Annotated[Path, typer.Option(help="model directory")],
    graph: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the graph store")] = None,
    n: Annotated[int, typer.Option(help="number of facts to trace")] = 60,
    samples: Annotated[int, typer.Option(help="noise samples per fact")] = 10,
    plot: Annotated[Path | None, typer.Option(help="write a PNG heat map here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Causal tracing: print the indirect effect per layer and token bucket."""
    from editor.errors import EditorError
    from editor.loading import load_model
    from editor.trace import KINDS, format_table, plot_trace
    from kg.store.sql import SqlGraphStore
    from workers.knowledge import known_trace_cases
    from workers.settings import get_settings

    try:
        lm, tok = load_model(model)
    except EditorError as exc:
        _fail(str(exc))
    store = SqlGraphStore(graph or get_settings().graph_store_url)
    from editor.trace import causal_trace

    cases = known_trace_cases(lm, tok, store, n)
    if not cases:
        _fail("the model knows none of the graph's facts; nothing to trace")
    with progress_bar("tracing", len(cases)) as update:
        result = causal_trace(lm, tok, cases, samples=samples, progress=lambda i, t: update(i, t))
    if plot:
        plot_trace(result, str(plot))
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
        return
    console.print(
        f"{result.n_cases} facts, p(clean) {result.p_clean:.3f}, "
        f"p(corrupted) {result.p_corrupt:.3f}"
    )
    for kind in KINDS:
        bucket, layer, value = result.peak(kind)
        console.print(f"\n[bold]restore {kind}[/]: peak {value:.3f} at {bucket}, layer {layer}")
        console.print(format_table(result, kind))


@app.command()
def demo(
    n_edits: Annotated[int, typer.Option(help="number of EVOKE edits")] = 10,
    preset: Annotated[str, typer.Option(help="knowledge model preset")] = "small",
) -> None:
    """Build the EVOKE graph, train or reuse the model, apply and revert ROME edits."""
    from workers.demo import run_demo

    run_demo(console, n_edits=n_edits, preset_name=preset)


def main() -> None:
    """Entry point for `python -m api.cli`."""
    app()


if __name__ == "__main__":
    main()
