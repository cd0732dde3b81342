"""Find a job's method by kind and name, so new registries plug in without touching the runner.

Each kind maps to a registry module exposing `get(name)` and `names()`; `get` returns an
object like `editor.methods.EditMethod`: `name`, `hparams_cls`, and
`apply(model, tokenizer, requests, hparams, **resources) -> (deltas, infos)`. Editing and
unlearning methods share one registry, `editor.methods`; each entry's `kind` ("edit" or
"unlearn") must match the job's kind.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workers.errors import InvalidInputError
from workers.jobs.hparams import check_hparams

REGISTRIES = {"edit": "editor.methods", "unlearn": "editor.methods"}


def registry(kind: str) -> Any:
    """Return the registry module of `kind`, or raise `InvalidInputError`."""
    module = REGISTRIES.get(kind)
    if module is None:
        raise InvalidInputError(f"unknown job kind {kind!r}; kinds: {', '.join(REGISTRIES)}")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        raise InvalidInputError(f"no {kind} methods are installed ({module} not found)") from None


def default_method(kind: str) -> str:
    """Return the method a request of `kind` gets when none is named (its registry's choice)."""
    return str(registry(kind).default_method(kind))


def default_chain(kind: str) -> tuple[str, ...]:
    """Return the methods the sync loop tries in order for `kind` (its registry's choice)."""
    return tuple(registry(kind).default_chain(kind))


def teaching_methods(kind: str) -> tuple[str, ...]:
    """Return the registered methods of `kind` that declare `teaches` (train on the graph)."""
    reg = registry(kind)
    return tuple(n for n in reg.names(kind) if getattr(reg.get(n), "teaches", False))


def resolve(kind: str, name: str) -> Any:
    """Return the registered method `name` of `kind`, or raise `InvalidInputError`."""
    reg = registry(kind)
    known = ", ".join(reg.names(kind))
    try:
        method = reg.get(name)
    except Exception:
        raise InvalidInputError(f"unknown {kind} method {name!r}; known: {known}") from None
    if getattr(method, "kind", "edit") != kind:
        raise InvalidInputError(f"{name!r} is not an {kind} method; known: {known}")
    return method


def check_overrides(method: Any, overrides: dict[str, Any]) -> None:
    """Refuse hyper-parameter overrides that are not fields of the method's hparams class,
    or have the wrong type, or lie outside the field's bounds."""
    cls = method.hparams_cls
    if dataclasses.is_dataclass(cls):
        check_hparams(cls, overrides)


MAX_LISTED = 5  # problems named in one refusal


def check_requests(method: Any, requests: Sequence[Any], overrides: Mapping[str, Any]) -> None:
    """Refuse requests that lack what the method needs (its `missing` declaration, e.g. an
    unlearning anchor or an edit's subgraph), naming each request and what it lacks."""
    missing = getattr(method, "missing", None)
    if missing is None:
        return
    problems = []
    for i, request in enumerate(requests):
        why = missing(request, overrides)
        if why:
            name = getattr(request, "request_id", None)
            problems.append(f"requests[{i}]" + (f" ({name})" if name else "") + f": {why}")
    if problems:
        more = len(problems) - MAX_LISTED
        listed = "; ".join(problems[:MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")
        raise InvalidInputError(f"{method.name} cannot run these requests: {listed}")


def overrides_from_file(path: str | Path, method: str) -> dict[str, Any]:
    """Return `method`'s hyper-parameter overrides from a JSON or YAML file, or raise
    `InvalidInputError` (missing, unreadable or not a mapping)."""
    from editor.errors import EditorError
    from editor.methods.defaults import load_overrides

    try:
        return load_overrides(Path(path), method)
    except EditorError as exc:
        raise InvalidInputError(str(exc)) from None
