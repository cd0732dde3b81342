"""A read-through cache over a graph store, for deriving many probes without repeated queries."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

from kg.errors import NotFoundError
from kg.relsim import RelationEmbedder, RelationSimilarity
from kg.store.base import GraphStore
from kg.types import Fact, Relation

# Relations whose objects agree on at least this many shared subjects (and on every one of
# them) state one fact in other words (`GraphView.same_fact`).
SAME_FACT_MIN_SUBJECTS = 2

Side = Literal["subject", "object"]


def _cached_facts(
    cache: dict[str, list[Fact]], key: str, fetch: Callable[[str], list[Fact]]
) -> list[Fact]:
    """Return `cache[key]`, filled by `fetch(key)` on first use ([] when it is unknown)."""
    if key not in cache:
        try:
            cache[key] = fetch(key)
        except NotFoundError:
            cache[key] = []
    return cache[key]


class GraphView:
    """Memoised reads of one store: relations, names, facts by subject and by relation."""

    def __init__(self, store: GraphStore, embed: RelationEmbedder | None = None) -> None:
        self.store = store
        self._embed = embed
        self._relations: dict[str, Relation] | None = None
        self._names: dict[str, str] = {}
        self._about: dict[str, list[Fact]] = {}
        self._of_relation: dict[str, list[Fact]] = {}
        self._resolved: dict[str, list[str]] = {}
        self._similarity: RelationSimilarity | None = None
        self._same_fact: dict[str, frozenset[str]] = {}

    @classmethod
    def of(cls, graph: GraphStore | GraphView) -> GraphView:
        """Return `graph` if it is a view already, else a new view over the store."""
        return graph if isinstance(graph, GraphView) else cls(graph)

    def relations(self) -> dict[str, Relation]:
        """Return every relation by id."""
        if self._relations is None:
            self._relations = {r.id: r for r in self.store.list_relations()}
        return self._relations

    def relation(self, relation_id: str) -> Relation:
        """Return one relation; NotFoundError if unknown."""
        try:
            return self.relations()[relation_id]
        except KeyError:
            raise NotFoundError("relation", relation_id) from None

    def names(self, ids: Iterable[str]) -> dict[str, str]:
        """Return {id: name} for the known ids, in the order of `ids`."""
        wanted = list(dict.fromkeys(ids))
        missing = set(wanted) - self._names.keys()
        if missing:
            self._names.update(self.store.entity_names(missing))
        return {i: self._names[i] for i in wanted if i in self._names}

    def name(self, entity_id: str) -> str:
        """Return the name of one entity; NotFoundError if unknown."""
        found = self.names([entity_id])
        if entity_id not in found:
            raise NotFoundError("entity", entity_id)
        return found[entity_id]

    def facts_about(self, entity_id: str) -> list[Fact]:
        """Return the current facts whose subject is the entity ([] if it is unknown)."""
        return _cached_facts(self._about, entity_id, self.store.facts_about)

    def facts_with_object(self, entity_id: str) -> list[Fact]:
        """Return the current facts whose object is the entity ([] if it is unknown)."""
        try:
            return self.store.facts_with_object(entity_id)
        except NotFoundError:
            return []

    def facts_of_relation(self, relation_id: str) -> list[Fact]:
        """Return the current facts of one relation ([] if it is unknown)."""
        return _cached_facts(self._of_relation, relation_id, self.store.facts_of_relation)

    def resolve(self, name: str) -> list[str]:
        """Return the ids of the entities with this name or alias."""
        if name not in self._resolved:
            self._resolved[name] = [e.id for e in self.store.find_entities(name)]
        return self._resolved[name]

    def pick(self, name: str | None, relation: str | None, side: Side) -> str | None:
        """Resolve a name to one entity id, preferring one that is the `side` of `relation`."""
        if not name:
            return None
        ids = self.resolve(name)
        if not ids:
            return None
        if relation is not None:
            facts = self.facts_of_relation(relation)
            for entity_id in ids:
                if any((f.subject if side == "subject" else f.object) == entity_id for f in facts):
                    return entity_id
        return ids[0]

    def similarity(self) -> RelationSimilarity:
        """Return the relation similarity of the whole graph (built on first use)."""
        if self._similarity is None:
            relations = list(self.relations().values())
            objects = {r.id: [f.object for f in self.facts_of_relation(r.id)] for r in relations}
            self._similarity = RelationSimilarity(relations, objects, self._embed)
        return self._similarity

    def _objects_by_subject(self, relation_id: str) -> dict[str, frozenset[str]]:
        """Return {subject: its objects} of one relation's facts."""
        out: dict[str, set[str]] = {}
        for f in self.facts_of_relation(relation_id):
            out.setdefault(f.subject, set()).add(f.object)
        return {s: frozenset(o) for s, o in out.items()}

    def same_fact(self, relation_id: str) -> frozenset[str]:
        """Return the other relations that state the same fact as `relation_id`.

        Either declared (`Relation.equivalent_to`, read both ways) or observed: every subject
        that has facts of both relations has the same objects under each, and at least
        `SAME_FACT_MIN_SUBJECTS` subjects have both.
        """
        if relation_id in self._same_fact:
            return self._same_fact[relation_id]
        relations = self.relations()
        found = set(relations[relation_id].equivalent_to) if relation_id in relations else set()
        found |= {r.id for r in relations.values() if relation_id in r.equivalent_to}
        mine = self._objects_by_subject(relation_id)
        for other in relations:
            if other == relation_id or other in found:
                continue
            theirs = self._objects_by_subject(other)
            shared = mine.keys() & theirs.keys()
            if len(shared) >= SAME_FACT_MIN_SUBJECTS and all(mine[s] == theirs[s] for s in shared):
                found.add(other)
        found.discard(relation_id)
        self._same_fact[relation_id] = frozenset(found)
        return self._same_fact[relation_id]
