"""`kgedit edit` and `kgedit unlearn`: queue one request on a model from the terminal."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from api.cli_jobs import AsJson, IdemKey, Wait, WaitTimeout, submit_and_report
from workers.jobs.dispatch import default_method


def edit(
    model: Annotated[str, typer.Option(help="registered model name")],
    subject: Annotated[str, typer.Option(help="the subject, as the model reads it")],
    prompt: Annotated[str, typer.Option(help="prompt with {} where the subject goes")],
    new: Annotated[str, typer.Option("--new", help="the new object")],
    true: Annotated[str | None, typer.Option("--true", help="the current object")] = None,
    relation: Annotated[
        str | None, typer.Option(help="the graph relation id (the gate's probes come from it)")
    ] = None,
    method: Annotated[
        str | None, typer.Option(help="editing method [default: the registry's default]")
    ] = None,
    key: IdemKey = None,
    wait: Wait = False,
    timeout: WaitTimeout = 3600.0,
    as_json: AsJson = False,
) -> None:
    """Queue one fact edit on a model (a job of one request, checked by probes from the graph)."""
    request = {
        "subject": subject,
        "prompt": prompt,
        "target_new": new,
        "target_true": true,
        "relation": relation,
    }
    _queue(model, "edit", method, request, key, wait, timeout, as_json)


def unlearn(
    model: Annotated[str, typer.Option(help="registered model name")],
    concept: Annotated[str, typer.Option(help="the concept to forget")],
    alias: Annotated[list[str] | None, typer.Option(help="another name (repeatable)")] = None,
    anchor: Annotated[str | None, typer.Option(help="harmless concept to redirect to")] = None,
    method: Annotated[
        str | None, typer.Option(help="unlearning method [default: the registry's default]")
    ] = None,
    key: IdemKey = None,
    wait: Wait = False,
    timeout: WaitTimeout = 3600.0,
    as_json: AsJson = False,
) -> None:
    """Queue the unlearning of one concept on a model (a job of one request)."""
    request = {"concept": concept, "aliases": list(alias or []), "anchor": anchor}
    _queue(model, "unlearn", method, request, key, wait, timeout, as_json)


def _queue(
    model: str,
    kind: str,
    method: str | None,
    request: dict[str, Any],
    key: str | None,
    wait: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Submit a job of one `kind` request on `model` (default method unless named)."""
    spec = {
        "model": model,
        "method": method or default_method(kind),
        "kind": kind,
        "requests": [request],
    }
    submit_and_report(spec, key, wait, timeout, as_json)
