"""Change-set routes: curators draft and propose, reviewers approve or reject.

Approval checks the models, methods and the plan's jobs first (422, nothing approved), then
applies the change to the graph (refused with 409 and the conflicting facts when the change
set is based on a stale graph), plans it and queues the jobs that bring every following model
in line (`workers.sync.loop`); a gate that rolls an attempt back brings the next method of the
chain. `GET` shows the change's state in each model; `replan` starts over.

A reviewer cannot approve or reject a change set they authored. Authorship is
the caller's key: a change set records `Principal.actor` ("name (key id)"), so two keys of the
same display name never share a draft.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status

from api.deps import READERS, CallerDep, StoreDep, roles
from api.errors import ApiError
from api.keys import Role
from api.schemas.changesets import (
    ChangeSetCreate,
    ChangeSetPublic,
    OperationsUpdate,
    ReplanBody,
    ReviewBody,
    ReviewPublic,
    operation_dicts,
)
from api.schemas.common import Page, page_of
from kg import curation
from kg.planner import Plan, plan
from kg.types import ChangeSetState
from workers.sync import loop

router = APIRouter(prefix="/v1/changesets", tags=["change sets"])


def plan_summary(result: Plan) -> dict[str, Any]:
    """Return the plan without its probes: batches of request ids, conflicts, skipped ops."""
    return {
        "graph_version": result.graph_version,
        "change_sets": list(result.change_sets),
        "batches": [
            {
                "index": b.index,
                "kind": b.kind,
                "requests": [
                    {
                        "request_id": r.request_id,
                        "subject": getattr(r.request, "subject", None)
                        or getattr(r.request, "concept", None),
                        "relation": r.relation,
                        "old_object": r.old_object,
                        "new_object": r.new_object,
                        "probes": len(r.probes),
                        "depends_on": list(r.depends_on),
                    }
                    for r in b.requests
                ],
            }
            for b in result.batches
        ],
        "conflicts": [asdict(c) for c in result.conflicts],
        "skipped": list(result.skipped),
    }


@router.post("", status_code=status.HTTP_201_CREATED, **roles(Role.CURATOR))
def create_change_set(body: ChangeSetCreate, store: StoreDep, caller: CallerDep) -> ChangeSetPublic:
    """Create a draft change set (its operations are checked against the graph now)."""
    ops = operation_dicts(body.operations)
    return ChangeSetPublic.of(curation.create_change_set(store, caller.actor, body.reason, ops))


@router.get("", **roles(*READERS))
def list_change_sets(
    store: StoreDep,
    state: Annotated[ChangeSetState | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Page[ChangeSetPublic]:
    """List change sets, oldest first, optionally in one review state."""
    return page_of(store.list_change_sets(state), limit, offset, ChangeSetPublic.of)


@router.get("/{change_set_id}", **roles(*READERS))
def get_change_set(change_set_id: str, store: StoreDep, request: Request) -> ChangeSetPublic:
    """Return one change set, with its state in every model it was planned on."""
    change_set = store.get_change_set(change_set_id)
    settings = request.app.state.settings
    return ChangeSetPublic.of(change_set, loop.change_set_status(change_set_id, settings=settings))


def _own_draft(store: Any, change_set_id: str, caller: Any) -> None:
    """Refuse (403) when the caller is not the change set's author."""
    if store.get_change_set(change_set_id).author != caller.actor:
        raise ApiError(403, "only the author may change or propose this change set")


@router.put("/{change_set_id}/operations", **roles(Role.CURATOR))
def update_operations(
    change_set_id: str, body: OperationsUpdate, store: StoreDep, caller: CallerDep
) -> ChangeSetPublic:
    """Replace the operations of a draft (its author only)."""
    _own_draft(store, change_set_id, caller)
    ops = operation_dicts(body.operations)
    return ChangeSetPublic.of(curation.update_draft(store, change_set_id, ops, caller.actor))


@router.post("/{change_set_id}/propose", **roles(Role.CURATOR))
def propose(change_set_id: str, store: StoreDep, caller: CallerDep) -> ChangeSetPublic:
    """Send a draft to review (its author only)."""
    _own_draft(store, change_set_id, caller)
    return ChangeSetPublic.of(curation.propose(store, change_set_id, caller.actor))


@router.post("/{change_set_id}/rebase", **roles(Role.CURATOR))
def rebase(change_set_id: str, store: StoreDep, caller: CallerDep) -> ChangeSetPublic:
    """Base a change set on the current graph after a conflict (its author only)."""
    _own_draft(store, change_set_id, caller)
    return ChangeSetPublic.of(curation.rebase(store, change_set_id, caller.actor))


@router.post("/{change_set_id}/review", **roles(Role.REVIEWER))
def review(
    change_set_id: str, body: ReviewBody, request: Request, store: StoreDep, caller: CallerDep
) -> ReviewPublic:
    """Approve (apply, plan, queue jobs on the following models) or reject a change set.

    Before the graph changes, the models, the methods and every job of the plan are checked;
    a change set whose plan could not be queued is not approved (422 saying why).
    """
    current = store.get_change_set(change_set_id)
    if current.author == caller.actor:
        raise ApiError(403, "a change set cannot be reviewed by its own author")
    if body.decision == "reject":
        if not body.comment.strip():
            raise ApiError(422, "a rejection needs a comment")
        rejected = curation.reject(store, change_set_id, caller.actor, body.comment)
        return ReviewPublic(change_set=ChangeSetPublic.of(rejected))
    settings = request.app.state.settings
    methods = {"edit": body.edit_method, "unlearn": body.unlearn_method}
    targets = loop.check_targets(body.model, methods, body.graph_only, settings)
    if current.state is not ChangeSetState.PROPOSED:
        raise ApiError(409, f"change set {change_set_id} is {current.state.value}, not proposed")
    if targets:
        loop.preview(store, current, targets, methods, settings)
    approved = curation.approve(store, change_set_id, caller.actor, body.comment)
    result = plan(store, [approved])
    out = ReviewPublic(change_set=ChangeSetPublic.of(approved), plan=plan_summary(result))
    for model in targets:
        jobs, errors = loop.submit_plan_attempts(
            result, change_set_id, model, methods, settings=settings
        )
        out.jobs += [j.to_dict() for j in jobs]
        out.job_errors += errors
    out.change_set = ChangeSetPublic.of(
        approved, loop.change_set_status(change_set_id, settings=settings)
    )
    return out


@router.post("/{change_set_id}/replan", **roles(Role.REVIEWER, Role.OPERATOR))
def replan(change_set_id: str, body: ReplanBody, request: Request, store: StoreDep) -> ReviewPublic:
    """Plan an approved change set again and queue it from the start of the method chain."""
    settings = request.app.state.settings
    current = store.get_change_set(change_set_id)
    if current.state is not ChangeSetState.APPROVED:
        raise ApiError(409, f"change set {change_set_id} is {current.state.value}; only approved")
    methods = {"edit": body.edit_method, "unlearn": body.unlearn_method}
    jobs, errors = loop.replan(
        store, change_set_id, model=body.model, methods=methods, settings=settings
    )
    status_ = loop.change_set_status(change_set_id, settings=settings)
    return ReviewPublic(
        change_set=ChangeSetPublic.of(current, status_),
        plan=plan_summary(plan(store, [current])),
        jobs=[j.to_dict() for j in jobs],
        job_errors=errors,
    )
