"""The sync loop: approved change sets reach every model that follows the graph, verified.

1. **Follow.** A registered model may follow the graph (`set_following`). Approving a change
   set targets every following model (or the one the reviewer names).
2. **Check first.** `check_targets` validates the models and methods, and `preview` plans the
   change set as if approved and validates every job it would become, before the graph
   changes: a change set whose plan could not be queued is not approved.
3. **Attempts.** Each batch of the plan is submitted as attempt 0 with the first method of
   the model's chain (the reviewer's method first, then the configured chain). Every attempt
   is a job with its gate; `sync_attempts` links it to its change set, plan and batch.
4. **Recovery.** When an attempt's gate rolls it back (or it fails), `after_job` submits the
   next attempt with the next method of the chain, with the same requests and probes. When
   the chain is used up, the batch is `failed_in_model` and keeps every attempt's figures.
5. **Lifecycle.** `change_set_status` reads, per model, `queued → applied → verified |
   failed_in_model` (also `unverified` and `cancelled`) with the job ids, versions and gates.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select

from kg.errors import NotFoundError
from kg.planner import EDIT, Plan, plan
from kg.store.base import GraphStore
from kg.types import ChangeSet, ChangeSetState, OperationKind
from workers.db import JobRow, ModelRow, SyncAttemptRow, utcnow
from workers.errors import InvalidInputError, WorkersError
from workers.jobs.codec import to_plain
from workers.jobs.dispatch import default_chain, default_method, resolve, teaching_methods
from workers.jobs.sayable import UNSAYABLE, target_warnings
from workers.jobs.service import JobInfo, check_job, submit_job
from workers.ledger.registry import db_of, model_row
from workers.settings import Settings, get_settings
from workers.sync.capacity import (
    TEACH,
    Choice,
    budget_of,
    budget_reason,
    choose,
    sayable_objects,
    unsayable,
)

log = logging.getLogger(__name__)

QUEUED, APPLIED, VERIFIED = "queued", "applied", "verified"
FAILED_IN_MODEL, UNVERIFIED, CANCELLED, PLANNED = (
    "failed_in_model",
    "unverified",
    "cancelled",
    "planned",
)
RETRY_STATES = {"rolled_back", "failed"}
_JOB_PHASE = {
    "queued": QUEUED,
    "planning": QUEUED,
    "running": APPLIED,
    "auditing": APPLIED,
    "succeeded": VERIFIED,
    "unverified": UNVERIFIED,
    "cancelled": CANCELLED,
}
# worst first: the state a model shows when its batches differ
_SEVERITY = (FAILED_IN_MODEL, CANCELLED, UNVERIFIED, PLANNED, QUEUED, APPLIED, VERIFIED)


@dataclass(frozen=True)
class Step:
    """One link of a method chain: a method and its hyper-parameter overrides."""

    method: str
    hparams: dict[str, Any]

    @property
    def label(self) -> str:
        """Return the step as written in the settings."""
        extra = "".join(f"@{k}={json.dumps(v)}" for k, v in sorted(self.hparams.items()))
        return self.method + extra


def parse_step(text: str, kind: str) -> Step:
    """Return the step `method[@field=value...]` (values read as JSON, else as text)."""
    method, *pairs = str(text).strip().split("@")
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"chain step {text!r}: write method@field=value")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    resolve(kind, method)
    return Step(method, overrides)


def method_chain(kind: str, first: str | None, settings: Settings) -> list[Step]:
    """Return the steps tried in order: `first` (if named), then the configured chain."""
    configured = settings.sync_edit_chain if kind == EDIT else settings.sync_unlearn_chain
    steps = [parse_step(t, kind) for t in (configured or default_chain(kind))]
    if first is not None:
        lead = parse_step(first, kind)
        steps = [lead, *[s for s in steps if s != lead]]
    if not steps:
        steps = [Step(default_method(kind), {})]
    return steps


# -- following models ---------------------------------------------------------------------------


def set_following(name: str, follow: bool, *, settings: Settings | None = None) -> bool:
    """Make a registered model follow the graph (or stop); return the new setting."""
    with db_of(settings).session() as session:
        row = model_row(session, name)
        row.follows_graph = bool(follow)
        return row.follows_graph


def following_models(*, settings: Settings | None = None) -> list[str]:
    """Return the names of the models that follow the graph."""
    with db_of(settings).session() as session:
        rows = session.scalars(
            select(ModelRow.name).where(ModelRow.follows_graph.is_(True)).order_by(ModelRow.name)
        )
        return list(rows)


def check_targets(
    model: str | None, methods: dict[str, str | None], graph_only: bool, settings: Settings
) -> list[str]:
    """Return the models an approval targets; raise `InvalidInputError` when it cannot go on."""
    if graph_only and model is not None:
        raise InvalidInputError("graph_only approves without a model; do not name one")
    for kind, method in methods.items():
        method_chain(kind, method, settings)
    if graph_only:
        return []
    if model is not None:
        with db_of(settings).session() as session:
            model_row(session, model)
        return [model]
    targets = following_models(settings=settings)
    if not targets:
        raise InvalidInputError(
            "no model follows the graph: name a model, make one follow "
            "(`kgedit models follow NAME`), or approve graph-only (graph_only: true)"
        )
    return targets


def _cannot_say(model: str, batch: Any, settings: Settings) -> list[str]:
    """Return the targets of an edit batch the model's head cannot say, measured as a job's
    submission measures them (`workers.jobs.sayable`: greedy decoding or the target's NLL
    against the model's threshold); [] when the check is off or could not run."""
    requests = [getattr(r, "request", r) for r in batch.requests]
    spec = SimpleNamespace(kind=EDIT, model=model, requests=requests)
    warnings = target_warnings(spec, settings)  # type: ignore[arg-type]
    return [str(w["target"]) for w in warnings if w["kind"] == UNSAYABLE]


def _specs(
    result: Plan, model: str, methods: dict[str, str | None], settings: Settings
) -> list[tuple[list[Step], dict[str, Any], Choice]]:
    """Return each batch's method chain (led by the capacity-aware choice), its first
    attempt's job payload on one model, and the choice with its reason (`capacity.choose`)."""
    with db_of(settings).session() as session:
        budget = budget_of(session, model)
        sayable = sayable_objects(session, model)
    edits_since = budget.edits
    out = []
    for batch in result.batches:
        named = methods.get(batch.kind)
        chain = method_chain(batch.kind, named, settings)
        labels = [s.method for s in chain]
        extra = [Step(m, {}) for m in teaching_methods(batch.kind) if m not in labels]
        candidates = chain + extra
        now = replace(budget, edits=edits_since)
        new_objects = [getattr(r, "new_object", None) for r in batch.requests]
        cannot_say = []
        if batch.kind == EDIT:
            named_as = {
                getattr(r, "new_object", None): getattr(r, "request", r).target_new
                for r in batch.requests
            }
            unseen = [named_as.get(o, o) for o in unsayable(new_objects, sayable)]
            cannot_say = unseen + _cannot_say(model, batch, settings)
        index, choice = choose(
            batch.kind,
            [s.method for s in candidates],
            len(batch.requests),
            named=named is not None,
            budget=budget_reason(now, settings) if batch.kind == EDIT else None,
            cannot_say=sorted(set(cannot_say)),
            backlog=settings.sync_backlog,
        )
        lead = candidates[index]
        chain = [lead, *[s for s in chain if s != lead]]
        if batch.kind == EDIT:
            edits_since = 0 if choice.role == TEACH else edits_since + len(batch.requests)
        out.append((chain, _payload(batch.kind, model, chain[0], batch.requests), choice))
    return out


def _payload(kind: str, model: str, step: Step, requests: Sequence[Any]) -> dict[str, Any]:
    """Return the job payload of one attempt: the method's batching, the plan's probes."""
    method = resolve(kind, step.method)
    items = [getattr(r, "request", r) for r in requests]
    probes = [p for r in requests for p in getattr(r, "probes", ())]
    payload: dict[str, Any] = {
        "model": model,
        "method": step.method,
        "kind": kind,
        "requests": items,
        "batch_size": len(items) if method.batched else 1,
        "hparams": dict(step.hparams),
    }
    if probes:
        payload["probes"] = probes
    return to_plain(payload)


def preview(
    store: GraphStore,
    change_set: ChangeSet,
    targets: Sequence[str],
    methods: dict[str, str | None],
    settings: Settings,
) -> Plan | None:
    """Plan the change set as if approved and validate the job of every step of every batch's
    chain (so a later attempt cannot be refused either); raise before any write.

    A change set that creates what its own plan needs (a concept it adds and marks to forget)
    cannot be planned before it is applied; for it only the targets and chains are checked
    here, and the plan is checked when it is submitted. Returns the plan, or None then.
    """
    as_approved = replace(
        change_set, state=ChangeSetState.APPROVED, graph_version=store.graph_version() + 1
    )
    try:
        result = plan(store, [as_approved])
    except NotFoundError:
        if not _creates_ids(change_set):
            raise
        return None
    for model in targets:
        for batch, (chain, _, _) in zip(
            result.batches, _specs(result, model, methods, settings), strict=True
        ):
            for step in chain:
                check_job(_payload(batch.kind, model, step, batch.requests))
    return result


def _creates_ids(change_set: ChangeSet) -> bool:
    """Whether a change set adds concepts (whose ids only exist once it is applied)."""
    return any(op.kind is OperationKind.ADD_CONCEPT for op in change_set.operations)


# -- attempts -----------------------------------------------------------------------------------


def _record(
    job: JobInfo,
    change_set_id: str,
    plan_key: str,
    batch: int,
    kind: str,
    attempt: int,
    chain: Sequence[Step],
    settings: Settings,
    choice: dict[str, Any] | None = None,
) -> None:
    """Link a job to its change set, plan, batch and attempt (once), with the plan's choice."""
    with db_of(settings).session() as session:
        exists = session.scalars(
            select(SyncAttemptRow).where(
                SyncAttemptRow.plan_key == plan_key,
                SyncAttemptRow.batch_index == batch,
                SyncAttemptRow.attempt == attempt,
            )
        ).first()
        if exists is None:
            session.add(
                SyncAttemptRow(
                    change_set_id=change_set_id,
                    model_name=job.model,
                    plan_key=plan_key,
                    batch_index=batch,
                    kind=kind,
                    attempt=attempt,
                    method=chain[attempt].method,
                    chain=[step.label for step in chain],
                    choice=choice,
                    job_id=job.id,
                    created_at=utcnow(),
                )
            )


def submit_plan_attempts(
    result: Plan,
    change_set_id: str,
    model: str,
    methods: dict[str, str | None],
    *,
    settings: Settings | None = None,
    plan_key: str | None = None,
    enqueue: bool = True,
) -> tuple[list[JobInfo], list[dict[str, Any]]]:
    """Submit attempt 0 of every batch of a plan on one model; return (jobs, errors)."""
    settings = settings or get_settings()
    plan_key = plan_key or f"cs:{change_set_id}:{model}:{result.graph_version}"
    jobs, errors = [], []
    for batch, (chain, payload, choice) in zip(
        result.batches, _specs(result, model, methods, settings), strict=True
    ):
        try:
            job = submit_job(
                payload,
                idempotency_key=f"sync:{plan_key}:{batch.index}:0"[:200],
                settings=settings,
                enqueue=enqueue,
            )
        except WorkersError as exc:
            errors.append({"model": model, "batch": batch.index, "error": str(exc)})
            continue
        _record(
            job, change_set_id, plan_key, batch.index, batch.kind, 0, chain, settings,
            choice.to_dict(),
        )  # fmt: skip
        jobs.append(job)
    return jobs, errors


def after_job(
    job_id: str, *, settings: Settings | None = None, enqueue: bool = True
) -> JobInfo | None:
    """Submit the next attempt of a sync job whose gate rolled it back; return it (or None)."""
    settings = settings or get_settings()
    db = db_of(settings)
    with db.session() as session:
        link = session.scalars(
            select(SyncAttemptRow).where(SyncAttemptRow.job_id == job_id)
        ).first()
        row = session.get(JobRow, job_id)
        if link is None or row is None or row.state not in RETRY_STATES:
            return None
        payload, result = dict(row.payload), dict(row.result or {})
        change_set_id, plan_key, batch = link.change_set_id, link.plan_key, link.batch_index
        kind, attempt, labels = link.kind, link.attempt, list(link.chain)
        choice = dict(link.choice) if link.choice else None
    chain = [parse_step(label, kind) for label in labels]
    if attempt + 1 >= len(chain):
        log.warning("sync %s batch %d: every method of the chain failed", plan_key, batch)
        return None
    step = chain[attempt + 1]
    if not payload.get("probes") and result.get("derived_probes"):
        payload["probes"] = result["derived_probes"]
    method = resolve(kind, step.method)
    payload.update(
        method=step.method,
        hparams=dict(step.hparams),
        batch_size=len(payload["requests"]) if method.batched else 1,
    )
    job = submit_job(
        payload,
        idempotency_key=f"sync:{plan_key}:{batch}:{attempt + 1}"[:200],
        settings=settings,
        enqueue=enqueue,
    )
    _record(job, change_set_id, plan_key, batch, kind, attempt + 1, chain, settings, choice)
    log.info("sync %s batch %d: attempt %d with %s", plan_key, batch, attempt + 1, step.label)
    return job


# -- lifecycle -----------------------------------------------------------------------------------


def _gate_summary(result: dict[str, Any]) -> dict[str, Any] | None:
    """Return the figures of a job's gate: per group before → after, and what failed."""
    gate = result.get("gate")
    if not gate:
        return None
    return {
        "passed": gate.get("passed"),
        "groups": {
            g["group"]: {"n": g["n"], "before": g["before"], "after": g["after"]}
            for g in gate.get("groups", [])
        },
        "failing": [f"{g['group']}: {g['reason']}" for g in gate.get("failing", [])],
    }


def _step_label(link: SyncAttemptRow) -> str:
    """Return the chain step an attempt ran (`method@field=value…`)."""
    chain = list(link.chain or [])
    return chain[link.attempt] if link.attempt < len(chain) else link.method


def _batch_state(attempts: list[dict[str, Any]], chain_length: int) -> str:
    """Return the lifecycle state of one batch from its attempts (in order)."""
    last = attempts[-1]
    if last["job_state"] in RETRY_STATES:
        return FAILED_IN_MODEL if last["attempt"] + 1 >= chain_length else QUEUED
    return _JOB_PHASE.get(last["job_state"], QUEUED)


def change_set_status(
    change_set_id: str, *, settings: Settings | None = None
) -> list[dict[str, Any]]:
    """Return, per model, the change set's state in the model with every attempt's job."""
    settings = settings or get_settings()
    with db_of(settings).session() as session:
        rows = session.execute(
            select(SyncAttemptRow, JobRow)
            .join(JobRow, JobRow.id == SyncAttemptRow.job_id)
            .where(SyncAttemptRow.change_set_id == change_set_id)
            .order_by(SyncAttemptRow.model_name, SyncAttemptRow.id)
        ).all()
        records = [
            {
                "model": link.model_name,
                "plan": link.plan_key,
                "batch": link.batch_index,
                "kind": link.kind,
                "attempt": link.attempt,
                "method": link.method,
                "step": _step_label(link),
                "choice": link.choice,
                "chain_length": len(link.chain or []),
                "job_id": job.id,
                "job_state": job.state,
                "version_id": job.result_version_id,
                "base_version_id": job.base_version_id,
                "message": job.message,
                "gate": _gate_summary(dict(job.result or {})),
            }
            for link, job in rows
        ]
    out = []
    for model in sorted({r["model"] for r in records}):
        mine = [r for r in records if r["model"] == model]
        latest_plan = mine[-1]["plan"]
        current = [r for r in mine if r["plan"] == latest_plan]
        batches = []
        for index in sorted({r["batch"] for r in current}):
            attempts = [r for r in current if r["batch"] == index]
            first = attempts[0]
            length = first["chain_length"] or len(attempts)
            batches.append(
                {
                    "batch": index,
                    "kind": first["kind"],
                    "state": _batch_state(attempts, length),
                    "choice": first["choice"],
                    "attempts": attempts,
                }
            )
        states = [b["state"] for b in batches]
        state = min(states, key=_SEVERITY.index) if states else PLANNED
        versions = [a["version_id"] for b in batches for a in b["attempts"] if a["version_id"]]
        out.append(
            {
                "model": model,
                "state": state,
                "plan": latest_plan,
                "version_id": max(versions) if versions else None,
                "batches": batches,
                "earlier_plans": sorted({r["plan"] for r in mine} - {latest_plan}),
            }
        )
    return out


def replan(
    store: GraphStore,
    change_set_id: str,
    *,
    model: str | None = None,
    methods: dict[str, str | None] | None = None,
    settings: Settings | None = None,
    enqueue: bool = True,
) -> tuple[list[JobInfo], list[dict[str, Any]]]:
    """Plan an approved change set again and submit it to `model` (default: followers)."""
    settings = settings or get_settings()
    methods = methods or {}
    targets = check_targets(model, methods, False, settings)
    change_set = store.get_change_set(change_set_id)
    result = plan(store, [change_set])
    jobs, errors = [], []
    for target in targets:
        key = f"cs:{change_set_id}:{target}:replan:{uuid.uuid4().hex[:12]}"
        j, e = submit_plan_attempts(
            result, change_set_id, target, methods, settings=settings, plan_key=key, enqueue=enqueue
        )
        jobs += j
        errors += e
    return jobs, errors


def job_link(job_id: str, *, settings: Settings | None = None) -> dict[str, Any] | None:
    """Return the change set, plan, batch and attempt a job belongs to (None if none)."""
    with db_of(settings).session() as session:
        link = session.scalars(
            select(SyncAttemptRow).where(SyncAttemptRow.job_id == job_id)
        ).first()
        if link is None:
            return None
        return {
            "change_set": link.change_set_id,
            "plan": link.plan_key,
            "batch": link.batch_index,
            "attempt": link.attempt,
            "choice": link.choice,
        }
