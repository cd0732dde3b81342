"""Bodies of the change-set routes: drafts, operations, review decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, create_model

from api.schemas.common import Reason, Strict
from kg.curation import PAYLOAD_FIELDS
from kg.types import ChangeSet, OperationKind

_ENTITY = "an entity id, or a name or alias that exactly one entity has"
PAYLOAD_FIELD_TYPES: dict[str, tuple[Any, str]] = {
    "subject": (str, _ENTITY),
    "object": (str, _ENTITY + " (the current object)"),
    "new_object": (str, _ENTITY + " (the object that replaces it)"),
    "entity": (str, _ENTITY),
    "relation": (str, "a relation id, or a label that exactly one relation has"),
    "source": (str, "where the fact comes from (default: the change set)"),
    "id": (str, "the new concept's id"),
    "name": (str, "the new concept's display name"),
    "aliases": (list[str], "other names of the concept"),
    "redirect_to": (str | None, "the entity that answers in the forgotten concept's place"),
    "concept": (str, "a concept id, or a name or alias that exactly one concept has"),
    "alias": (str, "the entity's new name"),
}
"""The type and meaning of every payload field of `kg.curation.PAYLOAD_FIELDS`."""


def _payload_field(name: str, required: bool) -> tuple[Any, Any]:
    """Return the (type, Field) of one payload field."""
    hint, description = PAYLOAD_FIELD_TYPES[name]
    if hint is str:
        return str, Field(... if required else None, min_length=1, max_length=512,
                          description=description)  # fmt: skip
    if hint == list[str]:
        return hint, Field(default_factory=list, max_length=100, description=description)
    return hint, Field(... if required else None, max_length=512, description=description)


def _operation_model(kind: OperationKind) -> type[Strict]:
    """Return the body model of one operation kind: `{"kind": <kind>, "payload": {...}}`."""
    required, optional = PAYLOAD_FIELDS[kind]
    title = "".join(part.title() for part in kind.value.split("_"))
    fields = {n: _payload_field(n, True) for n in required}
    fields |= {n: _payload_field(n, False) for n in optional}
    payload = create_model(
        f"{title}Payload", __base__=Strict, __doc__=f"The payload of `{kind.value}`.", **fields
    )
    return create_model(
        f"{title}Operation",
        __base__=Strict,
        __doc__=f"A `{kind.value}` operation.",
        kind=(Literal[kind.value], ...),
        payload=(payload, ...),
    )


OPERATION_MODELS = {kind: _operation_model(kind) for kind in OperationKind}
OperationBody = Annotated[
    Union[tuple(OPERATION_MODELS.values())],  # noqa: UP007 (a union built from a tuple)
    Field(discriminator="kind"),
]
"""One graph operation: a kind and the payload fields that kind needs (OpenAPI shows each)."""


def operation_dicts(operations: list[Any]) -> list[dict[str, Any]]:
    """Return operation bodies as `{"kind", "payload"}` dicts holding only the fields sent."""
    return [op.model_dump(exclude_unset=True) for op in operations]


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
