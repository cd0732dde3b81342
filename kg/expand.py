"""GLAME subgraph expansion of an edit (s, r, o → o*): the knowledge around the new object.

GLAME feeds a relational GNN the edit triple (s, r, o*) plus the knowledge around the new
object. This module walks up to `hops` hops out of o* (outgoing facts by default, as GLAME's
sampler does; `direction="both"` adds incoming ones), keeping at most `fanout[h]` facts per
entity at hop h, following only relations the allow/deny lists admit, and stopping at
`max_nodes` entities. Sampling is deterministic: the store hands back each entity's facts
ordered by the triple's fixed sample key (bottom-k, served from an index), at most `scan` of
them; with `seed != 0` those candidates are re-ranked by a hash keyed by the seed. The result
is a `contracts.Subgraph`: node labels are entity names, edge labels are relation labels, the
center (index 0) is the subject, edge 0 is (s, r, o*).

`expand_edit` works from entity ids (the planner's intents), `expand_request` from an
`EditRequest`'s names (the benchmarks and workers). The multi-hop probes of the chains through
o* and o are derived with every other probe kind in `kg.probes`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from contracts.types import EditRequest, Subgraph, SubgraphEdge
from kg.errors import NotFoundError, ValidationError
from kg.store.base import Direction, GraphStore, RelationFilter, check_hops
from kg.types import Fact
from kg.view import GraphView


@dataclass(frozen=True)
class ExpansionConfig:
    """How far and how wide the subgraph around o* grows."""

    hops: int = 2
    fanout: tuple[int, ...] = (20, 5)  # per hop; the last value repeats for deeper hops
    allow: frozenset[str] | None = None
    deny: frozenset[str] = frozenset()
    direction: Direction = "out"
    max_nodes: int = 200
    seed: int = 0
    scan: int = 256  # candidates read per entity before sampling

    def __post_init__(self) -> None:
        check_hops(self.hops)
        fanout = (self.fanout,) if isinstance(self.fanout, int) else tuple(self.fanout)
        if not fanout or any(not isinstance(n, int) or n < 1 for n in fanout):
            raise ValidationError(f"fanout must be positive integers, got {self.fanout!r}")
        object.__setattr__(self, "fanout", fanout)
        if self.direction not in ("out", "in", "both"):
            raise ValidationError(f"direction must be out, in or both, got {self.direction!r}")
        for name in ("max_nodes", "scan"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValidationError(f"{name} must be a positive integer, got {value!r}")
        relations = RelationFilter.of(self.allow, self.deny)
        object.__setattr__(self, "allow", relations.allow)
        object.__setattr__(self, "deny", relations.deny)

    def cap(self, hop: int) -> int:
        """Return the fan-out cap of hop `hop` (0-based)."""
        return self.fanout[min(hop, len(self.fanout) - 1)]

    @property
    def relations(self) -> RelationFilter:
        """Return the allow/deny filter."""
        return RelationFilter(self.allow, self.deny)


@dataclass(frozen=True)
class Expansion:
    """An edit's subgraph for GLAME, with the entity id of each node and fact of each edge."""

    subgraph: Subgraph
    node_ids: tuple[str, ...]
    facts: tuple[Fact, ...]  # the subgraph's edges after edge 0, in order


def _seeded_rank(seed: int, fact: Fact) -> bytes:
    """Return a seed-keyed hash of a triple (the sampling order when seed != 0)."""
    key = f"{seed}\x1f{fact.subject}\x1f{fact.relation}\x1f{fact.object}".encode()
    return hashlib.blake2b(key, digest_size=8).digest()


def sample_facts(facts: Sequence[Fact], k: int, seed: int) -> list[Fact]:
    """Return k of `facts` (given in sample-key order) deterministically for `seed`."""
    if seed == 0:
        return list(facts[:k])
    return sorted(facts, key=lambda f: (_seeded_rank(seed, f), f.triple))[:k]


def walk(
    store: GraphStore, root: str, config: ExpansionConfig, avoid: Collection[str] = ()
) -> list[Fact]:
    """Return the sampled facts within `config.hops` of `root`, breadth first."""
    with store.transaction():  # one snapshot (and one server round trip less per hop)
        return _walk(store, root, config, avoid)


def _walk(
    store: GraphStore, root: str, config: ExpansionConfig, avoid: Collection[str]
) -> list[Fact]:
    """Breadth-first sampled walk (see `walk`)."""
    seen = {root, *avoid}
    frontier = [root]
    out: list[Fact] = []
    for hop in range(config.hops):
        if not frontier or len(seen) >= config.max_nodes:
            break
        # seed 0 takes the first `cap` by sample key, so only those need reading
        scan = config.cap(hop) if config.seed == 0 else max(config.scan, config.cap(hop))
        incident = store.incident_facts(
            frontier, direction=config.direction, relations=config.relations, limit_per_entity=scan
        )
        nxt: list[str] = []
        for node in frontier:
            for fact in sample_facts(incident.get(node, []), config.cap(hop), config.seed):
                other = fact.object if fact.subject == node else fact.subject
                if other in seen:
                    if other not in avoid:
                        out.append(fact)  # an edge inside the subgraph
                    continue
                if len(seen) >= config.max_nodes:
                    break
                seen.add(other)
                nxt.append(other)
                out.append(fact)
        frontier = nxt
    unique: dict[tuple[str, str, str], Fact] = {}
    for fact in out:
        unique.setdefault(fact.triple, fact)
    return list(unique.values())


def expand_edit(
    store: GraphStore,
    subject: str,
    relation: str,
    new_object: str,
    config: ExpansionConfig | None = None,
    view: GraphView | None = None,
) -> Expansion:
    """Return the GLAME subgraph of (subject, relation, new object) around the new object."""
    config = config or ExpansionConfig()
    view = view or GraphView(store)
    rel = view.relation(relation)
    names = view.names([subject, new_object])
    for entity_id in (subject, new_object):
        if entity_id not in names:
            raise NotFoundError("entity", entity_id)
    new_facts = walk(store, new_object, config, avoid=[subject])
    edge_facts = [f for f in new_facts if f.triple != (subject, relation, new_object)]
    node_ids = [subject, new_object]
    index = {subject: 0, new_object: 1}
    for fact in edge_facts:
        for entity_id in (fact.subject, fact.object):
            if entity_id not in index:
                index[entity_id] = len(node_ids)
                node_ids.append(entity_id)
    labels = view.names(node_ids)
    relation_labels = {rid: r.label for rid, r in view.relations().items()}
    edges = [SubgraphEdge(0, rel.label, 1)] + [
        SubgraphEdge(index[f.subject], relation_labels.get(f.relation, f.relation), index[f.object])
        for f in edge_facts
    ]
    subgraph = Subgraph(tuple(labels[i] for i in node_ids), tuple(edges), center=0)
    return Expansion(subgraph, tuple(node_ids), tuple(edge_facts))


def expand_request(
    graph: GraphStore | GraphView, request: EditRequest, config: ExpansionConfig | None = None
) -> Expansion:
    """Return the GLAME subgraph of an edit request, its names resolved in the graph."""
    if request.relation is None:
        raise ValidationError(f"edit {request.request_id!r} names no relation")
    view = GraphView.of(graph)
    subject = view.pick(request.subject, request.relation, "subject")
    new_object = view.pick(request.target_new, request.relation, "object")
    for entity_id, name in ((subject, request.subject), (new_object, request.target_new)):
        if entity_id is None:
            raise NotFoundError("entity", name)
    return expand_edit(view.store, subject, request.relation, new_object, config, view)
