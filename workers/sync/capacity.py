"""The capacity-aware choice of a batch's method: which kind of method suits the batch and the
model now, and why (docs/sync.md#capacity).

Locate-and-edit methods write each edit into a few slots of one or two MLPs: cheap for one
edit, cheaper per edit in one batched call for a backlog, but they wear the model down (after
1,000 sequential edits the untouched facts fade) and cannot teach a name the model has never
produced. So, per edit batch and model, in this order:

1. a method the reviewer named runs first, as asked;
2. **teach** (a method that declares `teaches`: it trains on the graph from the current
   version) when the edit budget since the last teaching version is reached, or when a new
   object is a name the model does not produce (`unsayable`);
3. **batched** (a `batched` locate-and-edit method) for a backlog of `sync_backlog` edits
   or more;
4. **single** (a method that applies one request at a time) otherwise.

The budget counts the ledger versions on the head's chain since the last version a teaching
method made: their edited requests, the sum of their delta norms, and the agreement of the
head's latest sync check. The choice reorders the model's chain (its other steps stay as
fallbacks) and is recorded with its reason on each attempt of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select

from workers.db import AgreementSnapshotRow, VersionRow
from workers.errors import InvalidInputError
from workers.jobs.dispatch import resolve
from workers.ledger.registry import model_row
from workers.ledger.versions import chain as version_chain
from workers.settings import Settings

SINGLE, BATCHED, TEACH, NAMED, CHAIN = "single", "batched", "teach", "named", "chain"
# the answer and answer-id fields of an agreement observation
# [subject, relation, object, exact, answer, answer id, probability]
_OBJECT, _EXACT, _ANSWER_ID = 2, 3, 5


@dataclass(frozen=True)
class Budget:
    """What happened to a model since its last teaching version (or its root)."""

    versions: int
    edits: int
    norm: float
    agreement: float | None  # exact share of the head's latest sync check, None if none

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class Choice:
    """The kind of method chosen for a batch, the method, and the reason."""

    role: str  # "single", "batched", "teach", "named" or "chain"
    method: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data."""
        return asdict(self)


def _teaches(method: str | None) -> bool:
    """Whether a method (by name, as stored in the ledger) declares `teaches`."""
    if not method:
        return False
    try:
        return bool(resolve("edit", method).teaches)
    except InvalidInputError:  # a method no longer registered, or an unlearning method
        return False


def budget_of(session: Any, model: str) -> Budget:
    """Return the model's budget figures: versions on the head chain since the last teaching."""
    head = model_row(session, model).head_version_id
    rows = version_chain(session, model, head) if head is not None else []
    since: list[VersionRow] = []
    for row in reversed(rows):
        if _teaches(row.method):
            break
        if row.parent_id is not None:
            since.append(row)
    snapshot = None
    if head is not None:
        snapshot = session.scalars(
            select(AgreementSnapshotRow)
            .where(AgreementSnapshotRow.model_name == model)
            .where(AgreementSnapshotRow.version_id == head)
            .order_by(AgreementSnapshotRow.id.desc())
            .limit(1)
        ).first()
    agreement = None
    if snapshot is not None and snapshot.observations:
        obs = list(snapshot.observations.values())
        agreement = sum(bool(o[_EXACT]) for o in obs) / len(obs)
    return Budget(
        versions=len(since),
        edits=sum(len(r.request_ids or []) for r in since),
        norm=float(sum(r.norm or 0.0 for r in since)),
        agreement=agreement,
    )


def budget_reason(budget: Budget, settings: Settings) -> str | None:
    """Return why the budget is reached (the first limit passed), or None."""
    if settings.sync_consolidation_edits and budget.edits >= settings.sync_consolidation_edits:
        return (
            f"edit budget reached: {budget.edits} edits since the last consolidation "
            f"(limit {settings.sync_consolidation_edits})"
        )
    if settings.sync_consolidation_norm and budget.norm >= settings.sync_consolidation_norm:
        return (
            f"delta-norm budget reached: Σ‖Δ‖ = {budget.norm:.1f} since the last consolidation "
            f"(limit {settings.sync_consolidation_norm:g})"
        )
    floor = settings.sync_consolidation_agreement
    if floor and budget.agreement is not None and budget.agreement < floor:
        return (
            f"agreement budget reached: the sync check agrees on {budget.agreement:.1%} of the "
            f"facts (floor {floor:.0%})"
        )
    return None


def sayable_objects(session: Any, model: str) -> set[str] | None:
    """Return the entity ids the model's latest sync check saw it produce (objects it
    recalled exactly and answers it gave); None without a check."""
    snapshot = session.scalars(
        select(AgreementSnapshotRow)
        .where(AgreementSnapshotRow.model_name == model)
        .order_by(AgreementSnapshotRow.id.desc())
        .limit(1)
    ).first()
    if snapshot is None or not snapshot.observations:
        return None
    out = set()
    for o in snapshot.observations.values():
        if o[_EXACT]:
            out.add(str(o[_OBJECT]))
        if len(o) > _ANSWER_ID and o[_ANSWER_ID]:
            out.add(str(o[_ANSWER_ID]))
    return out


def unsayable(new_objects: Sequence[str | None], sayable: set[str] | None) -> list[str]:
    """Return the new objects the model was not seen to produce (none without a measurement)."""
    if sayable is None:
        return []
    return sorted({o for o in new_objects if o is not None and o not in sayable})


def choose(
    kind: str,
    methods: Sequence[str],
    n_requests: int,
    *,
    named: bool,
    budget: str | None,
    cannot_say: Sequence[str],
    backlog: int,
) -> tuple[int, Choice]:
    """Return (index in `methods` of the step to run first, the choice with its reason).

    `methods` is the model's chain (method names in order); `budget` the budget reason (or
    None); `cannot_say` the new objects the model does not produce.
    """
    entries = [resolve(kind, m) for m in methods]
    if named:
        return 0, Choice(NAMED, methods[0], "named by the reviewer")
    if kind != "edit":
        return 0, Choice(CHAIN, methods[0], f"{kind} requests: the configured chain")

    def first(role: str, test: Any, reason: str) -> tuple[int, Choice] | None:
        for i, entry in enumerate(entries):
            if test(entry):
                return i, Choice(role, methods[i], reason)
        return None

    teach_reasons = []
    if budget:
        teach_reasons.append(budget)
    if cannot_say:
        teach_reasons.append(
            f"the model does not produce {', '.join(cannot_say[:5])} (sync check): "
            "locate-and-edit cannot teach a new name"
        )
    picked = None
    if teach_reasons:
        picked = first(TEACH, lambda e: e.teaches, "; ".join(teach_reasons))
    if picked is None and n_requests >= backlog:
        reason = f"backlog of {n_requests} edits (≥ {backlog}): one batched edit"
        picked = first(BATCHED, lambda e: e.batched and not e.teaches, reason)
    if picked is None:
        reason = f"{n_requests} edit(s) (< backlog of {backlog}): single edits"
        picked = first(SINGLE, lambda e: not e.batched, reason)
    return picked or (0, Choice(CHAIN, methods[0], "the configured chain"))
