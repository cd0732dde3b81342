"""`kgedit edit` and `kgedit unlearn`: queue one request on a model from the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli_jobs import AsJson, IdemKey, Wait, WaitTimeout, submit_and_report
from api.cli_output import fail, note
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
    hparams_yaml: Annotated[
        Path | None,
        typer.Option(help="EasyEdit hparams YAML: its method and translated hyper-parameters"),
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
    hparams: dict[str, Any] = {}
    if hparams_yaml is not None:
        method, hparams = _from_easyedit(hparams_yaml, method)
    _queue(model, "edit", method, request, key, wait, timeout, as_json, hparams)


def _from_easyedit(path: Path, method: str | None) -> tuple[str, dict[str, Any]]:
    """Return the method and overrides of an EasyEdit file; name the dropped fields on stderr."""
    from editor.errors import EditorError
    from editor.methods.easyedit import translate_easyedit

    try:
        out = translate_easyedit(path)
    except EditorError as exc:
        fail(str(exc))
    if method is not None and method != out.method:
        fail(f"--method {method} differs from the file's alg_name ({out.method})")
    for field, why in out.dropped.items():
        note(f"{path}: dropped {field}: {why}")
    return out.method, out.overrides


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
    hparams: dict[str, Any] | None = None,
) -> None:
    """Submit a job of one `kind` request on `model` (default method unless named)."""
    spec = {
        "model": model,
        "method": method or default_method(kind),
        "kind": kind,
        "requests": [request],
        "hparams": hparams or {},
    }
    submit_and_report(spec, key, wait, timeout, as_json)
