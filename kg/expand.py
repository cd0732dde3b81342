"""GLAME subgraph expansion of an edit (s, r, o → o*), and the derived knowledge that changes.

**Subgraph.** GLAME feeds a relational GNN the edit triple (s, r, o*) plus the knowledge
around the new object. This module walks up to `hops` hops out of o* (outgoing facts by
default, as GLAME's sampler does; `direction="both"` adds incoming ones), keeping at most
`fanout[h]` facts per entity at hop h, following only relations the allow/deny lists admit,
and stopping at `max_nodes` entities. Sampling is deterministic: the store hands back each
entity's facts ordered by the triple's fixed sample key (bottom-k, served from an index),
at most `scan` of them; with `seed != 0` those candidates are re-ranked by a hash keyed by the
seed. The result is a `contracts.Subgraph`: node labels are entity names, edge labels are
relation labels, the center (index 0) is the subject, edge 0 is (s, r, o*).

**Derived knowledge.** Chains that start with the edit: s -r-> o* -r2-> x2 … (new, they hold
after the edit) and s -r-> o -r2-> y2 … (old, they must stop holding unless o* leads to the
same end). Each becomes a multi-hop probe in the audit's format (composed cloze prompt where
the relations allow one, `meta["bucket"]` "2-hop".."n-hop" or "old", `role="forget"` on old).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from contracts.types import Probe, ProbeKind, Subgraph, SubgraphEdge
from kg.chains import composed_prompt, follow
from kg.errors import NotFoundError, ValidationError
from kg.store.base import Direction, GraphStore, RelationFilter, check_hops
from kg.types import Fact, fill
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
    max_chains: int = 40

    def __post_init__(self) -> None:
        check_hops(self.hops)
        fanout = (self.fanout,) if isinstance(self.fanout, int) else tuple(self.fanout)
        if not fanout or any(not isinstance(n, int) or n < 1 for n in fanout):
            raise ValidationError(f"fanout must be positive integers, got {self.fanout!r}")
        object.__setattr__(self, "fanout", fanout)
        if self.direction not in ("out", "in", "both"):
            raise ValidationError(f"direction must be out, in or both, got {self.direction!r}")
        for name in ("max_nodes", "scan", "max_chains"):
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
class ChainPath:
    """A chain from the edited subject: the facts after the edit's first hop."""

    subject: str
    relations: tuple[str, ...]
    entities: tuple[str, ...]  # the entity after each hop; entities[0] is o* or o
    old: bool = False

    @property
    def end(self) -> str:
        """Return the entity the chain ends in."""
        return self.entities[-1]


@dataclass(frozen=True)
class Expansion:
    """An edit's subgraph for GLAME, its chains, and their multi-hop probes."""

    subgraph: Subgraph
    node_ids: tuple[str, ...]
    facts: tuple[Fact, ...]  # the subgraph's edges after edge 0, in order
    new_chains: tuple[ChainPath, ...] = ()
    old_chains: tuple[ChainPath, ...] = ()
    probes: tuple[Probe, ...] = field(default=(), compare=False)


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
    store: GraphStore,
    root: str,
    config: ExpansionConfig,
    avoid: Collection[str] = (),
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
            frontier,
            direction=config.direction,
            relations=config.relations,
            limit_per_entity=scan,
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


def _chains(
    subject: str, start: str, facts: Sequence[Fact], hops: int, limit: int, old: bool
) -> list[ChainPath]:
    """Return chains that leave `start` along outgoing `facts`, 1..hops further hops."""
    out_of: dict[str, list[Fact]] = {}
    for fact in facts:
        out_of.setdefault(fact.subject, []).append(fact)
    found: list[ChainPath] = []
    stack: list[tuple[tuple[str, ...], tuple[str, ...]]] = [((), (start,))]
    while stack and len(found) < limit:
        relations, entities = stack.pop(0)
        if len(relations) >= hops:
            continue
        for fact in out_of.get(entities[-1], ()):
            if fact.object in entities or fact.object == subject:
                continue
            path = ((*relations, fact.relation), (*entities, fact.object))
            found.append(ChainPath(subject, path[0], path[1], old))
            stack.append(path)
            if len(found) >= limit:
                break
    return found


def expand_edit(
    store: GraphStore,
    subject: str,
    relation: str,
    new_object: str,
    old_object: str | None = None,
    config: ExpansionConfig | None = None,
    view: GraphView | None = None,
) -> Expansion:
    """Return the GLAME subgraph of (subject, relation, old → new), its chains and probes."""
    config = config or ExpansionConfig()
    view = view or GraphView(store)
    rel = view.relation(relation)
    ids = [subject, new_object] + ([old_object] if old_object else [])
    names = view.names(ids)
    for entity_id in ids:
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

    out_new = [f for f in new_facts if f.subject != subject]
    new_chains = _chains(subject, new_object, out_new, config.hops, config.max_chains, False)
    old_chains: list[ChainPath] = []
    if old_object is not None:
        old_facts = walk(store, old_object, config, avoid=[subject])
        candidates = _chains(subject, old_object, old_facts, config.hops, config.max_chains, True)
        still = {(c.relations, c.end) for c in new_chains}
        old_chains = [
            c
            for c in candidates
            if (c.relations, c.end) not in still and follow(view, new_object, c.relations) != c.end
        ]
    probes = _chain_probes(view, subject, relation, new_chains, old_chains, old_object)
    return Expansion(
        subgraph, tuple(node_ids), tuple(edge_facts), tuple(new_chains), tuple(old_chains), probes
    )


def _chain_probes(
    view: GraphView,
    subject: str,
    relation: str,
    new_chains: Sequence[ChainPath],
    old_chains: Sequence[ChainPath],
    old_object: str | None,
) -> tuple[Probe, ...]:
    """Return a multi-hop probe per chain (composed prompt, or stepwise when none composes)."""
    ends = {c.end for c in (*new_chains, *old_chains)} | {subject}
    if old_object:
        ends.add(old_object)
    old_by_path = {c.relations: c.end for c in old_chains}
    names = view.names(ends)
    subject_name = names[subject]
    out: list[Probe] = []
    for chain in (*new_chains, *old_chains):
        relations = (relation, *chain.relations)
        hops = len(relations)
        meta = {
            "bucket": "old" if chain.old else f"{hops}-hop",
            "path": "/".join(relations),
            "chain": "/".join(chain.entities),
        }
        if chain.old:
            meta["role"] = "forget"
        rival = None if chain.old else names.get(old_by_path.get(chain.relations, ""))
        prompt = composed_prompt(view, subject_name, relations)
        if prompt is not None:
            out.append(
                Probe(
                    prompt, names[chain.end], ProbeKind.MULTI_HOP, rival, {**meta, "form": "cloze"}
                )
            )
        else:
            first = fill(view.relation(relation).templates.cloze[0], subject_name)
            # the stepwise scorer reads `hops` as a JSON list of `{}` templates, one per hop
            templates = [view.relation(r).templates.cloze[0] for r in relations]
            meta = {**meta, "hops": json.dumps(templates), "subject": subject_name}
            out.append(Probe(first, names[chain.end], ProbeKind.MULTI_HOP_STEPWISE, rival, meta))
    return tuple(out)
