"""Concepts to forget: the facts they cover, a redirect anchor, and their unlearning request.

Anchor suggestion (ROCR's "harmless concept", chosen from the graph):

* candidates are entities of the same kind as the concept. Entity kinds are often the generic
  ``"entity"`` (EVOKE's are), so a candidate must also be the subject of at least one relation
  the concept is the subject of: a person is redirected to a person, a company to a company;
* harmless: not covered by any concept of the store (nothing marked to forget), not one of the
  concept's entities;
* shares no facts with the target: no fact links the two (either direction) and they have no
  (relation, object) pair in common. A shared attribute would survive the redirect, so the
  model would still state it about the target. Nor a word of its name ("Prince" is not
  redirected to "Prince Harry"): the name's tokens would carry the target along;
* ranked by cosine similarity of sentence embeddings (all-MiniLM-L6-v2 from
  `kg.embeddings`, offline) of a profile text: the name followed by the cloze statements of
  up to `profile_facts` of its facts. Ties break by entity id, so the choice is deterministic.

The curator overrides the suggestion with `GraphStore.set_concept_redirect` (every backend;
change-logged), over HTTP with `PUT /v1/graph/concepts/{id}/redirect` (role curator) or
with `kgedit concept-anchor ID ANCHOR` (`--clear` removes it).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from contracts.types import UnlearnRequest
from kg.errors import NotFoundError, ValidationError
from kg.store import GraphStore
from kg.types import Concept, Fact, FactStatus, fill, slug
from kg.view import GraphView

Embedder = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class AnchorSuggestion:
    """A suggested redirect anchor: the entity, its similarity to the concept, and why."""

    entity_id: str
    name: str
    score: float
    reason: str


def concept_entities(store: GraphStore | GraphView, concept: Concept) -> list[str]:
    """Return the entity ids a concept stands for: its own list, else its names resolved."""
    view = GraphView.of(store)
    if concept.entities:
        known = view.names(concept.entities)
        missing = [e for e in concept.entities if e not in known]
        if missing:
            raise NotFoundError("entity", missing[0])
        return list(concept.entities)
    names = (concept.name, *concept.aliases)
    return list(dict.fromkeys(i for n in names for i in view.resolve(n)))


def concept_facts(store: GraphStore | GraphView, concept: Concept) -> list[Fact]:
    """Return the current facts the concept covers (its entities as subject), in store order."""
    view = GraphView.of(store)
    return [f for e in concept_entities(view, concept) for f in view.facts_about(e)]


def _statement(view: GraphView, fact: Fact, names: dict[str, str]) -> str:
    """Return the first-cloze statement of a fact."""
    template = view.relation(fact.relation).templates.cloze[0]
    return f"{fill(template, names[fact.subject])} {names[fact.object]}."


def profile_text(view: GraphView, entity_id: str, max_facts: int = 6) -> str:
    """Return the text an entity is embedded by: its name and some of its facts as statements."""
    facts = view.facts_about(entity_id)[:max_facts]
    names = view.names([entity_id, *(f.object for f in facts)])
    return " ".join([names[entity_id] + ".", *(_statement(view, f, names) for f in facts)])


def _words(name: str) -> set[str]:
    """Return the case-folded words of a name."""
    return set(slug(name).split("_"))


def _forgotten_entities(view: GraphView) -> set[str]:
    """Return every entity some concept of the store covers (not harmless as an anchor)."""
    out: set[str] = set()
    for concept in view.store.list_concepts():
        out.update(concept_entities(view, concept))
    return out


def anchor_candidates(
    store: GraphStore | GraphView, concept: Concept, max_candidates: int = 2000
) -> list[str]:
    """Return entity ids that may serve as the concept's anchor (see the module docstring)."""
    view = GraphView.of(store)
    own = set(concept_entities(view, concept))
    if not own:
        raise ValidationError(f"concept {concept.id!r} names no entity of the graph")
    facts = [f for e in own for f in view.facts_about(e)]
    if not facts:
        raise ValidationError(f"concept {concept.id!r} covers no current fact")
    kinds = {view.store.get_entity(e).kind for e in own}
    linked = {f.object for f in facts} | {f.subject for e in own for f in view.facts_with_object(e)}
    pairs = {(f.relation, f.object) for f in facts}
    excluded = own | linked | _forgotten_entities(view)
    candidates: dict[str, None] = {}
    for relation in sorted({f.relation for f in facts}):
        for fact in view.facts_of_relation(relation):
            if fact.subject not in excluded:
                candidates.setdefault(fact.subject)
    words = {w for n in (concept.name, *concept.aliases) for w in _words(n)}
    out = []
    for entity_id in candidates:
        if words & _words(view.name(entity_id)):
            continue
        theirs = view.facts_about(entity_id)
        if any((f.relation, f.object) in pairs or f.object in own for f in theirs):
            continue
        if view.store.get_entity(entity_id).kind not in kinds:
            continue
        out.append(entity_id)
    if len(out) > max_candidates:  # deterministic thinning of very large pools
        seed = int.from_bytes(hashlib.sha256(concept.id.encode()).digest()[:8], "big")
        out = sorted(random.Random(seed).sample(out, max_candidates))
    return out


def suggest_anchor(
    store: GraphStore | GraphView,
    concept: Concept,
    *,
    embed: Embedder | None = None,
    max_candidates: int = 2000,
    profile_facts: int = 6,
) -> AnchorSuggestion | None:
    """Return the harmless same-kind entity closest to the concept in embedding space."""
    view = GraphView.of(store)
    candidates = anchor_candidates(view, concept, max_candidates)
    if not candidates:
        return None
    if embed is None:
        from kg.embeddings import embed_texts

        embed = embed_texts
    own = concept_entities(view, concept)[0]
    texts = [profile_text(view, own, profile_facts)]
    texts += [profile_text(view, c, profile_facts) for c in candidates]
    vectors = np.asarray(embed(texts), dtype=np.float64)  # (1 + n, dim)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)  # (1 + n, 1)
    vectors = vectors / norms
    scores = vectors[1:] @ vectors[0]  # (n,)
    best = min(range(len(candidates)), key=lambda i: (-round(float(scores[i]), 6), candidates[i]))
    shared = sorted(
        {f.relation for f in view.facts_about(candidates[best])}
        & {f.relation for f in concept_facts(view, concept)}
    )
    name = view.name(candidates[best])
    reason = (
        f"closest of {len(candidates)} same-kind entities sharing no fact with "
        f"{concept.name!r} (cosine {float(scores[best]):.3f}; common relations: "
        f"{', '.join(shared)})"
    )
    return AnchorSuggestion(candidates[best], name, float(scores[best]), reason)


def retain_facts(
    store: GraphStore | GraphView, concepts: Iterable[Concept], n: int, seed: int = 0
) -> list[Fact]:
    """Return `n` random current facts unrelated to the concepts (no concept entity in them,
    nor a neighbour one hop away), for retain batches."""
    view = GraphView.of(store)
    near: set[str] = set()
    for concept in concepts:
        for entity in concept_entities(view, concept):
            near.add(entity)
            near.update(f.object for f in view.facts_about(entity))
            near.update(f.subject for f in view.facts_with_object(entity))
    pool = [
        f
        for f in view.store.list_facts(FactStatus.CURRENT)
        if f.subject not in near and f.object not in near
    ]
    return random.Random(seed).sample(pool, min(n, len(pool)))


def unlearn_request(
    store: GraphStore | GraphView,
    concept: Concept,
    *,
    n_retain: int = 64,
    templates_per_fact: int = 3,
    seed: int = 0,
) -> UnlearnRequest:
    """Return the `UnlearnRequest` of a concept: forget texts are its facts as statements in
    its relations' first cloze templates, retain texts the graph's unrelated facts; the anchor
    is the concept's redirect entity by name (None when no anchor is set)."""
    view = GraphView.of(store)
    facts = concept_facts(view, concept)
    if not facts:
        raise ValidationError(f"concept {concept.id!r} covers no current fact")
    names = view.names({f.subject for f in facts} | {f.object for f in facts})
    forget = []
    for fact in facts:
        for template in view.relation(fact.relation).templates.cloze[:templates_per_fact]:
            forget.append(f"{fill(template, concept.name)} {names[fact.object]}.")
    retain = retain_facts(view, [concept], n_retain, seed)
    retain_names = view.names({f.subject for f in retain} | {f.object for f in retain})
    anchor = view.name(concept.redirect_to) if concept.redirect_to else None
    return UnlearnRequest(
        concept=concept.name,
        aliases=concept.aliases,
        anchor=anchor,
        forget_texts=tuple(dict.fromkeys(forget)),
        retain_texts=tuple(_statement(view, f, retain_names) for f in retain),
        request_id=concept.id,
    )
