"""Probes for a job submitted without any: derived from the model's graph, so every job can
be verified.

Edits get the rewrite, paraphrase, neighbour and same-subject probes of `kg.probes.edit_probes`
(the locality probes avoid the other requests of the job). An edit that names no relation
gets the relation whose template is its prompt, when exactly one relation has it; an edit the
graph cannot place at all keeps the rewrite probe made from the request itself, so its gate
still checks that the edit took (locality then goes unchecked, and the job's result says so).
Unlearning requests get forget probes in every form and retain probes
(`kg.probes.unlearn_probes`). A job left with no probe at all ends `unverified`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from contracts.types import EditRequest, Probe, ProbeKind, UnlearnRequest
from kg.errors import KGError
from kg.probes import EDIT_RUN_PROBES, ProbeConfig, edit_probes, unlearn_probes
from kg.store.base import GraphStore
from kg.view import GraphView

UNLEARN_JOB_PROBES = ProbeConfig(fluency=False, stepwise=False)


def with_relation(view: GraphView, request: EditRequest) -> EditRequest:
    """Return the edit with the relation whose template is its prompt (when only one has it)."""
    if request.relation is not None:
        return request
    matches = [
        r.id
        for r in view.relations().values()
        if request.prompt in (*r.templates.cloze, *r.templates.question)
    ]
    return dataclasses.replace(request, relation=matches[0]) if len(matches) == 1 else request


def rewrite_probe(request: EditRequest) -> Probe:
    """Return the edit's own rewrite probe (needs no graph)."""
    change = request.request_id or request.subject
    return Probe(
        request.rendered(),
        request.target_new,
        ProbeKind.REWRITE,
        request.target_true,
        meta={"change": change, "placed": "no"},
    )


def _edit_job_probes(view: GraphView, edits: Sequence[EditRequest]) -> list[Probe]:
    """Return each edit's graph probes, or its rewrite probe alone when the graph lacks it."""
    placed = [with_relation(view, r) for r in edits]
    out: list[Probe] = []
    for r in placed:
        try:
            out += edit_probes(view, r, EDIT_RUN_PROBES, batch=[o for o in placed if o is not r])
        except KGError:
            out.append(rewrite_probe(r))
    return out


def derive_job_probes(
    store: GraphStore, kind: str, requests: Sequence[EditRequest | UnlearnRequest]
) -> list[Probe]:
    """Return the probes a job's requests get from the graph ([] when none can be derived)."""
    view = GraphView.of(store)
    if kind == "edit":
        return _edit_job_probes(view, [r for r in requests if isinstance(r, EditRequest)])
    forgets = [r for r in requests if isinstance(r, UnlearnRequest)]
    try:
        return [p for c in unlearn_probes(view, forgets, UNLEARN_JOB_PROBES) for p in c.probes]
    except KGError:
        return [p for r in forgets for p in r.forms]
