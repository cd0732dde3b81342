"""Change-set routes: curators draft and propose, reviewers approve or reject.

Approval applies the change to the graph (refused with 409 and the conflicting facts when
the change set is based on a stale graph), then plans it and queues the jobs that bring the
model in line. A reviewer cannot approve or reject a change set they authored. Authorship is
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
    ReviewBody,
    ReviewPublic,
    operation_dicts,
)
from api.schemas.common import Page, page_of
from kg import curation
from kg.planner import Plan, plan
from kg.types import ChangeSetState
from workers.jobs.from_plan import submit_plan

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
def get_change_set(change_set_id: str, store: StoreDep) -> ChangeSetPublic:
    """Return one change set."""
    return ChangeSetPublic.of(store.get_change_set(change_set_id))


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
    """Approve (apply, plan, queue jobs on `model`) or reject a proposed change set."""
    current = store.get_change_set(change_set_id)
    if current.author == caller.actor:
        raise ApiError(403, "a change set cannot be reviewed by its own author")
    if body.decision == "reject":
        if not body.comment.strip():
            raise ApiError(422, "a rejection needs a comment")
        rejected = curation.reject(store, change_set_id, caller.actor, body.comment)
        return ReviewPublic(change_set=ChangeSetPublic.of(rejected))
    if body.model is not None:
        from workers.ledger.registry import get_model

        get_model(body.model, settings=request.app.state.settings)  # 404 before any write
    approved = curation.approve(store, change_set_id, caller.actor, body.comment)
    result = plan(store, [approved])
    out = ReviewPublic(change_set=ChangeSetPublic.of(approved), plan=plan_summary(result))
    if body.model is not None and result.batches:
        submitted = submit_plan(
            result,
            body.model,
            methods={"edit": body.edit_method, "unlearn": body.unlearn_method},
            settings=request.app.state.settings,
        )
        out.jobs = [j.to_dict() for j in submitted.jobs]
        out.job_errors = list(submitted.errors)
    return out
