"""The changes behind a ledger version: each delta's requests, recovered from its job, and their
audit probes derived from the graph.

A version is its model's root version plus a chain of deltas; each delta names the requests
it applied (`request_ids`) and the job that made it. `chain_requests` reads the job payloads
back and returns the chain's requests in order. Request ids are unique within a job, not
across jobs, so when two deltas of the chain share one, every id is qualified with its
version (`v7:r0`), in the requests and in the deltas alike, so that each change stays its
own bootstrap cluster and trend point. `derive_changes` derives the probes of every request
the graph can still place; a request whose subject (or concept) left the graph becomes a
change without probes and with a note, never an error.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts.types import EditRequest, UnlearnRequest
from editor.delta import Delta
from kg.probes import ChangeProbes, ProbeConfig, audit_probes, unlearn_probes
from kg.view import GraphView
from workers.db import JobRow, VersionRow
from workers.errors import InvalidInputError
from workers.jobs.spec import parse_spec

Request = EditRequest | UnlearnRequest


@dataclass
class ChainRequests:
    """The requests of a version chain, in the order its deltas applied them."""

    base_version_id: int
    requests: list[Request] = field(default_factory=list)
    ids: dict[int, list[str]] = field(default_factory=dict)  # version id -> its change ids
    notes: list[str] = field(default_factory=list)  # deltas whose requests are unknown


def _job_requests(session: Any, job_id: str | None) -> tuple[dict[str, Request], str | None]:
    """Return a job's requests by id, or ({}, why not)."""
    job = session.get(JobRow, job_id) if job_id else None
    if job is None:
        return {}, "no job recorded" if not job_id else f"job {job_id} is gone"
    try:
        spec = parse_spec(job.payload)
    except InvalidInputError as exc:
        return {}, f"job {job_id} has an unreadable payload ({exc})"
    return {r.request_id: r for r in spec.requests if r.request_id is not None}, None


def chain_requests(session: Any, rows: Sequence[VersionRow]) -> ChainRequests:
    """Return the requests of the deltas `rows[1:]` (rows: the chain from the root, in order)."""
    out = ChainRequests(base_version_id=rows[0].id)
    jobs: dict[str | None, tuple[dict[str, Request], str | None]] = {}
    counts = Counter(rid for row in rows[1:] for rid in row.request_ids or ())
    qualify = any(n > 1 for n in counts.values())
    for row in rows[1:]:
        if row.job_id not in jobs:
            jobs[row.job_id] = _job_requests(session, row.job_id)
        by_id, why = jobs[row.job_id]
        out.ids[row.id] = []
        for rid in row.request_ids or ():
            change_id = f"v{row.id}:{rid}" if qualify else rid
            out.ids[row.id].append(change_id)
            request = by_id.get(rid)
            if request is None:
                reason = why or f"job {row.job_id} has no request {rid!r}"
                out.notes.append(f"version {row.id}: request {rid!r} not audited: {reason}")
                continue
            out.requests.append(dataclasses.replace(request, request_id=change_id))
    return out


def relabel_deltas(deltas: Sequence[tuple[int, Delta]], ids: dict[int, list[str]]) -> list[Delta]:
    """Return the deltas with their request ids replaced by the chain's change ids."""
    return [
        dataclasses.replace(d, request_ids=list(ids.get(vid, d.request_ids))) for vid, d in deltas
    ]


def _unplaced(view: GraphView, request: Request) -> tuple[str, dict[str, str]] | None:
    """Return (note, entities) when the graph cannot place a request, else None."""
    if isinstance(request, UnlearnRequest):
        if any(view.resolve(n) for n in (request.concept, *request.aliases)):
            return None
        return f"concept {request.concept!r} is no longer in the graph; no probes", {}
    subject = view.pick(request.subject, request.relation, "subject")
    if subject is None:
        return f"subject {request.subject!r} is no longer in the graph; no probes", {}
    entities = {"subject": subject}
    if request.relation is None:
        return "the request names no relation; no probes", entities
    if request.relation not in view.relations():
        return f"relation {request.relation!r} is no longer in the graph; no probes", entities
    return None


def derive_changes(
    view: GraphView, requests: Sequence[Request], config: ProbeConfig
) -> list[ChangeProbes]:
    """Return the audit probes of every request, in order (edits as one batch, then forgets)."""
    placed: dict[str, ChangeProbes] = {}
    edits, forgets = [], []
    for r in requests:
        why = _unplaced(view, r)
        kind = "unlearn" if isinstance(r, UnlearnRequest) else "edit"
        if why is not None:
            note, entities = why
            placed[r.request_id] = ChangeProbes(r.request_id, kind, r, entities=entities, note=note)
        else:
            (forgets if kind == "unlearn" else edits).append(r)
    derived = audit_probes(view, edits, config) if edits else []
    derived += unlearn_probes(view, forgets, config) if forgets else []
    placed.update((c.change_id, c) for c in derived)
    return [placed[r.request_id] for r in requests]
