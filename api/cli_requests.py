"""`kgedit edit` and `kgedit unlearn`: queue one request on a model from the terminal."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli_jobs import AsJson, submit_and_report
from workers.jobs.dispatch import default_method


def edit(
    model: Annotated[str, typer.Option(help="registered model name")],
    subject: Annotated[str, typer.Option(help="the subject, as the model reads it")],
    prompt: Annotated[str, typer.Option(help="prompt with {} where the subject goes")],
    new: Annotated[str, typer.Option("--new", help="the new object")],
    true: Annotated[str | None, typer.Option("--true", help="the current object")] = None,
    method: Annotated[
        str | None, typer.Option(help="editing method [default: the registry's default]")
    ] = None,
    key: Annotated[str | None, typer.Option(help="idempotency key")] = None,
    wait: Annotated[bool, typer.Option(help="show progress until the job finishes")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait with --wait")] = 3600.0,
    as_json: AsJson = False,
) -> None:
    """Queue one fact edit on a model (a job of one request)."""
    request = {"subject": subject, "prompt": prompt, "target_new": new, "target_true": true}
    spec = {
        "model": model,
        "method": method or default_method("edit"),
        "kind": "edit",
        "requests": [request],
    }
    submit_and_report(spec, key, wait, timeout, as_json)


def unlearn(
    model: Annotated[str, typer.Option(help="registered model name")],
    concept: Annotated[str, typer.Option(help="the concept to forget")],
    alias: Annotated[list[str] | None, typer.Option(help="another name (repeatable)")] = None,
    anchor: Annotated[str | None, typer.Option(help="harmless concept to redirect to")] = None,
    method: Annotated[
        str | None, typer.Option(help="unlearning method [default: the registry's default]")
    ] = None,
    key: Annotated[str | None, typer.Option(help="idempotency key")] = None,
    wait: Annotated[bool, typer.Option(help="show progress until the job finishes")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait with --wait")] = 3600.0,
    as_json: AsJson = False,
) -> None:
    """Queue the unlearning of one concept on a model (a job of one request)."""
    request = {"concept": concept, "aliases": list(alias or []), "anchor": anchor}
    spec = {
        "model": model,
        "method": method or default_method("unlearn"),
        "kind": "unlearn",
        "requests": [request],
    }
    submit_and_report(spec, key, wait, timeout, as_json)
