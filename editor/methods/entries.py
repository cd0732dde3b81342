"""Registry entries (`EditMethod.apply`) built from a method's own edit step.

An entry's keyword parameters declare the resources it takes (`editor.sequence.call_method`
passes only those its signature names), so the ROME/MEMIT-family entries that take the same
resources share one signature here: `request_by_request` edits each request in turn,
`whole_batch` edits all requests as one batch; both report `on_request(done, total)`, the
batch also while its requests' targets are optimised (`editor.cancel.report_progress`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from contracts.types import EditRequest
from editor.arch import ArchSpec, arch_spec
from editor.cancel import reporting
from editor.delta import Delta
from editor.methods.common import StatsSource, templates_or_default

OnRequest = Callable[[int, int], None]
Edited = tuple[Delta, dict[str, Any]]
EntryResult = tuple[list[Delta], list[dict[str, Any]]]


@dataclass(frozen=True)
class EditCall:
    """What an entry was called with: the model, the hparams and the resources."""

    model: nn.Module
    tokenizer: Any
    hparams: Any
    second_moment: StatsSource | None
    context_templates: Sequence[str] | None
    model_key: str | None
    spec: ArchSpec


def one_by_one(
    requests: Sequence[Any], edit_one: Callable[[Any], Edited], on_request: OnRequest | None
) -> EntryResult:
    """Run `edit_one` on each request in turn, reporting `on_request(done, total)`."""
    deltas, infos = [], []
    for request in requests:
        delta, info = edit_one(request)
        deltas.append(delta)
        infos.append(info)
        if on_request is not None:
            on_request(len(deltas), len(requests))
    return deltas, infos


def one_batch(edited: Edited, n_requests: int, on_request: OnRequest | None) -> EntryResult:
    """Return the one delta and info of a batch of `n_requests`, reported done."""
    if on_request is not None:
        on_request(n_requests, n_requests)
    delta, info = edited
    return [delta], [info]


def _entry(
    run: Callable[[EditCall, Sequence[EditRequest], OnRequest | None], EntryResult],
    doc: str,
    module: str,
) -> Callable[..., EntryResult]:
    """Return a registry entry with the family's signature that calls `run`; it belongs to
    `module`, the method's own module (where its edit step is)."""

    def apply(
        model: nn.Module,
        tokenizer: Any,
        requests: Sequence[EditRequest],
        hparams: Any,
        *,
        second_moment: StatsSource | None = None,
        context_templates: Sequence[str] | None = None,
        model_key: str | None = None,
        spec: ArchSpec | None = None,
        on_request: OnRequest | None = None,
    ) -> EntryResult:
        call = EditCall(
            model, tokenizer, hparams, second_moment, context_templates, model_key,
            spec or arch_spec(model),
        )  # fmt: skip
        return run(call, requests, on_request)

    apply.__doc__ = doc
    apply.__module__ = module
    return apply


def request_by_request(
    edit_one: Callable[[EditCall, EditRequest], Edited],
    doc: str,
    check: Callable[[EditCall], None] | None = None,
) -> Callable[..., EntryResult]:
    """Return an entry that `check`s the call, resolves the context templates once (from the
    model before the first edit) and then edits each request in turn."""

    def run(
        call: EditCall, requests: Sequence[EditRequest], on_request: OnRequest | None
    ) -> EntryResult:
        if check is not None:
            check(call)
        templates = templates_or_default(
            call.model, call.tokenizer, call.hparams, call.context_templates, call.model_key
        )
        call = replace(call, context_templates=templates)
        return one_by_one(requests, lambda request: edit_one(call, request), on_request)

    return _entry(run, doc, edit_one.__module__)


def whole_batch(
    edit_batch: Callable[[EditCall, Sequence[EditRequest]], Edited], doc: str
) -> Callable[..., EntryResult]:
    """Return an entry that edits all requests as one batch (one delta)."""

    def run(
        call: EditCall, requests: Sequence[EditRequest], on_request: OnRequest | None
    ) -> EntryResult:
        with reporting(on_request):
            edited = edit_batch(call, requests)
        return one_batch(edited, len(requests), on_request)

    return _entry(run, doc, edit_batch.__module__)
