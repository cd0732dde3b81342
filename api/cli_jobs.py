"""`kgedit worker`, `kgedit jobs ...`, `kgedit models ...`, `kgedit db upgrade`: thin commands
over `workers.jobs` and `workers.ledger`."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.cli_calibrate import calibrate
from api.cli_output import AsJson, console, errors, fail, print_json, read_json_file, result

jobs_app = typer.Typer(help="Submit, watch, cancel and retry jobs.", no_args_is_help=True)
models_app = typer.Typer(help="Registered models and their versions.", no_args_is_help=True)
db_app = typer.Typer(help="The metadata database and the graph store.", no_args_is_help=True)

IdemKey = Annotated[str | None, typer.Option(help="idempotency key")]
Wait = Annotated[bool, typer.Option(help="show progress until the job finishes")]
WaitTimeout = Annotated[float, typer.Option(help="seconds to wait with --wait")]


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a workers entry point, turning its errors into a clean CLI failure."""
    from workers.errors import WorkersError

    try:
        return fn(*args, **kwargs)
    except WorkersError as exc:
        fail(str(exc))


# -- worker ----------------------------------------------------------------------------------


def worker(
    model: Annotated[
        list[str] | None,
        typer.Option(
            help="serve this model's queue (repeat; default: all, also those registered later)"
        ),
    ] = None,
    pool: Annotated[str, typer.Option(help="prefork (a child runs the jobs) or solo")] = "prefork",
    loglevel: Annotated[str, typer.Option(help="Celery log level")] = "info",
) -> None:
    """Run a Celery worker: one job at a time from each given model's queue."""
    from workers.celery_app import queue_name
    from workers.ledger import list_models

    if pool not in {"prefork", "solo"}:
        fail(f"--pool must be prefork or solo, not {pool!r}")
    names = model or [m.name for m in _call(list_models)]
    from workers.queue_refresh import enable_queue_refresh
    from workers.tasks import app as celery_app

    refresh = not model and enable_queue_refresh(celery_app)
    if not names and not refresh:
        fail("no registered models; run `kgedit models register NAME PATH` first")
    if not names:
        errors.print("no registered models yet: serving each one as it is registered")
    queues = ["--queues", ",".join(queue_name(n) for n in names)] if names else []
    argv = [
        "worker",
        *queues,
        "--concurrency",
        "1",
        "--pool",
        pool,
        "--loglevel",
        loglevel,
        "--hostname",
        f"kgedit-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    celery_app.worker_main(argv)


# -- jobs ------------------------------------------------------------------------------------


def _watch(job_id: str, timeout: float) -> Any:
    """Show a job's progress until it finishes; return its final info."""
    from workers.jobs import get_job

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[message]}"),
        TimeElapsedColumn(),
    )
    deadline = time.monotonic() + timeout
    with Progress(*columns, console=errors) as bar:
        task = bar.add_task(f"job {job_id[:8]}", total=1.0, message="")
        while True:
            info = get_job(job_id)
            bar.update(task, completed=info.progress, description=info.state, message=info.message)
            if info.done or time.monotonic() > deadline:
                return info
            time.sleep(0.5)


@jobs_app.command("submit")
def jobs_submit(
    payload: Annotated[Path, typer.Argument(help="JSON file with the job (JobSpec fields)")],
    hparams: Annotated[
        Path | None,
        typer.Option(
            help="JSON or YAML file of hyper-parameter overrides: the fields, or an object "
            "keyed by method name; its fields replace the payload's `hparams`"
        ),
    ] = None,
    key: IdemKey = None,
    wait: Wait = False,
    timeout: WaitTimeout = 3600.0,
    as_json: AsJson = False,
) -> None:
    """Submit a batch of requests as one job."""
    data = read_json_file(payload)
    if hparams is not None:
        data = with_overrides_file(data, hparams)
    submit_and_report(job_payload(data), key, wait, timeout, as_json)


def job_payload(data: Any) -> dict[str, Any]:
    """Return the job payload of JSON data read through the API's job schema (one schema)."""
    from pydantic import ValidationError

    from api.schemas.jobs import JobCreate
    from api.schemas.requests import first_error

    try:
        return JobCreate.model_validate(data).to_spec()
    except ValidationError as exc:
        fail(f"the job payload is not valid: {first_error(exc)}")
        raise


def with_overrides_file(data: Any, path: Path) -> dict[str, Any]:
    """Return the job payload with the method's overrides from a JSON or YAML file merged in."""
    from workers.jobs.dispatch import overrides_from_file

    if not isinstance(data, dict) or not isinstance(data.get("method"), str):
        fail("the job payload must be a JSON object with a `method` to take --hparams")
    inline = data.get("hparams") or {}
    if not isinstance(inline, dict):
        fail("the job payload's `hparams` must be an object")
    overrides = _call(overrides_from_file, path, data["method"])
    return {**data, "hparams": {**inline, **overrides}}


def print_warnings(job_result: dict[str, Any]) -> None:
    """Print a job's submission warnings (targets the model cannot say) on stderr."""
    for warning in job_result.get("warnings", []):
        errors.print(f"warning: {warning['message']}", markup=False, highlight=False)


def submit_and_report(
    spec: Any, key: str | None, wait: bool, timeout: float, as_json: bool
) -> None:
    """Submit a job; with `wait`, show its progress and exit 1 unless it succeeds."""
    from workers.jobs import submit_job

    info = _call(submit_job, spec, idempotency_key=key)
    if not as_json:  # the JSON document carries them in result.warnings
        print_warnings(info.result)
    if wait:
        info = _watch(info.id, timeout)
    result(info.to_dict(), as_json, f"job {info.id}: {info.state} ({info.message})")
    if wait and info.state != "succeeded":
        raise typer.Exit(1)


@jobs_app.command("show")
def jobs_show(job_id: str, as_json: AsJson = False) -> None:
    """Show a job with its transitions."""
    from workers.jobs import get_job

    info = _call(get_job, job_id)
    if as_json:
        print_json(info.to_dict())
        return
    console.print(
        f"job {info.id} on {info.model} ({info.method}): [bold]{info.state}[/] "
        f"{info.progress:.0%} {info.message}"
    )
    print_warnings(info.result)
    for _, model, waited in _call(unclaimed_job, info.id):
        errors.print(
            f"[yellow]queued {waited:.0f} s ago and no worker has claimed it:[/] is a worker "
            f"serving {model} running? (`kgedit worker` serves every registered model)"
        )
    for t in info.transitions:
        console.print(f"  {t.at.isoformat()}  {t.from_state or '-'} → {t.to_state}  {t.message}")


def unclaimed_job(job_id: str) -> list[tuple[str, str, float]]:
    """Return the job as (id, model, seconds) when no worker took it within a lease."""
    from workers.db import get_database
    from workers.jobs.lease import unclaimed
    from workers.settings import get_settings

    settings = get_settings()
    return unclaimed(get_database(settings.metadata_db_url), settings.job_lease_seconds, job_id)


@jobs_app.command("list")
def jobs_list(
    model: Annotated[str | None, typer.Option(help="only this model")] = None,
    state: Annotated[str | None, typer.Option(help="only this state")] = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 50,
    as_json: AsJson = False,
) -> None:
    """List jobs, newest first."""
    from workers.jobs import list_jobs

    jobs = _call(list_jobs, model=model, state=state, limit=limit)
    if as_json:
        print_json([j.to_dict() for j in jobs])
        return
    table = Table("id", "model", "method", "state", "progress", "created", "message")
    for j in jobs:
        table.add_row(
            j.id[:8],
            j.model,
            j.method,
            j.state,
            f"{j.progress:.0%}",
            j.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            j.message[:60],
        )
    console.print(table)


@jobs_app.command("cancel")
def jobs_cancel(job_id: str, as_json: AsJson = False) -> None:
    """Cancel a queued or running job."""
    from workers.jobs import cancel_job

    info = _call(cancel_job, job_id)
    result(info.to_dict(), as_json, f"job {info.id}: {info.state} ({info.message})")


@jobs_app.command("retry")
def jobs_retry(job_id: str, as_json: AsJson = False) -> None:
    """Queue a failed or cancelled job again."""
    from workers.jobs import retry_job

    info = _call(retry_job, job_id)
    result(info.to_dict(), as_json, f"job {info.id}: {info.state} (run {info.run})")


# -- models ----------------------------------------------------------------------------------


@models_app.command("register")
def models_register(
    name: str,
    path: Path,
    graph: Annotated[str | None, typer.Option(help="graph whose facts feed the statistics")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="follow the graph: every approval plans on it")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Register a local HF model directory (weights hashed, version 0 created)."""
    from workers.ledger import register_model

    info = _call(register_model, name, path, graph_url=graph, follow=follow or None)
    line = f"model {info.name}: {info.path} (weights {info.weights_sha256[:16]}…)"
    if info.follows_graph:
        line += "; follows the graph"
    result(info.to_dict(), as_json, line)


@models_app.command("follow")
def models_follow(
    name: str,
    stop: Annotated[bool, typer.Option("--stop", help="stop following the graph")] = False,
    as_json: AsJson = False,
) -> None:
    """Make a registered model follow the graph (every approved change set is planned on it)."""
    from workers.sync.loop import set_following

    following = _call(set_following, name, not stop)
    line = f"model {name} {'follows' if following else 'no longer follows'} the graph"
    result({"model": name, "follows_graph": following}, as_json, line)


@models_app.command("list")
def models_list(as_json: AsJson = False) -> None:
    """List registered models."""
    from workers.ledger import list_models

    models = _call(list_models)
    if as_json:
        print_json([m.to_dict() for m in models])
        return
    table = Table("name", "head", "versions", "path")
    for m in models:
        table.add_row(m.name, str(m.head_version_id), str(m.n_versions), m.path)
    console.print(table)


@models_app.command("versions")
def models_versions(name: str, as_json: AsJson = False) -> None:
    """List the versions of a model."""
    from workers.ledger import list_versions

    versions = _call(list_versions, name)
    if as_json:
        print_json([v.to_dict() for v in versions])
        return
    table = Table("id", "parent", "depth", "status", "method", "requests", "job", "head")
    for v in versions:
        table.add_row(
            str(v.id),
            str(v.parent_id or "-"),
            str(v.depth),
            v.status,
            v.method or "base",
            ",".join(v.request_ids)[:40],
            (v.job_id or "")[:8],
            "◀" if v.is_head else ("·" if v.on_head_chain else ""),
        )
    console.print(table)


@models_app.command("rollback")
def models_rollback(name: str, version: int, as_json: AsJson = False) -> None:
    """Make an earlier version the head."""
    from workers.ledger import rollback

    info = _call(rollback, name, version)
    line = f"model {name}: head is version {info.id} (checksum {info.checksum[:16]}…)"
    result(info.to_dict(), as_json, line)


@models_app.command("export")
def models_export(
    name: str,
    out: Path,
    version: Annotated[int | None, typer.Option(help="version id (default: the head)")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing directory")] = False,
    as_json: AsJson = False,
) -> None:
    """Export a version as a merged HF directory (safetensors)."""
    from workers.ledger import export_version

    info = _call(export_version, name, version, out, overwrite=overwrite)
    result(info.to_dict(), as_json, f"exported version {info.version_id} of {name} to {info.path}")


@models_app.command("diff")
def models_diff(
    name: str,
    from_: Annotated[int, typer.Option("--from", help="the version to start from")],
    to: Annotated[int, typer.Option("--to", help="the version to reach")],
    as_json: AsJson = False,
) -> None:
    """Show the deltas between two versions: those to revert (newest first), then to apply."""
    from workers.ledger import diff_versions

    diff = _call(diff_versions, name, from_, to)
    if as_json:
        print_json(diff)
        return
    console.print(f"{name}: version {from_} → {to}", markup=False)
    table = Table("step", "version", "method", "requests", "norm", "job")
    for step in ("revert", "apply"):
        for d in diff[step]:
            norm = "-" if d["norm"] is None else f"{d['norm']:.4g}"
            requests = ",".join(d["request_ids"])[:40]
            table.add_row(
                step, str(d["id"]), d["method"] or "base", requests, norm, d["job_id"] or ""
            )
    console.print(table)


@db_app.command("upgrade")
def db_upgrade(as_json: AsJson = False) -> None:
    """Apply the Alembic migrations to the metadata database and the graph store."""
    from kg.store import upgrade_store
    from workers.db import Database
    from workers.settings import get_settings

    settings = get_settings()
    url = settings.metadata_db_url
    Database(url, migrate=False).upgrade()
    where = url.split("@")[-1]
    graph = upgrade_store(settings.graph_store_url)
    result(
        {"metadata_db": where, "graph_store": graph, "at_head": True},
        as_json,
        f"metadata database at head: {where}\ngraph store at head: {graph}",
    )


def register(app: typer.Typer) -> None:
    """Add these commands to the `kgedit` application."""
    app.command("worker")(worker)
    app.add_typer(jobs_app, name="jobs")
    models_app.command("calibrate")(calibrate)
    app.add_typer(models_app, name="models")
    app.add_typer(db_app, name="db")
