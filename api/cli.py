"""The `kgedit` command line: thin commands over `workers`, `kg` and `editor`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from api.cli_ask import ask
from api.cli_concepts import concept_anchor
from api.cli_output import (
    AsJson,
    OutputPath,
    console,
    errors,
    fail,
    note,
    print_fields,
    print_json,
    read_json_file,
)
from api.cli_requests import edit, unlearn
from api.cli_server import keys_app, serve
from api.cli_stats import stats_app, translate_hparams
from api.cli_sync import sync_app
from editor.knowledge.presets import DEFAULT_PRESET
from workers.progress_bar import progress_bar

app = typer.Typer(
    name="kgedit",
    help="Keep a language model's knowledge in line with a knowledge graph.",
    no_args_is_help=True,
)
app.command("serve")(serve)
app.command("ask")(ask)
app.command("edit")(edit)
app.command("unlearn")(unlearn)
app.command("concept-anchor")(concept_anchor)
app.add_typer(keys_app, name="keys")
app.add_typer(sync_app, name="sync")
app.add_typer(stats_app, name="stats")
app.command("translate-hparams")(translate_hparams)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@app.command("import")
def import_cmd(
    source: Annotated[str, typer.Argument(help="'evoke', 'synthetic' or a JSONL file of facts")],
    graph: Annotated[str | None, typer.Option(help="graph store URL")] = None,
    limit: Annotated[
        int | None, typer.Option(help="EVOKE: only the first N cases of each file")
    ] = None,
    people: Annotated[int, typer.Option(min=1, help="synthetic: number of people")] = 200,
    seed: Annotated[int, typer.Option(help="synthetic: seed of the world")] = 0,
    as_json: AsJson = False,
) -> None:
    """Import EVOKE, the synthetic world or a JSONL file of facts into the graph store."""
    from kg.errors import KGError
    from kg.importers.evoke import import_evoke
    from kg.importers.synthetic import import_synthetic
    from kg.io_jsonl import import_jsonl
    from kg.store import open_store
    from workers.errors import DataSetMissingError
    from workers.settings import get_settings

    settings = get_settings()
    store = open_store(graph or settings.graph_store_url)
    try:
        if source == "evoke":
            summary = import_evoke(
                store, settings.evoke_main, settings.evoke_subj_spec, limit=limit
            )
        elif source == "synthetic":
            summary = import_synthetic(store, n_people=people, seed=seed)
        else:
            if not Path(source).is_file():
                fail(f"no such file: {source}")
            summary = import_jsonl(store, source, "cli", "kgedit import")
    except (KGError, DataSetMissingError) as exc:
        fail(str(exc))
    data = summary.__dict__ if hasattr(summary, "__dict__") else summary
    if as_json:
        print_json(data)
    else:
        print_fields(data)


@app.command("export")
def export_cmd(
    dest: Annotated[Path, typer.Argument(help="JSONL file to write")],
    graph: Annotated[str | None, typer.Option(help="graph store URL")] = None,
    as_json: AsJson = False,
) -> None:
    """Export the graph's relations, entities and facts as JSONL."""
    from kg.io_jsonl import export_jsonl
    from kg.store import open_store
    from workers.settings import get_settings

    store = open_store(graph or get_settings().graph_store_url)
    n = export_jsonl(store, dest)
    if as_json:
        print_json({"path": str(dest), "facts": n})
    else:
        console.print(f"wrote {n} facts to {dest}", markup=False, soft_wrap=True)


@app.command("train-model")
def train_model(
    out: Annotated[Path, typer.Option(help="output model directory")],
    preset: Annotated[
        str, typer.Option(help="tiny (1-2 min), small (6-9 min) or base; see the first line")
    ] = DEFAULT_PRESET,
    graph: Annotated[str | None, typer.Option(help="graph store URL")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    max_subjects: Annotated[int | None, typer.Option(help="train on the first N subjects")] = None,
    as_json: AsJson = False,
) -> None:
    """Train a knowledge model on the graph's facts and save it as an HF directory."""
    from editor.knowledge.presets import get_preset, training_time
    from editor.knowledge.train import train_knowledge_model
    from kg.store import open_store
    from workers.graph_models import graph_facts, subset_by_subjects
    from workers.settings import get_settings

    try:
        spec = get_preset(preset)
    except ValueError as exc:
        fail(str(exc))
    store = open_store(graph or get_settings().graph_store_url)
    facts = graph_facts(store)
    if max_subjects:
        facts = subset_by_subjects(facts, max_subjects)
    if not facts:
        fail("the graph holds no facts; run `kgedit import evoke` first")
    default = " (the default; --preset tiny|small|base)" if preset == DEFAULT_PRESET else ""
    note(
        f"training preset {spec.name!r}{default} on {len(facts)} facts: {spec.steps:,} steps, "
        f"{training_time(spec.name)}"
    )
    with progress_bar("training", spec.steps) as update:
        report = train_knowledge_model(facts, spec, out, seed=seed, progress=update)
    if as_json:
        print_json(report.to_dict())
    else:
        print_fields(report.to_dict())


@app.command()
def trace(
    model: Annotated[Path, typer.Option(help="model directory")],
    graph: Annotated[str | None, typer.Option(help="graph store URL")] = None,
    n: Annotated[int, typer.Option(help="number of facts to trace")] = 60,
    samples: Annotated[int, typer.Option(help="noise samples per fact")] = 10,
    plot: Annotated[Path | None, typer.Option(help="write a PNG heat map here")] = None,
    as_json: AsJson = False,
) -> None:
    """Causal tracing: print the indirect effect per layer and token bucket."""
    from editor.errors import EditorError
    from editor.loading import load_model
    from editor.trace import KINDS, format_table, plot_trace
    from kg.store import open_store
    from workers.graph_models import known_trace_cases
    from workers.settings import get_settings

    try:
        lm, tok = load_model(model)
    except EditorError as exc:
        fail(str(exc))
    store = open_store(graph or get_settings().graph_store_url)
    from editor.trace import causal_trace

    cases = known_trace_cases(lm, tok, store, n)
    if not cases:
        fail("the model knows none of the graph's facts; nothing to trace")
    with progress_bar("tracing", len(cases)) as update:
        result = causal_trace(lm, tok, cases, samples=samples, progress=lambda i, t: update(i, t))
    if plot:
        plot_trace(result, str(plot))
    if as_json:
        print_json(result.to_dict())
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
    n_edits: Annotated[int, typer.Option(help="number of demo edits")] = 10,
    preset: Annotated[str, typer.Option(help="knowledge model preset")] = "small",
    models_dir: Annotated[
        Path | None,
        typer.Option(help="folder of trained models, reused by input hash (default: var/models)"),
    ] = None,
) -> None:
    """Build the demo graph (EVOKE, else the synthetic world), train or reuse the model,
    apply and revert edits (the default editing method, prepared as a job prepares it)."""
    from workers.demo import run_demo
    from workers.errors import DataSetMissingError

    try:
        run_demo(console, n_edits=n_edits, preset_name=preset, models_dir=models_dir)
    except DataSetMissingError as exc:
        fail(str(exc))


audit_app = typer.Typer(
    help="Audit an edited or unlearned model against the graph (JSON, HTML, table).",
    no_args_is_help=True,
)
app.add_typer(audit_app, name="audit")


def _audit_config(sample: int, seed: int, bootstrap: int, dtype: str):
    """Return the AuditConfig of the common audit options."""
    from editor.probe_scoring import ScoringConfig
    from workers.audit.run import AuditConfig

    if dtype not in {"float32", "bfloat16"}:
        fail(f"--dtype must be float32 or bfloat16, not {dtype!r}")
    return AuditConfig(
        sample_size=sample,
        sample_seed=seed,
        seed=seed,
        bootstrap=bootstrap,
        scoring=ScoringConfig(seed=seed, dtype=dtype),
    )


def _finish_audit(
    report: dict, json_out: Path | None, html_out: Path | None, strict: bool, as_json: bool
) -> None:
    """Validate, write and summarise a report (`--json`: print it whole); exit 1 under
    --strict when it failed."""
    from workers.audit.html import render_html
    from workers.audit.schema import validate_report
    from workers.audit.summary import summary_lines, summary_table

    validate_report(report)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        note(f"wrote {json_out}")
    if html_out:
        html_out.parent.mkdir(parents=True, exist_ok=True)
        html_out.write_text(render_html(report), encoding="utf-8")
        note(f"wrote {html_out}")
    if as_json:
        print_json(report)
    else:
        console.print(summary_table(report))
        for line in summary_lines(report):
            console.print(line)
    if strict and not report["passed"]:
        raise typer.Exit(1)


HtmlOut = Annotated[Path | None, typer.Option("--html", help="write the HTML report here")]
Strict = Annotated[bool, typer.Option(help="exit with status 1 when a threshold fails")]
SampleN = Annotated[int, typer.Option("--sample", help="untouched facts in the sample audit")]
Seed = Annotated[int, typer.Option(help="seed of the sample, bootstrap and fluency sampling")]
Boot = Annotated[int, typer.Option(help="bootstrap resamples")]
Dtype = Annotated[str, typer.Option(help="scoring precision: float32 or bfloat16")]


@audit_app.command("run")
def audit_run(
    edits: Annotated[int, typer.Option(help="number of demo edits to apply and audit")] = 10,
    model: Annotated[Path | None, typer.Option(help="model directory (default: demo)")] = None,
    graph: Annotated[str | None, typer.Option(help="graph store URL")] = None,
    preset: Annotated[str, typer.Option(help="knowledge preset for the default model")] = "small",
    cases: Annotated[int, typer.Option(help="EVOKE cases per file to draw edits from")] = 100,
    save_deltas: Annotated[Path | None, typer.Option(help="save the deltas here")] = None,
    sample: SampleN = 1000,
    seed: Seed = 0,
    bootstrap: Boot = 1000,
    dtype: Dtype = "float32",
    json_out: OutputPath = None,
    html_out: HtmlOut = None,
    strict: Strict = False,
    as_json: AsJson = False,
) -> None:
    """Apply EVOKE edits in sequence (the default editing method), audit them against the
    graph, revert them."""
    from workers.audit.jobs import edit_and_audit

    config = _audit_config(sample, seed, bootstrap, dtype)
    if model is None or graph is None:
        from workers.demo import prepare
        from workers.demo_graph import demo_graph_url
        from workers.settings import get_settings

        setup = prepare(errors, preset)
        model = model or setup.model_dir
        graph = graph or demo_graph_url(get_settings())
    with progress_bar("audit", 1) as update:
        report = edit_and_audit(
            model,
            graph,
            n_edits=edits,
            n_cases=cases,
            preset=preset,
            config=config,
            save_deltas=save_deltas,
            progress=lambda stage, done, total: update(done, total),
        )
    _finish_audit(report, json_out, html_out, strict, as_json)


@audit_app.command("sample")
def audit_sample(
    model: Annotated[Path, typer.Option(help="base model directory")],
    delta: Annotated[
        list[Path] | None, typer.Option(help="delta file of the version, in order (repeat)")
    ] = None,
    graph: Annotated[str | None, typer.Option(help="graph store URL")] = None,
    sample: SampleN = 1000,
    seed: Seed = 0,
    bootstrap: Boot = 1000,
    dtype: Dtype = "float32",
    json_out: OutputPath = None,
    html_out: HtmlOut = None,
    strict: Strict = False,
    as_json: AsJson = False,
) -> None:
    """Whole-graph sample audit of any version: the base model vs base + its delta chain."""
    from editor.errors import EditorError
    from workers.audit.jobs import audit_version
    from workers.settings import get_settings

    for path in delta or []:
        if not path.is_file():
            fail(f"no such delta file: {path}")
    config = _audit_config(sample, seed, bootstrap, dtype)
    try:
        report = audit_version(model, delta or [], graph or get_settings().graph_store_url, config)
    except EditorError as exc:
        fail(str(exc))
    _finish_audit(report, json_out, html_out, strict, as_json)


@audit_app.command("show")
def audit_show(
    report: Annotated[Path, typer.Argument(help="a JSON audit report")],
    html_out: HtmlOut = None,
    as_json: AsJson = False,
) -> None:
    """Print the summary of a saved report (and render it as HTML with --html)."""
    import jsonschema

    data = read_json_file(report, "a valid audit report")
    try:
        _finish_audit(data, None, html_out, strict=False, as_json=as_json)
    except (ValueError, jsonschema.ValidationError) as exc:
        fail(f"{report} is not a valid audit report: {str(exc).splitlines()[0]}")


@audit_app.command("schema")
def audit_schema() -> None:
    """Print the JSON Schema of the audit report."""
    from workers.audit.schema import SCHEMA

    print(json.dumps(SCHEMA, indent=1))


from api.cli_jobs import register as _register_jobs  # noqa: E402

_register_jobs(app)


@app.callback()
def main_options(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="log the metadata migrations at INFO")
    ] = False,
) -> None:
    """Keep a language model's knowledge in line with a knowledge graph."""
    if verbose:
        from workers.settings import get_settings

        os.environ["KGEDIT_LOG_LEVEL"] = "INFO"
        get_settings.cache_clear()


def main() -> None:
    """Entry point for `python -m api.cli`."""
    app()


if __name__ == "__main__":
    main()
