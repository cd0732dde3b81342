"""The `GraphStore` contract every backend honours, and the graph walks built on it.

A store holds entities, relations, facts (subject -relation-> object, with a status and a
version), concepts, change sets, forget marks, cached sentence vectors and the change log.
Every mutating call takes `who` and `why` and logs them. Calls made inside
`with store.transaction():` share one transaction.

Backends: `kg.store.sql.SqlGraphStore` (SQLite, PostgreSQL) and `kg.store.neo4j.Neo4jGraphStore`
(Neo4j 5, or FalkorDB over Bolt), both `kg.store.core.StoreCore`: the contract is written once
there over each backend's primitives. `kg.store.open_store(url)` picks one from the URL.

Fan-out order: `incident_facts` returns each entity's facts ordered by `sample_key` of the
triple, a fixed 62-bit hash. Taking the first n is then a deterministic, uniform sample
(bottom-k sampling) that a backend can serve from an index, hubs included.
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from itertools import islice
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import numpy as np

from kg.errors import DuplicateError, NotFoundError, ValidationError
from kg.types import (
    ChangeLogEntry,
    ChangeSet,
    ChangeSetState,
    Concept,
    Entity,
    Fact,
    FactStatus,
    ForgetMark,
    Relation,
    check_name,
)

Direction = Literal["out", "in", "both"]
MAX_WHY = 10_000
MAX_HOPS = 6
PATH_SEARCH_BUDGET = 200_000  # partial paths expanded before a path search stops
T = TypeVar("T")


def sample_key(subject: str, relation: str, obj: str) -> int:
    """Return the fixed pseudo-random 62-bit sampling key of a triple."""
    digest = hashlib.blake2b(f"{subject}\x1f{relation}\x1f{obj}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 2


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Yield lists of at most `size` items."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def check_actor(who: str, why: str) -> None:
    """Raise ValidationError unless `who` is a name and `why` a non-empty bounded text."""
    check_name(who, "who")
    if not isinstance(why, str) or not why.strip():
        raise ValidationError("why must not be empty")
    if len(why) > MAX_WHY:
        raise ValidationError(f"why is {len(why)} characters long (max {MAX_WHY})")


def check_types(items: Iterable[object], kind: type) -> None:
    """Raise ValidationError unless every item is a `kind`."""
    for item in items:
        if not isinstance(item, kind):
            raise ValidationError(f"expected a {kind.__name__}, got {type(item).__name__}")


def check_hops(hops: object, what: str = "hops") -> int:
    """Return `hops` if it is an integer in 1..MAX_HOPS."""
    if not isinstance(hops, int) or isinstance(hops, bool) or not 1 <= hops <= MAX_HOPS:
        raise ValidationError(f"{what} must be an integer in 1..{MAX_HOPS}, got {hops!r}")
    return hops


def check_limit(value: object, what: str) -> int | None:
    """Return `value` if it is None or a positive integer."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationError(f"{what} must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True)
class RelationFilter:
    """Which relations a walk may follow: only `allow` (if given), never `deny`."""

    allow: frozenset[str] | None = None
    deny: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls, allow: Collection[str] | None = None, deny: Collection[str] | None = None
    ) -> RelationFilter:
        """Build a filter from any collections of relation ids."""
        for what, ids in (("allow", allow), ("deny", deny)):
            if isinstance(ids, str):
                raise ValidationError(f"relation {what} list must be a list of ids, not a string")
        return cls(None if allow is None else frozenset(allow), frozenset(deny or ()))

    def admits(self, relation: str) -> bool:
        """Return True if a walk may follow `relation`."""
        if relation in self.deny:
            return False
        return self.allow is None or relation in self.allow


class GraphWalks(Protocol):
    """Neighbourhood and path search for any store that has `incident_facts`."""

    @abstractmethod
    def incident_facts(
        self,
        entity_ids: Iterable[str],
        *,
        direction: Direction = "both",
        relations: RelationFilter | None = None,
        limit_per_entity: int | None = None,
    ) -> dict[str, list[Fact]]:
        """Return the current facts touching each entity (each backend's own query)."""

    def neighbourhood(
        self,
        seeds: Iterable[str],
        hops: int = 2,
        *,
        relations: RelationFilter | None = None,
        limit_per_entity: int | None = None,
    ) -> list[Fact]:
        """Return the current facts within `hops` of the seeds, breadth first, deduplicated."""
        check_hops(hops)
        check_limit(limit_per_entity, "limit_per_entity")
        if isinstance(seeds, str):
            raise ValidationError("seeds must be a collection of entity ids, not a string")
        with self.transaction():  # type: ignore[attr-defined]
            return self._neighbourhood(set(seeds), hops, relations, limit_per_entity)

    def _neighbourhood(
        self,
        seen_nodes: set[str],
        hops: int,
        relations: RelationFilter | None,
        limit_per_entity: int | None,
    ) -> list[Fact]:
        """Breadth-first collection of facts (see `neighbourhood`)."""
        frontier = sorted(seen_nodes)
        out: dict[tuple[str, str, str], Fact] = {}
        for _ in range(hops):
            if not frontier:
                break
            incident = self.incident_facts(
                frontier, relations=relations, limit_per_entity=limit_per_entity
            )
            nxt: set[str] = set()
            for node in frontier:
                for fact in incident.get(node, ()):
                    out.setdefault(fact.triple, fact)
                    other = fact.object if fact.subject == node else fact.subject
                    if other not in seen_nodes:
                        nxt.add(other)
            seen_nodes |= nxt
            frontier = sorted(nxt)
        return list(out.values())

    def paths(
        self, source: str, target: str, max_hops: int = 3, limit: int = 100
    ) -> list[tuple[Fact, ...]]:
        """Return simple undirected paths source … target of ≤ max_hops facts, shortest first.

        Paths of equal length are ordered by their triples; at most `limit` are returned.
        """
        check_hops(max_hops, "max_hops")
        check_limit(limit, "limit")
        if source == target:
            return []
        # distances from the target bound the search from the source (meet in the middle)
        dist = {target: 0}
        frontier = [target]
        adjacency: dict[str, list[Fact]] = {}
        for depth in range(1, max_hops + 1):
            incident = self.incident_facts([n for n in frontier if n not in adjacency])
            adjacency.update({n: incident.get(n, []) for n in frontier if n not in adjacency})
            nxt = []
            for node in frontier:
                for fact in adjacency[node]:
                    other = fact.object if fact.subject == node else fact.subject
                    if other not in dist:
                        dist[other] = depth
                        nxt.append(other)
            frontier = nxt
        if source not in dist:
            return []
        found: list[tuple[Fact, ...]] = []
        queue: deque[tuple[str, tuple[Fact, ...], frozenset[str]]] = deque(
            [(source, (), frozenset([source]))]
        )
        budget = PATH_SEARCH_BUDGET
        while queue and budget > 0:
            budget -= 1
            node, path, visited = queue.popleft()
            if len(found) >= limit and len(path) > len(found[limit - 1]):
                break
            if node == target:
                found.append(path)
                continue
            if node not in adjacency:
                adjacency.update(self.incident_facts([node]))
                adjacency.setdefault(node, [])
            for fact in adjacency[node]:
                other = fact.object if fact.subject == node else fact.subject
                remaining = max_hops - len(path) - 1
                if other in visited or dist.get(other, MAX_HOPS + 1) > remaining:
                    continue
                queue.append((other, (*path, fact), visited | {other}))
        found.sort(key=lambda p: (len(p), [f.triple for f in p]))
        return found[:limit]


@runtime_checkable
class GraphStore(GraphWalks, Protocol):
    """What every graph backend offers (see the module docstring)."""

    @property
    def url(self) -> str:
        """Return the store's URL with any password hidden."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...

    def transaction(self) -> AbstractContextManager[Any]:
        """Run the enclosed store calls in one transaction."""
        ...

    # entities
    def add_entity(self, entity: Entity, who: str = ..., why: str = ...) -> Entity:
        """Add one entity; DuplicateError if its id is taken."""
        ...

    def add_entities(
        self, entities: Iterable[Entity], who: str = ..., why: str = ..., **kw: Any
    ) -> int:
        """Add entities in batches; return how many were added."""
        ...

    def get_entity(self, entity_id: str) -> Entity:
        """Return one entity; NotFoundError if unknown."""
        ...

    def list_entities(
        self, limit: int | None = None, offset: int = 0, kind: str | None = None
    ) -> list[Entity]:
        """Return entities ordered by id."""
        ...

    def find_entities(self, name_or_alias: str) -> list[Entity]:
        """Return entities whose name or alias matches (case-insensitive)."""
        ...

    def search_entities(self, text: str, limit: int = 50) -> list[Entity]:
        """Return entities with a word of a name or alias starting with `text`, best first."""
        ...

    def entity_names(self, ids: Iterable[str]) -> dict[str, str]:
        """Return {id: name} of the known ids."""
        ...

    def add_alias(self, entity_id: str, alias: str, who: str = ..., why: str = ...) -> Entity:
        """Add a name to an entity; return the updated entity."""
        ...

    def count_entities(self) -> int:
        """Return the number of entities."""
        ...

    # relations
    def add_relation(self, relation: Relation, who: str = ..., why: str = ...) -> Relation:
        """Add one relation."""
        ...

    def add_relations(
        self, relations: Iterable[Relation], who: str = ..., why: str = ..., **kw: Any
    ) -> int:
        """Add relations; return how many were added."""
        ...

    def get_relation(self, relation_id: str) -> Relation:
        """Return one relation; NotFoundError if unknown."""
        ...

    def list_relations(self) -> list[Relation]:
        """Return every relation ordered by id."""
        ...

    def count_relations(self) -> int:
        """Return the number of relations."""
        ...

    # facts
    def add_fact(self, fact: Fact, who: str = ..., why: str = ...) -> Fact:
        """Add one fact; return it with its id."""
        ...

    def add_facts(self, facts: Iterable[Fact], who: str = ..., why: str = ..., **kw: Any) -> int:
        """Bulk-add facts in batches; return how many were added."""
        ...

    def bulk_import(
        self,
        entities: Iterable[Entity],
        relations: Iterable[Relation],
        facts: Iterable[Fact],
        who: str = ...,
        why: str = ...,
        *,
        batch: int = ...,
    ) -> dict[str, int]:
        """Load a whole graph into an empty store; return the counts."""
        ...

    def get_fact(self, fact_id: int) -> Fact:
        """Return one fact by id."""
        ...

    def list_facts(
        self,
        status: FactStatus | str | None = ...,
        *,
        source: str | None = None,
        subjects: Iterable[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Fact]:
        """Return facts ordered by id."""
        ...

    def facts_about(
        self, subject_id: str, relation_id: str | None = None, status: FactStatus | str | None = ...
    ) -> list[Fact]:
        """Return the facts of one subject."""
        ...

    def facts_with_object(
        self, object_id: str, status: FactStatus | str | None = ...
    ) -> list[Fact]:
        """Return the facts whose object is the entity."""
        ...

    def facts_of_relation(
        self, relation_id: str, status: FactStatus | str | None = ..., limit: int | None = None
    ) -> list[Fact]:
        """Return the facts of one relation."""
        ...

    def retract_fact(
        self, subject_id: str, relation_id: str, object_id: str, who: str = ..., why: str = ...
    ) -> Fact:
        """Retract the current fact (s, r, o); return it."""
        ...

    def count_facts(self, status: FactStatus | str | None = None, source: str | None = None) -> int:
        """Return the number of facts."""
        ...

    def count_facts_by_subject(
        self, status: FactStatus | str | None = ...
    ) -> list[tuple[str, int]]:
        """Return (subject, number of facts), most first."""
        ...

    def current_facts(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[Fact]]:
        """Return the current facts of each (subject, relation) slot, ordered by object."""
        ...

    # concepts and forget marks
    def add_concept(self, concept: Concept, who: str = ..., why: str = ...) -> Concept:
        """Add one concept."""
        ...

    def get_concept(self, concept_id: str) -> Concept:
        """Return one concept."""
        ...

    def set_concept_redirect(
        self, concept_id: str, anchor_id: str | None, who: str = ..., why: str = ...
    ) -> Concept:
        """Set (or clear, with None) a concept's redirect anchor, an entity id; change-logged."""
        ...

    def list_concepts(self) -> list[Concept]:
        """Return every concept ordered by id."""
        ...

    def count_concepts(self) -> int:
        """Return the number of concepts."""
        ...

    def mark_forget(
        self, concept_id: str, change_set_id: str | None, who: str = ..., why: str = ...
    ) -> ForgetMark:
        """Record that a concept is to be forgotten."""
        ...

    def forget_marks(self, concept_id: str | None = None) -> list[ForgetMark]:
        """Return forget marks, oldest first."""
        ...

    # change sets and graph version
    def graph_version(self) -> int:
        """Return the graph version (0 before any approved change set)."""
        ...

    def bump_graph_version(self) -> int:
        """Increase the graph version by one inside the current transaction; return it."""
        ...

    def save_change_set(self, change_set: ChangeSet, *, create: bool = False) -> ChangeSet:
        """Insert (create=True) or overwrite a stored change set."""
        ...

    def get_change_set(self, change_set_id: str) -> ChangeSet:
        """Return one change set; NotFoundError if unknown."""
        ...

    def list_change_sets(
        self, state: ChangeSetState | str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[ChangeSet]:
        """Return change sets, oldest first."""
        ...

    # vectors
    def get_vectors(self, keys: Iterable[str], model: str) -> dict[str, np.ndarray]:
        """Return cached vectors of the keys that are stored for `model`."""
        ...

    def put_vectors(self, vectors: Mapping[str, np.ndarray], model: str) -> int:
        """Store vectors (overwriting); return how many were written."""
        ...

    # change log
    def log(self, who: str, why: str, action: str, payload: dict[str, Any] | None = None) -> None:
        """Append a change-log row."""
        ...

    def change_log(
        self, limit: int | None = None, action: str | None = None
    ) -> list[ChangeLogEntry]:
        """Return change-log entries, oldest first."""
        ...


def group_incident(
    facts: Iterable[Fact],
    entity_ids: Sequence[str],
    direction: Direction,
    relations: RelationFilter | None,
    limit: int | None,
) -> dict[str, list[Fact]]:
    """Group facts by the wanted entities they touch, filter, order by sample key, cap."""
    wanted = set(entity_ids)
    out: dict[str, dict[tuple[str, str, str], Fact]] = {e: {} for e in entity_ids}
    for fact in facts:
        if FactStatus(fact.status) is not FactStatus.CURRENT:
            continue
        if relations is not None and not relations.admits(fact.relation):
            continue
        if direction in ("out", "both") and fact.subject in wanted:
            out[fact.subject].setdefault(fact.triple, fact)
        if direction in ("in", "both") and fact.object in wanted:
            out[fact.object].setdefault(fact.triple, fact)
    result = {}
    for entity, facts_of in out.items():
        ordered = sorted(facts_of.values(), key=lambda f: (sample_key(*f.triple), f.triple))
        result[entity] = ordered[:limit] if limit is not None else ordered
    return result


def bulk_checked(
    entities: Iterable[Entity], relations: Iterable[Relation], facts: Iterable[Fact]
) -> tuple[list[Entity], list[Relation], Iterator[Fact]]:
    """Check a bulk import in memory: entities and relations now, facts as they stream by.

    The fact iterator raises on a non-Fact, an unknown entity or relation id, or a current
    triple seen twice, so a bulk import inside a transaction fails whole.
    """
    ents, rels = list(entities), list(relations)
    check_types(ents, Entity)
    check_types(rels, Relation)
    entity_ids: set[str] = set()
    for entity in ents:
        if entity.id in entity_ids:
            raise DuplicateError(f"entity id {entity.id!r} appears twice in the import")
        entity_ids.add(entity.id)
    relation_ids = {r.id for r in rels}
    if len(relation_ids) != len(rels):
        raise DuplicateError("a relation id appears twice in the import")

    def checked() -> Iterator[Fact]:
        """Yield facts after checking type, references and current duplicates."""
        current: set[tuple[str, str, str]] = set()
        for n, fact in enumerate(facts, 1):
            if not isinstance(fact, Fact):
                raise ValidationError(f"fact {n}: expected a Fact, got {type(fact).__name__}")
            if fact.relation not in relation_ids:
                raise NotFoundError("relation", fact.relation)
            if fact.subject not in entity_ids:
                raise NotFoundError("entity", fact.subject)
            if fact.object not in entity_ids:
                raise NotFoundError("entity", fact.object)
            if fact.status is FactStatus.CURRENT:
                if fact.triple in current:
                    raise DuplicateError(f"current fact {fact.triple} appears twice in the import")
                current.add(fact.triple)
            yield fact

    return ents, rels, checked()
