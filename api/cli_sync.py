"""`kgedit sync status` and `kgedit sync apply`: does a model agree with the graph, and the
edits that bring it back in line."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from api.cli_output import AsJson, console, fail, note, print_json

sync_app = typer.Typer(help="Agreement between a model and the graph.", no_args_is_help=True)

Model = Annotated[str, typer.Option("--model", help="registered model name")]
Entities = Annotated[
    list[str] | None, typer.Option("--entity", help="only facts about this entity id (repeatable)")
]
Relations = Annotated[
    list[str] | None, typer.Option("--relation", help="only facts of this relation (repeatable)")
]
ChangeSetId = Annotated[
    str | None, typer.Option("--change-set", help="only the facts one change set touches")
]


def _check(model: str, entity: list[str] | None, relation: list[str] | None, cs: str | None):
    """Run the agreement check of a scope, turning input errors into a clean failure."""
    from kg.agreement import Scope
    from kg.errors import KGError
    from workers.errors import WorkersError
    from workers.settings import get_settings
    from workers.sync.agreement import AgreementChecker

    try:
        scope = Scope(tuple(entity or ()), tuple(relation or ()), cs)
        return AgreementChecker(get_settings()).check(model, scope=scope)
    except (KGError, WorkersError) as exc:
        fail(str(exc))


@sync_app.command("status")
def status(
    model: Model,
    entity: Entities = None,
    relation: Relations = None,
    change_set: ChangeSetId = None,
    facts: Annotated[bool, typer.Option("--facts", help="list every fact's verdict")] = False,
    as_json: AsJson = False,
) -> None:
    """Score the model's head against the graph: agrees, contradicts, unknown, forgotten."""
    result = _check(model, entity, relation, change_set)
    if as_json:
        print_json(result.to_dict(facts=facts))
        return
    c = result.counts
    console.print(
        f"{escape(model)} v{result.model_version} against graph v{result.graph_version}: "
        f"{result.facts} facts, {c['agrees']} agree, {c['contradicts']} contradict, "
        f"{c['unknown']} unknown"
        + (
            f", {c['forgotten']} forgotten, {c['still_known']} still known"
            if c["forgotten"] or c["still_known"]
            else ""
        )
    )
    note(f"scored {result.scored} fact(s) in {result.seconds:.2f} s; the rest were stored")
    rows = result.verdicts if facts else result.conflicts()
    if rows:
        table = Table("fact", "subject", "relation", "graph", "model says", "p", "verdict")
        for v in rows[: None if facts else 50]:
            p = "" if v.probability is None else f"{v.probability:.2f}"
            table.add_row(
                str(v.fact_id), v.subject_name, v.relation, v.object_name, v.answer, p, v.status
            )
        console.print(table)


def _say_choices(jobs: list) -> None:
    """Print the planner's choice and its reason for each queued job."""
    from workers.sync.loop import job_link

    for job in jobs:
        choice = (job_link(job.id) or {}).get("choice")
        if choice:
            console.print(
                f"  job {escape(job.id)}: {escape(choice['method'])} ({choice['role']}): "
                f"{escape(choice['reason'])}"
            )


@sync_app.command("apply")
def apply(
    model: Model,
    entity: Entities = None,
    relation: Relations = None,
    change_set: ChangeSetId = None,
    method: Annotated[
        str | None, typer.Option(help="first method of the chain [default: the chain's first]")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="edits per job")] = 16,
    as_json: AsJson = False,
) -> None:
    """Queue edits for every fact of the scope the model contradicts (through the loop)."""
    from kg.store import open_store
    from workers.errors import WorkersError
    from workers.settings import get_settings
    from workers.sync.apply import apply_contradictions

    result = _check(model, entity, relation, change_set)
    settings = get_settings()
    store = open_store(result.graph_url)
    try:
        jobs, errors = apply_contradictions(
            store, result, method=method, batch_size=batch_size, settings=settings
        )
    except WorkersError as exc:
        fail(str(exc))
    finally:
        store.close()
    data = {
        "model": model,
        "contradicts": result.counts["contradicts"],
        "jobs": [j.id for j in jobs],
        "errors": errors,
    }
    if as_json:
        print_json(data)
        return
    console.print(
        f"{result.counts['contradicts']} contradicting fact(s): queued {len(jobs)} job(s)"
        + (f", {len(errors)} error(s): {errors}" if errors else "")
    )
    _say_choices(jobs)


@sync_app.command("replan")
def replan(
    change_set: Annotated[str, typer.Argument(help="an approved change set id")],
    model: Annotated[
        str | None, typer.Option("--model", help="one model [default: every follower]")
    ] = None,
    method: Annotated[str | None, typer.Option(help="first edit method of the chain")] = None,
    as_json: AsJson = False,
) -> None:
    """Plan an approved change set again and queue it from the start of the method chain."""
    from kg.errors import KGError
    from kg.store import open_store
    from workers.errors import WorkersError
    from workers.settings import get_settings
    from workers.sync.loop import job_link
    from workers.sync.loop import replan as replan_change_set

    settings = get_settings()
    store = open_store(settings.graph_store_url)
    try:
        jobs, errors = replan_change_set(
            store, change_set, model=model, methods={"edit": method}, settings=settings
        )
    except (KGError, WorkersError) as exc:
        fail(str(exc))
    finally:
        store.close()
    data = {"change_set": change_set, "jobs": [j.id for j in jobs], "errors": errors}
    data["choices"] = [(job_link(j.id) or {}).get("choice") for j in jobs]
    if as_json:
        print_json(data)
        return
    console.print(f"change set {escape(change_set)}: queued {len(jobs)} job(s)")
    _say_choices(jobs)
    for error in errors:
        note(f"batch {error['batch']} on {error['model']}: {error['error']}")
