"""Versions of a model: the chain behind each one, listing, rollback and diff.

Versions form a tree: each is its parent plus one delta. The model's head is the version
new jobs build on. Rolling back moves the head to an earlier version on its chain (later
versions stay in the ledger, off the head chain); jobs that fail their audit gate or are
cancelled mark their versions `discarded`, which can never become the head again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from workers.db import JobRow, ModelRow, VersionRow, record_of
from workers.errors import ConflictError, HeadMovedError, VersionNotFoundError
from workers.jobs.states import ACTIVE
from workers.ledger.registry import db_of, model_row
from workers.settings import Settings

ACTIVE_STATUS = "active"
DISCARDED = "discarded"


@dataclass(frozen=True)
class VersionInfo:
    """The public view of one version."""

    id: int
    model: str
    parent_id: int | None
    depth: int
    checksum: str
    status: str
    method: str | None
    request_ids: tuple[str, ...]
    norm: float | None
    params: tuple[str, ...]
    job_id: str | None
    step: int | None
    created_at: datetime
    is_head: bool
    on_head_chain: bool

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data."""
        out = dict(self.__dict__)
        out["created_at"] = self.created_at.isoformat()
        out["request_ids"] = list(self.request_ids)
        out["params"] = list(self.params)
        return out


def version_row(session: Any, model: str, version_id: int) -> VersionRow:
    """Return a version of `model`, or raise `VersionNotFoundError`."""
    row = session.get(VersionRow, version_id) if isinstance(version_id, int) else None
    if row is None or row.model_name != model:
        raise VersionNotFoundError(f"model {model!r} has no version {version_id!r}")
    return row


def chain(session: Any, model: str, version_id: int) -> list[VersionRow]:
    """Return the versions from the root to `version_id`, in order."""
    rows = {
        r.id: r for r in session.scalars(select(VersionRow).where(VersionRow.model_name == model))
    }
    if version_id not in rows:
        raise VersionNotFoundError(f"model {model!r} has no version {version_id!r}")
    out, at = [], rows.get(version_id)
    while at is not None:
        out.append(at)
        at = rows.get(at.parent_id) if at.parent_id is not None else None
    return out[::-1]


def version_hashes(session: Any, model: str, version_id: int) -> dict[str, str]:
    """Return the {parameter: hash} map of a version (root hashes updated along its chain)."""
    hashes = dict(model_row(session, model).param_hashes)
    for row in chain(session, model, version_id):
        hashes.update(row.params or {})
    return hashes


def _info(row: VersionRow, head: int | None, head_chain: set[int]) -> VersionInfo:
    """Return the public view of a version row."""
    return record_of(
        row,
        VersionInfo,
        model=row.model_name,
        request_ids=tuple(row.request_ids or ()),
        params=tuple(sorted(row.params or {})),
        is_head=row.id == head,
        on_head_chain=row.id in head_chain,
    )


def list_versions(model: str, *, settings: Settings | None = None) -> list[VersionInfo]:
    """Return every version of a model, oldest first."""
    with db_of(settings).session() as session:
        head = model_row(session, model).head_version_id
        head_chain = {r.id for r in chain(session, model, head)} if head is not None else set()
        rows = session.scalars(
            select(VersionRow).where(VersionRow.model_name == model).order_by(VersionRow.id)
        ).all()
        return [_info(r, head, head_chain) for r in rows]


def get_version(model: str, version_id: int, *, settings: Settings | None = None) -> VersionInfo:
    """Return one version of a model."""
    with db_of(settings).session() as session:
        head = model_row(session, model).head_version_id
        row = version_row(session, model, version_id)
        head_chain = {r.id for r in chain(session, model, head)} if head is not None else set()
        return _info(row, head, head_chain)


def set_head(session: Any, model: str, expected: int | None, new: int) -> None:
    """Move the head from `expected` to `new` atomically, or raise `HeadMovedError`."""
    result = session.execute(
        update(ModelRow)
        .where(ModelRow.name == model, ModelRow.head_version_id == expected)
        .values(head_version_id=new)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise HeadMovedError(
            f"head of model {model!r} is no longer version {expected}; another writer moved it"
        )


def rollback(model: str, version_id: int, *, settings: Settings | None = None) -> VersionInfo:
    """Make an earlier version on the head's chain the head again.

    Refused while a job of the model is working, for discarded versions and for versions
    off the current chain.
    """
    with db_of(settings).session() as session:
        head = model_row(session, model).head_version_id
        target = version_row(session, model, version_id)
        busy = session.scalars(
            select(JobRow.id).where(
                JobRow.model_name == model, JobRow.state.in_([s.value for s in ACTIVE])
            )
        ).first()
        if busy is not None:
            raise ConflictError(f"job {busy} is working on model {model!r}; cancel it first")
        if target.status != ACTIVE_STATUS:
            raise ConflictError(f"version {version_id} was {target.status}; it cannot be the head")
        on_chain = {r.id for r in chain(session, model, head)} if head is not None else set()
        if target.id not in on_chain:
            raise ConflictError(
                f"version {version_id} is not an earlier version of the head ({head}) of {model!r}"
            )
        set_head(session, model, head, target.id)
    return get_version(model, version_id, settings=settings)


def diff_versions(
    model: str, a: int, b: int, *, settings: Settings | None = None
) -> dict[str, Any]:
    """Return how to go from version `a` to `b`: deltas to revert (newest first), then apply."""
    with db_of(settings).session() as session:
        chain_a, chain_b = chain(session, model, a), chain(session, model, b)
        common = 0
        while common < min(len(chain_a), len(chain_b)) and chain_a[common].id == chain_b[common].id:
            common += 1
        revert, apply = chain_a[common:][::-1], chain_b[common:]
        touched = sorted({p for r in revert + apply for p in (r.params or {})})

        def brief(r: VersionRow) -> dict[str, Any]:
            return {
                "id": r.id,
                "method": r.method,
                "request_ids": list(r.request_ids or ()),
                "norm": r.norm,
                "job_id": r.job_id,
            }

        return {
            "model": model,
            "from": a,
            "to": b,
            "common_ancestor": chain_a[common - 1].id,
            "revert": [brief(r) for r in revert],
            "apply": [brief(r) for r in apply],
            "params": touched,
            "checksum_from": chain_a[-1].checksum,
            "checksum_to": chain_b[-1].checksum,
        }
