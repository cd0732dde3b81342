"""The store core: the public `GraphStore` contract written once above a backend's primitives.

Validation, duplicate checks, the change-log policy (every mutation logs who, why and what in
the same transaction) and the order of reads live here. A backend (`kg.store.sql`,
`kg.store.neo4j`) subclasses `StoreCore` and implements the primitives marked `abstractmethod`
below: plain reads and writes of already-checked data, nothing that decides.

The primitives, by group:

- connection: `url`, `close`, `transaction`;
- writes: `_insert_entities`, `_append_alias`, `_insert_relations`, `_insert_fact`,
  `_insert_facts`,
  `_retract`, `_insert_concept`, `_set_redirect`, `_insert_mark`, `_write_change_set`,
  `_write_vectors`, `_log`, `_bump`;
- reads: `_existing`, `_select_entities`, `_find_entities`, `_search_entities`,
  `_select_relations`,
  `_select_facts`, `_stored_versions`, `_incident`, `_select_concepts`, `_select_marks`,
  `_select_change_sets`, `_select_vectors`, `_select_log`, `_count`, `_fact_counts`,
  `_counter`.

`_bulk_write` has a default made of the write primitives; a backend may override it with a
faster path (the SQL store drops and rebuilds its indexes around the load).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from kg.errors import DuplicateError, NotFoundError, ValidationError
from kg.store.base import (
    MAX_WHY,
    Direction,
    GraphWalks,
    RelationFilter,
    bulk_checked,
    check_actor,
    check_limit,
    check_types,
    chunks,
    group_incident,
)
from kg.types import (
    ChangeLogEntry,
    ChangeSet,
    ChangeSetState,
    Concept,
    Entity,
    Fact,
    FactStatus,
    ForgetMark,
    Operation,
    Relation,
    check_id,
    check_name,
    name_key,
)

SEARCH_CANDIDATES = 2000  # matches a partial-name search reads from the backend before ranking
CURRENT, RETRACTED = FactStatus.CURRENT.value, FactStatus.RETRACTED.value  # stored status texts
Kind = Literal["entity", "relation", "concept"]
Counted = Literal["entities", "relations", "concepts"]
CountBy = Literal["all", "source", "subject"]
FactKey = tuple[Any, ...]
Ids = Iterable[str] | None
Rels = RelationFilter | None
Record = dict[str, Any]
Triple = tuple[str, str, str]
Versioned = tuple[str, str, str, str, int]  # a stored fact's triple, status and version
Checked = tuple[list[Entity], list[Relation], Iterator[Fact]]  # see `bulk_checked`


@dataclass(frozen=True)
class Page:
    """A window of an ordered read: skip `offset` rows, return at most `limit`."""

    limit: int | None = None
    offset: int = 0


ALL = Page()


@dataclass(frozen=True)
class FactQuery:
    """A read of facts, ordered by id: every field that is set must match."""

    id: int | None = None
    subjects: tuple[str, ...] | None = None
    object: str | None = None
    relation: str | None = None
    status: str | None = None
    source: str | None = None
    limit: int | None = None
    offset: int = 0


def status_value(status: FactStatus | str | None) -> str | None:
    """Return a status filter as its stored text (None: any status)."""
    return None if status is None else FactStatus(status).value


def fact_key(subject: str, relation: str, obj: str, status: str, version: int) -> FactKey:
    """Return a fact's identity for duplicate checks.

    Current facts are unique by triple; others by triple, status and version.
    """
    if status == FactStatus.CURRENT.value:
        return (subject, relation, obj)
    return (subject, relation, obj, status, int(version))


def utc(value: datetime) -> datetime:
    """Return `value` with UTC attached when it has no time zone."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def change_set_record(change_set: ChangeSet) -> dict[str, Any]:
    """Return a change set as a JSON-ready record (times as aware datetimes)."""
    return {
        "id": change_set.id,
        "author": change_set.author,
        "reason": change_set.reason,
        "created_at": utc(change_set.created_at),
        "state": ChangeSetState(change_set.state).value,
        "operations": [
            {"kind": op.kind.value, "payload": dict(op.payload)} for op in change_set.operations
        ],
        "base": [dict(slot) for slot in change_set.base],
        "graph_version": change_set.graph_version,
        "reviewer": change_set.reviewer,
        "review_note": change_set.review_note,
    }


def change_set_from_record(record: Mapping[str, Any]) -> ChangeSet:
    """Return the change set of a record made by `change_set_record`."""
    return ChangeSet(
        id=record["id"],
        author=record["author"],
        reason=record["reason"],
        created_at=utc(record["created_at"]),
        operations=tuple(Operation(**op) for op in record["operations"] or ()),
        state=record["state"],
        base=tuple(record["base"] or ()),
        graph_version=record["graph_version"],
        reviewer=record["reviewer"],
        review_note=record["review_note"] or "",
    )


class StoreCore(GraphWalks):
    """Every public `GraphStore` method, over the primitives a backend implements."""

    max_why = MAX_WHY  # longest `why` this backend stores
    log_list_cap = 100  # longest id or source list a change-log payload carries

    # -- connection (backend) -----------------------------------------------------------------

    @property
    @abstractmethod
    def url(self) -> str:
        """Return the store's URL with any password hidden."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """Run the enclosed store calls in one transaction (nested calls join it)."""

    # -- write primitives (backend; inputs are already checked) -------------------------------

    @abstractmethod
    def _insert_entities(self, entities: Sequence[Entity]) -> None:
        """Write new entities and their aliases (duplicate aliases dropped, order kept)."""

    @abstractmethod
    def _append_alias(self, entity: Entity, alias: str) -> None:
        """Add `alias` after the entity's current aliases."""

    @abstractmethod
    def _insert_relations(self, relations: Sequence[Relation]) -> None:
        """Write new relations."""

    @abstractmethod
    def _insert_fact(self, fact: Fact) -> Fact:
        """Write one new fact; return it with its id."""

    @abstractmethod
    def _insert_facts(self, facts: Sequence[Fact]) -> None:
        """Write new facts in bulk (their ids are not read back)."""

    @abstractmethod
    def _retract(self, subject: str, relation: str, obj: str) -> Fact | None:
        """Mark the current fact of a triple retracted (version + 1); None if there is none."""

    @abstractmethod
    def _insert_concept(self, concept: Concept) -> None:
        """Write a new concept."""

    @abstractmethod
    def _set_redirect(self, concept_id: str, anchor_id: str | None) -> None:
        """Set a stored concept's redirect anchor."""

    @abstractmethod
    def _insert_mark(self, mark: ForgetMark) -> ForgetMark:
        """Write a forget mark; return it with its id."""

    @abstractmethod
    def _write_change_set(self, record: dict[str, Any], *, create: bool) -> None:
        """Insert (next in creation order) or overwrite a change-set record."""

    @abstractmethod
    def _write_vectors(self, rows: Sequence[tuple[str, np.ndarray]], model: str) -> None:
        """Store (key, float32 vector) rows of `model`, replacing old ones."""

    @abstractmethod
    def _log(self, who: str, why: str, action: str, payload: dict[str, Any]) -> None:
        """Append one change-log row in the current transaction."""

    @abstractmethod
    def _bump(self, counter: str) -> int:
        """Increase a named counter by one (locking it until commit); return the new value."""

    # -- read primitives (backend) --------------------------------------------------------------

    @abstractmethod
    def _existing(self, kind: Kind, ids: Iterable[str]) -> set[str]:
        """Return which of the ids are stored."""

    @abstractmethod
    def _select_entities(self, ids: Ids, kind: str | None = None, page: Page = ALL) -> list[Entity]:
        """Return entities ordered by id: of the given ids, or a page of all (of one kind)."""

    @abstractmethod
    def _find_entities(self, key: str) -> list[Entity]:
        """Return entities whose name or an alias has the name key, ordered by id."""

    @abstractmethod
    def _search_entities(self, key: str, limit: int) -> list[Entity]:
        """Return at most `limit` entities, ordered by id, whose name key or an alias key starts
        with `key` or holds `" " + key` (a prefix of one of its words onwards)."""

    @abstractmethod
    def _select_relations(self, ids: Iterable[str] | None = None) -> list[Relation]:
        """Return relations ordered by id (of the given ids, or all)."""

    @abstractmethod
    def _select_facts(self, query: FactQuery) -> list[Fact]:
        """Return the facts that match a query, ordered by id."""

    @abstractmethod
    def _stored_versions(self, triples: list[Triple], current_only: bool) -> list[Versioned]:
        """Return (subject, relation, object, status, version) of stored facts of the triples."""

    @abstractmethod
    def _incident(self, ids: list[str], way: Direction, rels: Rels, cap: int | None) -> list[Fact]:
        """Return current facts touching the ids (at least the first n by sample key each)."""

    @abstractmethod
    def _select_concepts(self, ids: Iterable[str] | None = None) -> list[Concept]:
        """Return concepts ordered by id (of the given ids, or all)."""

    @abstractmethod
    def _select_marks(self, concept_id: str | None) -> list[ForgetMark]:
        """Return forget marks in id order (of one concept if given)."""

    @abstractmethod
    def _select_change_sets(self, key: str | None, state: str | None, page: Page) -> list[Record]:
        """Return change-set records in creation order (see `change_set_record`)."""

    @abstractmethod
    def _select_vectors(self, keys: Sequence[str], model: str) -> dict[str, np.ndarray]:
        """Return the stored float32 vectors of the keys for `model`."""

    @abstractmethod
    def _select_log(self, limit: int | None, action: str | None) -> list[ChangeLogEntry]:
        """Return change-log entries, oldest first."""

    @abstractmethod
    def _count(self, kind: Counted) -> int:
        """Return the number of entities, relations or concepts."""

    @abstractmethod
    def _fact_counts(self, by: CountBy, status: str | None, source: str | None) -> dict[str, int]:
        """Return fact counts, grouped by source or subject ({"": n} for `all`)."""

    @abstractmethod
    def _counter(self, counter: str) -> int:
        """Return a named counter (0 if never bumped)."""

    # -- shared checks ------------------------------------------------------------------------

    def _check_actor(self, who: str, why: str) -> None:
        """Raise ValidationError unless who/why are valid and `why` fits this backend."""
        check_actor(who, why)
        if len(why) > self.max_why:
            raise ValidationError(f"why is {len(why)} characters long (max {self.max_why} here)")

    def _require(self, kind: Kind, ids: Iterable[str]) -> None:
        """Raise NotFoundError naming the first of the ids that is not stored."""
        wanted = set(ids)
        missing = wanted - self._existing(kind, wanted)
        if missing:
            raise NotFoundError(kind, sorted(missing)[0])

    def _log_ids(self, payload: dict[str, Any], ids: Iterable[str]) -> dict[str, Any]:
        """Add the sorted ids to a log payload when they are few enough."""
        listed = sorted(ids)
        if len(listed) <= self.log_list_cap:
            payload["ids"] = listed
        return payload

    def _new_facts(self, facts: Sequence[Fact], *, skip: bool, seen: set[FactKey]) -> list[Fact]:
        """Check a chunk's references and duplicates; return the facts to write.

        Without `skip`, a current fact whose triple is stored (or seen earlier in the call)
        raises DuplicateError; with `skip`, exact copies of stored or seen facts are dropped.
        """
        self._require("relation", {f.relation for f in facts})
        self._require("entity", {f.subject for f in facts} | {f.object for f in facts})
        checked = sorted({f.triple for f in facts if skip or f.status == FactStatus.CURRENT})
        stored = {fact_key(*row) for row in self._stored_versions(checked, current_only=not skip)}
        keep: list[Fact] = []
        for fact in facts:
            status = FactStatus(fact.status).value
            if skip or status == FactStatus.CURRENT.value:
                key = fact_key(fact.subject, fact.relation, fact.object, status, fact.version)
                if key in stored or key in seen:
                    if skip:
                        continue
                    raise DuplicateError(f"current fact {fact.triple} already exists")
                seen.add(key)
            keep.append(fact)
        return keep

    # -- change log ---------------------------------------------------------------------------

    def log(self, who: str, why: str, action: str, payload: dict[str, Any] | None = None) -> None:
        """Append a change-log row (for actions outside the store, e.g. a model edit)."""
        self._check_actor(who, why)
        check_id(action, "action")
        with self.transaction():
            self._log(who, why, action, dict(payload or {}))

    def change_log(
        self, limit: int | None = None, action: str | None = None
    ) -> list[ChangeLogEntry]:
        """Return change-log entries, oldest first, optionally of one action only."""
        return self._select_log(limit, action)

    # -- entities -----------------------------------------------------------------------------

    def add_entity(self, entity: Entity, who: str = "system", why: str = "import") -> Entity:
        """Add one entity; DuplicateError if its id is taken."""
        self.add_entities([entity], who=who, why=why)
        return entity

    def add_entities(
        self,
        entities: Iterable[Entity],
        who: str = "system",
        why: str = "import",
        *,
        batch: int = 1000,
        skip_existing: bool = False,
    ) -> int:
        """Add entities, checked and written in chunks of `batch`; return how many were added."""
        self._check_actor(who, why)
        seen: set[str] = set()
        with self.transaction():
            for chunk in chunks(entities, batch):
                check_types(chunk, Entity)
                existing = self._existing("entity", (e.id for e in chunk))
                new: list[Entity] = []
                for entity in chunk:
                    if entity.id in existing or entity.id in seen:
                        if skip_existing:
                            continue
                        raise DuplicateError(f"entity id {entity.id!r} already exists")
                    seen.add(entity.id)
                    new.append(entity)
                if new:
                    self._insert_entities(new)
            self._log(who, why, "add_entities", self._log_ids({"count": len(seen)}, seen))
        return len(seen)

    def get_entity(self, entity_id: str) -> Entity:
        """Return one entity; NotFoundError if the id is unknown."""
        found = self._select_entities([entity_id])
        if not found:
            raise NotFoundError("entity", entity_id)
        return found[0]

    def list_entities(
        self, limit: int | None = None, offset: int = 0, kind: str | None = None
    ) -> list[Entity]:
        """Return entities ordered by id."""
        return self._select_entities(None, kind, Page(limit, offset))

    def find_entities(self, name_or_alias: str) -> list[Entity]:
        """Return entities whose name or an alias equals the text (case-insensitive)."""
        return self._find_entities(name_key(name_or_alias))

    def search_entities(self, text: str, limit: int = 50) -> list[Entity]:
        """Return entities a partial name finds: `text` is the start of a word of their name or
        of an alias (case-insensitive), whole-name matches first, then names that start with
        it, then the rest by name; at most `limit` (1 to 1000)."""
        check_limit(limit, "limit")
        limit = min(limit, 1000)
        key = name_key(text)
        if not key:
            return []
        exact = self._find_entities(key)
        found = {e.id: e for e in self._search_entities(key, SEARCH_CANDIDATES)}
        found.update({e.id: e for e in exact})

        def rank(e: Entity) -> tuple[int, str, str]:
            names = [name_key(n) for n in e.names()]
            if key in names:
                return (0, name_key(e.name), e.id)
            if any(n.startswith(key) for n in names):
                return (1, name_key(e.name), e.id)
            return (2, name_key(e.name), e.id)

        return sorted(found.values(), key=rank)[:limit]

    def entity_names(self, ids: Iterable[str]) -> dict[str, str]:
        """Return {id: name} for the given ids (unknown ids are left out)."""
        return {e.id: e.name for e in self._select_entities(list(ids))}

    def add_alias(
        self, entity_id: str, alias: str, who: str = "system", why: str = "import"
    ) -> Entity:
        """Add another name to an entity and return the updated entity."""
        self._check_actor(who, why)
        check_name(alias, "alias")
        with self.transaction():
            entity = self.get_entity(entity_id)
            if alias in entity.aliases or alias == entity.name:
                raise DuplicateError(f"entity {entity_id!r} already has the name {alias!r}")
            self._append_alias(entity, alias)
            self._log(who, why, "add_alias", {"entity": entity_id, "alias": alias})
        return replace(entity, aliases=(*entity.aliases, alias))

    def count_entities(self) -> int:
        """Return the number of entities."""
        return self._count("entities")

    # -- relations ----------------------------------------------------------------------------

    def add_relation(
        self, relation: Relation, who: str = "system", why: str = "import"
    ) -> Relation:
        """Add one relation; DuplicateError if its id is taken."""
        self.add_relations([relation], who=who, why=why)
        return relation

    def add_relations(
        self,
        relations: Iterable[Relation],
        who: str = "system",
        why: str = "import",
        *,
        skip_existing: bool = False,
    ) -> int:
        """Add relations; return how many were added."""
        self._check_actor(who, why)
        items = list(relations)
        check_types(items, Relation)
        with self.transaction():
            existing = self._existing("relation", (r.id for r in items))
            new: dict[str, Relation] = {}
            for relation in items:
                if relation.id in existing or relation.id in new:
                    if skip_existing:
                        continue
                    raise DuplicateError(f"relation id {relation.id!r} already exists")
                new[relation.id] = relation
            if new:
                self._insert_relations(list(new.values()))
            self._log(who, why, "add_relations", self._log_ids({"count": len(new)}, new))
        return len(new)

    def get_relation(self, relation_id: str) -> Relation:
        """Return one relation; NotFoundError if the id is unknown."""
        found = self._select_relations([relation_id])
        if not found:
            raise NotFoundError("relation", relation_id)
        return found[0]

    def list_relations(self) -> list[Relation]:
        """Return every relation ordered by id."""
        return self._select_relations()

    def count_relations(self) -> int:
        """Return the number of relations."""
        return self._count("relations")

    # -- facts --------------------------------------------------------------------------------

    def add_fact(self, fact: Fact, who: str = "system", why: str = "import") -> Fact:
        """Add one fact and return it with its id; NotFoundError/DuplicateError on bad input."""
        self._check_actor(who, why)
        check_types([fact], Fact)
        with self.transaction():
            self._new_facts([fact], skip=False, seen=set())
            added = self._insert_fact(fact)
            payload = {"id": added.id, "triple": list(fact.triple), "status": added.status.value}
            self._log(who, why, "add_fact", payload)
        return added

    def add_facts(
        self,
        facts: Iterable[Fact],
        who: str = "system",
        why: str = "import",
        *,
        batch: int = 1000,
        skip_duplicates: bool = False,
    ) -> int:
        """Add facts, checked and written in chunks of `batch`; return how many were added."""
        self._check_actor(who, why)
        added = skipped = 0
        sources: set[str] = set()
        seen: set[FactKey] = set()
        with self.transaction():
            for chunk in chunks(facts, batch):
                check_types(chunk, Fact)
                keep = self._new_facts(chunk, skip=skip_duplicates, seen=seen)
                if keep:
                    self._insert_facts(keep)
                skipped += len(chunk) - len(keep)
                added += len(keep)
                sources.update(f.source for f in keep)
            payload = {
                "count": added,
                "skipped_duplicates": skipped,
                "sources": sorted(sources)[: self.log_list_cap],
            }
            self._log(who, why, "add_facts", payload)
        return added

    def bulk_import(
        self,
        entities: Iterable[Entity],
        relations: Iterable[Relation],
        facts: Iterable[Fact],
        who: str = "system",
        why: str = "bulk import",
        *,
        batch: int = 20_000,
    ) -> dict[str, int]:
        """Load a whole graph into an EMPTY store in one transaction (checks done in memory).

        Much faster than `add_*`: references and duplicates are checked against the import
        itself, nothing is looked up in the store. Refused (ValidationError) if the store
        already holds entities, relations or facts. All or nothing on any error, except on
        FalkorDB, which cannot roll back the batches written before the error.
        """
        self._check_actor(who, why)
        ents, rels, fact_iter = bulk_checked(entities, relations, facts)
        counts = {"entities": len(ents), "relations": len(rels), "facts": 0}
        with self.transaction():
            for kind, n in (
                ("entities", self.count_entities()),
                ("relations", self.count_relations()),
                ("facts", self.count_facts()),
            ):
                if n:
                    raise ValidationError(
                        f"bulk_import needs an empty store (it holds {n} {kind}); "
                        "use add_entities / add_facts to add to a populated graph"
                    )
            counts["facts"] = self._bulk_write((ents, rels, fact_iter), batch)
            self._log(who, why, "bulk_import", dict(counts))
        return counts

    def _bulk_write(self, checked: Checked, batch: int) -> int:
        """Write a checked import into the empty store; return the number of facts."""
        entities, relations, facts = checked
        if relations:
            self._insert_relations(relations)
        for chunk in chunks(entities, batch):
            self._insert_entities(chunk)
        n = 0
        for chunk in chunks(facts, batch):
            self._insert_facts(chunk)
            n += len(chunk)
        return n

    def get_fact(self, fact_id: int) -> Fact:
        """Return one fact by its numeric id."""
        found = self._select_facts(FactQuery(id=fact_id))
        if not found:
            raise NotFoundError("fact", str(fact_id))
        return found[0]

    def list_facts(
        self,
        status: FactStatus | str | None = FactStatus.CURRENT,
        *,
        source: str | None = None,
        subjects: Iterable[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Fact]:
        """Return facts ordered by id, filtered by status (None = all), source, subjects."""
        st = status_value(status)
        if subjects is None:
            query = FactQuery(status=st, source=source, limit=limit, offset=offset)
            return self._select_facts(query)
        query = FactQuery(subjects=tuple(sorted(set(subjects))), status=st, source=source)
        end = None if limit is None else offset + limit
        return self._select_facts(query)[offset:end]

    def facts_about(
        self,
        subject_id: str,
        relation_id: str | None = None,
        status: FactStatus | str | None = FactStatus.CURRENT,
    ) -> list[Fact]:
        """Return the facts whose subject is `subject_id` (optionally of one relation)."""
        with self.transaction():
            self._require("entity", [subject_id])
            if relation_id is not None:
                self._require("relation", [relation_id])
            query = FactQuery(
                subjects=(subject_id,), relation=relation_id, status=status_value(status)
            )
            return self._select_facts(query)

    def facts_with_object(
        self, object_id: str, status: FactStatus | str | None = FactStatus.CURRENT
    ) -> list[Fact]:
        """Return the facts whose object is `object_id`."""
        with self.transaction():
            self._require("entity", [object_id])
            return self._select_facts(FactQuery(object=object_id, status=status_value(status)))

    def facts_of_relation(
        self,
        relation_id: str,
        status: FactStatus | str | None = FactStatus.CURRENT,
        limit: int | None = None,
    ) -> list[Fact]:
        """Return the facts of one relation, ordered by id."""
        with self.transaction():
            self._require("relation", [relation_id])
            query = FactQuery(relation=relation_id, status=status_value(status), limit=limit)
            return self._select_facts(query)

    def retract_fact(
        self,
        subject_id: str,
        relation_id: str,
        object_id: str,
        who: str = "system",
        why: str = "import",
    ) -> Fact:
        """Mark the current fact (subject, relation, object) retracted; return it."""
        self._check_actor(who, why)
        with self.transaction():
            fact = self._retract(subject_id, relation_id, object_id)
            if fact is None:
                raise NotFoundError("current fact", f"({subject_id}, {relation_id}, {object_id})")
            payload = {"id": fact.id, "triple": [subject_id, relation_id, object_id]}
            self._log(who, why, "retract_fact", payload)
        return fact

    def count_facts(self, status: FactStatus | str | None = None, source: str | None = None) -> int:
        """Return the number of facts, optionally of one status and/or source."""
        return self._fact_counts("all", status_value(status), source).get("", 0)

    def count_facts_by_source(self, status: FactStatus | str | None = None) -> dict[str, int]:
        """Return {source: number of facts}."""
        return self._fact_counts("source", status_value(status), None)

    def count_facts_by_subject(
        self, status: FactStatus | str | None = FactStatus.CURRENT
    ) -> list[tuple[str, int]]:
        """Return (subject id, number of facts), most facts first, ties by id."""
        counts = self._fact_counts("subject", status_value(status), None)
        return sorted(counts.items(), key=lambda t: (-t[1], t[0]))

    def current_facts(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[Fact]]:
        """Return the current facts of each (subject, relation) slot, ordered by object."""
        wanted = sorted(set(pairs))
        out: dict[tuple[str, str], list[Fact]] = {pair: [] for pair in wanted}
        subjects = tuple(sorted({s for s, _ in wanted}))
        if subjects:
            query = FactQuery(subjects=subjects, status=FactStatus.CURRENT.value)
            for fact in self._select_facts(query):
                if (fact.subject, fact.relation) in out:
                    out[(fact.subject, fact.relation)].append(fact)
        for facts in out.values():
            facts.sort(key=lambda f: f.object)
        return out

    def incident_facts(
        self,
        entity_ids: Iterable[str],
        *,
        direction: Direction = "both",
        relations: RelationFilter | None = None,
        limit_per_entity: int | None = None,
    ) -> dict[str, list[Fact]]:
        """Return each entity's current facts in `direction`, ordered by sample key, capped."""
        if direction not in ("out", "in", "both"):
            raise ValidationError(f"direction must be 'out', 'in' or 'both', got {direction!r}")
        if isinstance(entity_ids, str):
            raise ValidationError("entity_ids must be a collection of ids, not a string")
        check_limit(limit_per_entity, "limit_per_entity")
        ids = sorted(set(entity_ids))
        with self.transaction():
            facts = self._incident(ids, direction, relations, limit_per_entity)
        return group_incident(facts, ids, direction, relations, limit_per_entity)

    # -- concepts and forget marks ------------------------------------------------------------

    def add_concept(self, concept: Concept, who: str = "system", why: str = "import") -> Concept:
        """Add one concept; DuplicateError if its id is taken."""
        self._check_actor(who, why)
        check_types([concept], Concept)
        with self.transaction():
            if self._select_concepts([concept.id]):
                raise DuplicateError(f"concept id {concept.id!r} already exists")
            self._insert_concept(concept)
            self._log(who, why, "add_concept", {"id": concept.id, "name": concept.name})
        return concept

    def get_concept(self, concept_id: str) -> Concept:
        """Return one concept; NotFoundError if the id is unknown."""
        found = self._select_concepts([concept_id])
        if not found:
            raise NotFoundError("concept", concept_id)
        return found[0]

    def set_concept_redirect(
        self, concept_id: str, anchor_id: str | None, who: str = "system", why: str = "curation"
    ) -> Concept:
        """Set (or clear, with None) a concept's redirect anchor, an entity id; change-logged."""
        self._check_actor(who, why)
        with self.transaction():
            before = self.get_concept(concept_id)
            if anchor_id is not None:
                check_id(anchor_id, "anchor id")
                self._require("entity", [anchor_id])
            self._set_redirect(concept_id, anchor_id)
            payload = {"id": concept_id, "redirect_to": anchor_id, "before": before.redirect_to}
            self._log(who, why, "set_concept_redirect", payload)
        return replace(before, redirect_to=anchor_id)

    def list_concepts(self) -> list[Concept]:
        """Return every concept ordered by id."""
        return self._select_concepts()

    def count_concepts(self) -> int:
        """Return the number of concepts."""
        return self._count("concepts")

    def mark_forget(
        self, concept_id: str, change_set_id: str | None, who: str = "system", why: str = "forget"
    ) -> ForgetMark:
        """Record that a concept is to be forgotten; NotFoundError for an unknown concept."""
        self._check_actor(who, why)
        with self.transaction():
            self.get_concept(concept_id)
            mark = self._insert_mark(
                ForgetMark(concept_id, change_set_id, who, datetime.now(UTC), why)
            )
            payload = {"concept": concept_id, "change_set": change_set_id}
            self._log(who, why, "mark_forget", payload)
        return mark

    def forget_marks(self, concept_id: str | None = None) -> list[ForgetMark]:
        """Return forget marks, oldest first (of one concept if given)."""
        return self._select_marks(concept_id)

    # -- graph version and change sets --------------------------------------------------------

    def graph_version(self) -> int:
        """Return the graph version (0 before any approved change set)."""
        return self._counter("graph_version")

    def bump_graph_version(self) -> int:
        """Increase the graph version inside the current transaction and return it.

        The bump takes the counter's write lock first, so concurrent approvals serialise here.
        """
        with self.transaction():
            return self._bump("graph_version")

    def save_change_set(self, change_set: ChangeSet, *, create: bool = False) -> ChangeSet:
        """Insert (create=True; DuplicateError if taken) or overwrite a stored change set."""
        check_types([change_set], ChangeSet)
        record = change_set_record(change_set)
        with self.transaction():
            exists = bool(self._select_change_sets(change_set.id, None, ALL))
            if create and exists:
                raise DuplicateError(f"change set id {change_set.id!r} already exists")
            if not create and not exists:
                raise NotFoundError("change set", change_set.id)
            self._write_change_set(record, create=create)
        return change_set

    def get_change_set(self, change_set_id: str) -> ChangeSet:
        """Return one change set; NotFoundError if unknown."""
        found = self._select_change_sets(change_set_id, None, ALL)
        if not found:
            raise NotFoundError("change set", change_set_id)
        return change_set_from_record(found[0])

    def list_change_sets(
        self, state: ChangeSetState | str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[ChangeSet]:
        """Return change sets in creation order, optionally of one state."""
        st = None if state is None else ChangeSetState(state).value
        records = self._select_change_sets(None, st, Page(limit, offset))
        return [change_set_from_record(r) for r in records]

    # -- vector cache -------------------------------------------------------------------------

    def get_vectors(self, keys: Iterable[str], model: str) -> dict[str, np.ndarray]:
        """Return cached float32 vectors of the keys stored for `model`."""
        return self._select_vectors(sorted(set(keys)), model)

    def put_vectors(self, vectors: Mapping[str, np.ndarray], model: str) -> int:
        """Store float32 vectors by key for `model` (replacing old ones); return the count."""
        check_id(model, "model")
        rows = []
        for key, vector in vectors.items():
            check_id(key, "vector key")
            rows.append((key, np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)))  # (d,)
        with self.transaction():
            self._write_vectors(rows, model)
        return len(rows)
