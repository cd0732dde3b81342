"""UIPE-style related-knowledge discovery: which facts let a model rebuild a forgotten target.

UIPE's observation is that forgetting a target's own facts is not enough: the model can
reason its way back from logically related knowledge left intact. This module scores the
facts around a forget target by two signals and fuses them:

- **graph**: the facts within `hops` of the target entity (edges taken in both directions).
  A fact reached through the path target -r1- x1 -r2- ... gets the product of the weights of
  the relations on that path, its own relation's weight included, times `hop_decay` per hop
  beyond the first. Among the shortest paths to an entity the strongest one counts. Hubs are
  cut to `fanout` facts per entity (highest relation weight first, then by triple), so a
  power-law graph never explodes the neighbourhood.
- **text**: the cosine similarity between the fact's verbalised statement and the target's
  profile, the normalised mean vector of the target's own statements (or of `target_text`).
  Vectors come from `kg.embeddings.embed_texts` unless another embedder is passed, and a
  `cache` (text -> vector) is read first and filled with what had to be computed.

score = alpha * graph + (1 - alpha) * max(0, text). Facts at or above `threshold` are kept,
best first (ties by triple), at most `cap` of them; each carries the reason it was chosen.
`related_facts` is a pure function over a list of facts; `kg.store` wraps it with the
store's neighbourhood query and vector cache.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from kg.errors import ValidationError
from kg.types import Fact, FactStatus

Embedder = Callable[[Sequence[str]], np.ndarray]
Triple = tuple[str, str, str]


@dataclass(frozen=True)
class RelatedConfig:
    """Knobs of related-knowledge discovery (defaults suit a forget request on a KG)."""

    hops: int = 2
    relation_weights: Mapping[str, float] = field(default_factory=dict, hash=False)
    default_weight: float = 1.0
    hop_decay: float = 0.5
    alpha: float = 0.5
    threshold: float = 0.3
    cap: int = 50
    fanout: int = 200
    include_direct: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.hops, int) or not 1 <= self.hops <= 6:
            raise ValidationError(f"hops must be an integer in 1..6, got {self.hops!r}")
        for name in ("default_weight", "hop_decay", "alpha", "threshold"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
                raise ValidationError(f"{name} must be a number in [0, 1], got {value!r}")
        for relation, weight in self.relation_weights.items():
            if not isinstance(weight, int | float) or not 0.0 <= float(weight) <= 1.0:
                raise ValidationError(
                    f"weight of relation {relation!r} must be in [0, 1], got {weight!r}"
                )
        for name in ("cap", "fanout"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValidationError(f"{name} must be a positive integer, got {value!r}")

    def weight(self, relation: str) -> float:
        """Return the weight of a relation (the default for relations not listed)."""
        return float(self.relation_weights.get(relation, self.default_weight))


@dataclass(frozen=True)
class RelatedFact:
    """A fact related to a forget target, with its fused score and why it was chosen."""

    fact: Fact
    score: float
    graph_score: float
    text_score: float
    hops: int
    via: tuple[Triple, ...]
    reason: str

    @property
    def direct(self) -> bool:
        """Return True when the fact names the target itself (one hop)."""
        return self.hops == 1


@dataclass
class _Reach:
    """How the walk reached an entity: depth, path strength and the facts on the path."""

    depth: int
    strength: float
    path: tuple[Fact, ...]


def _incident(facts: Iterable[Fact]) -> dict[str, list[Fact]]:
    """Return {entity id: current facts touching it}, each fact once per distinct endpoint."""
    out: dict[str, list[Fact]] = defaultdict(list)
    seen: set[Triple] = set()
    for fact in facts:
        if FactStatus(fact.status) is not FactStatus.CURRENT or fact.triple in seen:
            continue
        seen.add(fact.triple)
        out[fact.subject].append(fact)
        if fact.object != fact.subject:
            out[fact.object].append(fact)
    return out


def neighbourhood(
    targets: Collection[str], facts: Iterable[Fact], config: RelatedConfig
) -> tuple[dict[Triple, tuple[float, int, tuple[Fact, ...]]], dict[str, _Reach]]:
    """Return ({triple: (graph score, hops, path)}, reach) for the facts within `hops`."""
    incident = _incident(facts)
    reach = {t: _Reach(0, 1.0, ()) for t in targets}
    scored: dict[Triple, tuple[float, int, tuple[Fact, ...]]] = {}
    frontier = sorted(targets)
    for depth in range(config.hops):
        nxt: dict[str, _Reach] = {}
        for node in frontier:
            here = reach[node]
            edges = sorted(
                incident.get(node, ()), key=lambda f: (-config.weight(f.relation), f.triple)
            )
            for fact in edges[: config.fanout]:
                weight = config.weight(fact.relation)
                strength = here.strength * weight
                score = strength * config.hop_decay**depth
                path = (*here.path, fact)
                best = scored.get(fact.triple)
                if best is None or (depth + 1, -score) < (best[1], -best[0]):
                    scored[fact.triple] = (score, depth + 1, path)
                other = fact.object if fact.subject == node else fact.subject
                if other in reach or strength <= 0.0:
                    continue
                seen = nxt.get(other)
                if seen is None or strength > seen.strength:
                    nxt[other] = _Reach(depth + 1, strength, path)
        reach.update(nxt)
        frontier = sorted(nxt)
    return scored, reach


def _vectors(
    texts: Sequence[str], embed: Embedder, cache: MutableMapping[str, np.ndarray] | None
) -> np.ndarray:
    """Return unit vectors (n, d) of `texts`, computing only those missing from `cache`."""
    cache = {} if cache is None else cache
    missing = sorted({t for t in texts if t not in cache})
    if missing:
        fresh = np.asarray(embed(missing), dtype=np.float32)  # (m, d)
        if fresh.ndim != 2 or fresh.shape[0] != len(missing):
            raise ValidationError(f"embedder returned shape {fresh.shape} for {len(missing)} texts")
        for text, vector in zip(missing, fresh, strict=True):
            cache[text] = vector
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    matrix = np.stack([np.asarray(cache[t], dtype=np.float32) for t in texts])  # (n, d)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)  # (n, 1)
    return matrix / np.where(norms == 0, 1.0, norms)


def _default_embedder() -> Embedder:
    """Return the project's offline sentence encoder (imported lazily: it loads torch)."""
    from kg.embeddings import embed_texts

    return embed_texts


def _reason(
    hops: int, path: Sequence[Fact], graph: float, text: float, label: Callable[[str], str]
) -> str:
    """Return a one-line human reason: the path that reached the fact and both scores."""
    if hops == 1:
        where = f"states the target directly ({label(path[-1].relation)})"
    else:
        steps = " → ".join(f"{label(f.relation)}" for f in path)
        where = f"{hops} hops from the target via {steps}"
    return f"{where}; graph {graph:.2f}, text similarity {text:.2f}"


def related_facts(
    target: str | Collection[str],
    facts: Iterable[Fact],
    text_of: Callable[[Fact], str],
    *,
    config: RelatedConfig | None = None,
    embed: Embedder | None = None,
    cache: MutableMapping[str, np.ndarray] | None = None,
    target_text: str | Sequence[str] | None = None,
    relation_label: Callable[[str], str] | None = None,
) -> list[RelatedFact]:
    """Score the facts related to a forget target (entity id or ids); best first, capped.

    `facts` is the pool to search (a whole graph or a store's neighbourhood of the target);
    `text_of` verbalises one fact; `target_text` (one text or several) replaces the profile
    built from the target's own statements; `relation_label` names relations in the reasons.
    """
    config = config or RelatedConfig()
    targets = {target} if isinstance(target, str) else set(target)
    if not targets or not all(isinstance(t, str) and t for t in targets):
        raise ValidationError("the forget target must be one or more non-empty entity ids")
    label = relation_label or (lambda relation: relation)
    scored, _ = neighbourhood(targets, facts, config)
    if not scored:
        return []
    triples = sorted(scored)
    by_triple = {t: scored[t][2][-1] for t in triples}
    texts = [text_of(by_triple[t]) for t in triples]
    if isinstance(target_text, str):
        profile_texts: list[str] = [target_text]
    elif target_text is not None:
        profile_texts = list(target_text)
    else:
        profile_texts = [texts[i] for i, t in enumerate(triples) if scored[t][1] == 1]
    embedder = embed or _default_embedder()
    vectors = _vectors(texts + profile_texts, embedder, cache)  # (n + p, d)
    fact_vecs, profile_vecs = vectors[: len(texts)], vectors[len(texts) :]
    if len(profile_vecs):
        profile = profile_vecs.mean(axis=0)  # (d,)
        profile = profile / max(float(np.linalg.norm(profile)), 1e-12)
        similarity = fact_vecs @ profile  # (n,)
    else:
        similarity = np.zeros(len(texts), dtype=np.float32)
    out: list[RelatedFact] = []
    for i, triple in enumerate(triples):
        graph, hops, path = scored[triple]
        if hops == 1 and not config.include_direct:
            continue
        text = float(similarity[i])
        score = config.alpha * graph + (1.0 - config.alpha) * max(0.0, text)
        if score < config.threshold:
            continue
        out.append(
            RelatedFact(
                fact=by_triple[triple],
                score=round(score, 6),
                graph_score=round(graph, 6),
                text_score=round(text, 6),
                hops=hops,
                via=tuple(f.triple for f in path[:-1]),
                reason=_reason(hops, path, graph, text, label),
            )
        )
    out.sort(key=lambda r: (-r.score, r.fact.triple))
    return out[: config.cap]
