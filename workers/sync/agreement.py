"""The sync check: does a model version agree with the graph, fact by fact?

`check_agreement` asks the model every current fact of a scope (`kg.agreement`) with the
answer scorer (`editor.answers`: one packed teacher-forced pass, generation only where the
model misses) and returns the verdicts with their counts.

What the model said is stored per (model version, graph) in `agreement_snapshots`, keyed by
fact id, together with the graph version it was read at. The next check of the same model
version reuses every stored answer whose fact is still current with the same subject,
relation and object, and scores only the facts that are new since (added, or replaced by a
change set: a replaced fact gets a new id). Verdicts are recomputed from the stored answers
on every read, so a forget mark or another object added to a slot changes them without
scoring. A new model version is scored in full: a delta can move any fact, and catching
that (the untouched facts an edit damaged) is what the check is for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select

from kg.agreement import (
    CONTRADICTS,
    UNKNOWN,
    Scope,
    Verdict,
    classify,
    count,
    facts_in_scope,
    graph_side,
)
from kg.store import open_store
from kg.store.base import GraphStore
from workers.db import AgreementSnapshotRow, utcnow
from workers.ledger.registry import db_of, model_row
from workers.settings import Settings

# (version id) -> (model, tokenizer) at that version; only called when something is scored
ModelLoader = Callable[[int], tuple[Any, Any]]


@dataclass(frozen=True)
class Agreement:
    """The verdicts of one check and their counts."""

    model: str
    model_version: int
    graph_url: str
    graph_version: int
    scope: Scope
    verdicts: list[Verdict]
    scored: int  # facts scored by this check (the rest came from the stored snapshot)
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def facts(self) -> int:
        """Return the number of facts checked."""
        return len(self.verdicts)

    def conflicts(self) -> list[Verdict]:
        """Return the facts the model contradicts or does not know."""
        return [v for v in self.verdicts if v.status in (CONTRADICTS, UNKNOWN)]

    def to_dict(self, facts: bool = False) -> dict[str, Any]:
        """Return JSON-ready data; `facts` adds every verdict."""
        out: dict[str, Any] = {
            "model": self.model,
            "model_version": self.model_version,
            "graph_url": self.graph_url,
            "graph_version": self.graph_version,
            "scope": self.scope.to_dict(),
            "facts": self.facts,
            **self.counts,
            "agreement": round(self.counts.get("agrees", 0) / self.facts, 4)
            if self.facts
            else None,
            "scored": self.scored,
            "seconds": round(self.seconds, 3),
            "conflicts": [v.to_dict() for v in self.conflicts()[:100]],
        }
        if facts:
            out["verdicts"] = [v.to_dict() for v in self.verdicts]
        return out


def _load_snapshot(session: Any, model: str, version_id: int, graph_url: str) -> dict[str, list]:
    """Return the newest stored observations of a model version on a graph ({} if none)."""
    row = session.scalars(
        select(AgreementSnapshotRow)
        .where(
            AgreementSnapshotRow.model_name == model,
            AgreementSnapshotRow.version_id == version_id,
            AgreementSnapshotRow.graph_url == graph_url,
        )
        .order_by(AgreementSnapshotRow.id.desc())
        .limit(1)
    ).first()
    return dict(row.observations) if row is not None else {}


def _save_snapshot(
    session: Any,
    model: str,
    version_id: int,
    graph_url: str,
    graph_version: int,
    observations: dict[str, list],
) -> None:
    """Replace the stored observations of a model version on a graph."""
    session.execute(
        delete(AgreementSnapshotRow).where(
            AgreementSnapshotRow.model_name == model,
            AgreementSnapshotRow.version_id == version_id,
            AgreementSnapshotRow.graph_url == graph_url,
        )
    )
    session.add(
        AgreementSnapshotRow(
            model_name=model,
            version_id=version_id,
            graph_url=graph_url,
            graph_version=graph_version,
            observations=observations,
            created_at=utcnow(),
        )
    )


def check_agreement(
    model: str,
    store: GraphStore,
    load: ModelLoader,
    *,
    version_id: int | None = None,
    scope: Scope | None = None,
    settings: Settings | None = None,
) -> Agreement:
    """Check a model version (default: the head) against the current facts of a scope."""
    from editor.answers import observe_answers  # torch, only when something is scored

    started = time.perf_counter()
    scope = scope or Scope()
    db = db_of(settings)
    with db.session() as session:
        row = model_row(session, model)
        version_id = row.head_version_id if version_id is None else version_id
        stored = _load_snapshot(session, model, version_id, store.url)
    graph_version = store.graph_version()
    facts = facts_in_scope(store, scope)
    side = graph_side(store, facts, related=facts if scope.is_all else None)
    asked = [f for f in facts if f.id in side.prompts]
    todo = [
        f
        for f in asked
        if stored.get(str(f.id), [None] * 3)[:3] != [f.subject, f.relation, f.object]
    ]
    if todo:
        lm, tokenizer = load(version_id)
        questions = [side.prompts[f.id] for f in todo]
        answers = observe_answers(
            lm, tokenizer, [q.prompt for q in questions], [q.expected for q in questions]
        )
        for f, a in zip(todo, answers, strict=True):
            stored[str(f.id)] = [f.subject, f.relation, f.object, a.exact, a.text, a.probability]
        if scope.is_all:  # forget facts that are no longer current
            current = {str(f.id) for f in asked}
            stored = {k: v for k, v in stored.items() if k in current}
        with db.session() as session:
            _save_snapshot(session, model, version_id, store.url, graph_version, stored)
    verdicts = []
    for f in asked:
        _, _, _, exact, text, probability = stored[str(f.id)]
        verdicts.append(classify(side, f, bool(exact), text, probability))
    return Agreement(
        model=model,
        model_version=version_id,
        graph_url=store.url,
        graph_version=graph_version,
        scope=scope,
        verdicts=verdicts,
        scored=len(todo),
        seconds=time.perf_counter() - started,
        counts=count(verdicts),
    )


class AgreementChecker:
    """Checks agreement for one process: warm models (a bounded LRU) behind one lock."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._warm: Any = None

    def _loader(self, model: str) -> ModelLoader:
        """Return a loader that moves the warm copy of `model` to a version (verified)."""
        from workers.jobs.warm import WarmModels, default_max_bytes  # torch: only to score

        settings = self.settings
        db = db_of(settings)
        if self._warm is None:
            self._warm = WarmModels(default_max_bytes(settings))

        def load(version_id: int) -> tuple[Any, Any]:
            entry = self._warm.get(db, model, settings.device)
            entry.checkout(db, version_id, settings.ledger_path)
            return entry.model, entry.tokenizer

        return load

    def check(
        self, model: str, *, version_id: int | None = None, scope: Scope | None = None
    ) -> Agreement:
        """Check a model version against its graph (the model's graph, else the settings')."""
        with db_of(self.settings).session() as session:
            url = model_row(session, model).graph_url or self.settings.graph_store_url
        store = open_store(url)
        try:
            with self._lock:
                return check_agreement(
                    model,
                    store,
                    self._loader(model),
                    version_id=version_id,
                    scope=scope,
                    settings=self.settings,
                )
        finally:
            store.close()
