"""Bodies of the change-set routes: drafts, operations, review decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas.common import Reason, Strict
from kg.types import ChangeSet, OperationKind


class OperationBody(Strict):
    """One graph operation: its kind and its payload (fields depend on the kind)."""

    kind: OperationKind
    payload: dict[str, Any] = Field(default_factory=dict)


class ChangeSetCreate(Strict):
    """A new draft change set."""

    reason: str = Reason
    operations: list[OperationBody] = Field(default_factory=list, max_length=5000)


class OperationsUpdate(Strict):
    """The full new list of a draft's operations."""

    operations: list[OperationBody] = Field(..., max_length=5000)


class ReviewBody(Strict):
    """A reviewer's decision; an approval plans the change and queues its jobs on every model
    that follows the graph (or on `model`); `graph_only` approves with no model change."""

    decision: Literal["approve", "reject"]
    comment: str = Field("", max_length=2000)
    model: str | None = Field(
        None, max_length=64, description="registered model to bring in line (default: followers)"
    )
    graph_only: bool = Field(False, description="approve the graph change alone, queue nothing")
    edit_method: str | None = Field(
        None, min_length=1, max_length=64, description="default: the registry's edit method"
    )
    unlearn_method: str | None = Field(
        None, min_length=1, max_length=64, description="default: the registry's unlearn method"
    )


class ChangeSetPublic(BaseModel):
    """A change set as the API shows it."""

    id: str
    author: str
    reason: str
    created_at: datetime
    state: str
    operations: list[dict[str, Any]]
    graph_version: int | None
    reviewer: str | None
    review_note: str
    models: list[dict[str, Any]] | None = Field(
        None,
        description="per model: the change's state in it (queued, applied, verified, "
        "unverified, cancelled, failed_in_model) with every attempt's job, version and gate",
    )

    @classmethod
    def of(cls, cs: ChangeSet, models: list[dict[str, Any]] | None = None) -> ChangeSetPublic:
        """Return the public view of a change set."""
        return cls(
            id=cs.id,
            author=cs.author,
            reason=cs.reason,
            created_at=cs.created_at,
            state=str(getattr(cs.state, "value", cs.state)),
            operations=[
                {"kind": str(getattr(op.kind, "value", op.kind)), "payload": op.payload}
                for op in cs.operations
            ],
            graph_version=cs.graph_version,
            reviewer=cs.reviewer,
            review_note=cs.review_note,
            models=models,
        )


class ReplanBody(Strict):
    """Plan an approved change set again on one model (default: every following model)."""

    model: str | None = Field(None, max_length=64)
    edit_method: str | None = Field(None, min_length=1, max_length=64)
    unlearn_method: str | None = Field(None, min_length=1, max_length=64)


class ReviewPublic(BaseModel):
    """The reviewed change set, and for an approval its plan and the jobs it queued."""

    change_set: ChangeSetPublic
    plan: dict[str, Any] | None = None
    jobs: list[dict[str, Any]] = Field(default_factory=list)
    job_errors: list[dict[str, Any]] = Field(default_factory=list)
