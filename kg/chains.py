"""Multi-hop chains through an edited object, and prompts that compose their relations.

A chain of an edit (s, r, o → o*) is s -r-> o* -r2-> x2 ... -rk-> end, k = 2..4, following
current facts of the graph. The composed prompt nests noun phrases of the inner relations and
ends in a cloze template of the last one ("The capital of the country of citizenship of X is"
style); a relation can be an inner hop only when the graph gives it a noun phrase:

1. its question template reads "What/Who/Which … is the … of {}?" ("the capital of {}");
2. else its first (canonical) cloze reads "The [name of the] … of {} is" ("the mother of {}");
3. else a Wikidata relation (P-id) whose label is a noun ("the place of birth of {}");
4. else another of its cloze templates reads that way.

Verb-like labels ("located in", "named after") give none: such relations can only end a chain.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from kg.types import Fact, Relation, fill
from kg.view import GraphView

_QUESTION_NOUN = re.compile(
    r"^(?:what|who|which)(?: \w+)? (?:is|are|was|were) (the .+ of \{\})\?$", re.IGNORECASE
)
_CLOZE_NOUN = re.compile(r"^The (?:names? of the )?(.+?) of \{\} (?:is|are|was|were)$")
_WIKIDATA = re.compile(r"^P\d+$")
_VERB_START = frozenset({"located", "named", "owned", "founded", "headquartered", "played"})
_PREPOSITION_END = frozenset({"in", "by", "after", "for", "from", "to", "with", "on", "at"})


@dataclass(frozen=True)
class Chain:
    """A path from the edited subject: relation ids and the entity ids after each hop."""

    relations: tuple[str, ...]
    entities: tuple[str, ...]
    facts: tuple[Fact, ...] = ()

    @property
    def hops(self) -> int:
        """Return the number of hops."""
        return len(self.relations)

    @property
    def end(self) -> str:
        """Return the entity id the chain ends in."""
        return self.entities[-1]


def noun_phrase(relation: Relation) -> str | None:
    """Return a `{}` noun phrase of the relation ("the capital of {}"), or None."""
    for question in relation.templates.question:
        m = _QUESTION_NOUN.match(question)
        if m:
            return m.group(1)[0].lower() + m.group(1)[1:]
    first, *rest = relation.templates.cloze
    m = _CLOZE_NOUN.match(first)
    if m:
        return f"the {m.group(1)} of {{}}"
    phrase = _label_phrase(relation)
    if phrase is not None:
        return phrase
    for cloze in rest:
        m = _CLOZE_NOUN.match(cloze)
        if m:
            return f"the {m.group(1)} of {{}}"
    return None


def _label_phrase(relation: Relation) -> str | None:
    """Return "the {label} of {}" for a Wikidata relation whose label reads as a noun."""
    label = relation.label.strip()
    if not _WIKIDATA.match(relation.id) or "{" in label or not label:
        return None
    words = label.lower().split()
    if label.endswith(" of"):
        return f"the {label} {{}}"
    if words[0] in _VERB_START or words[-1] in _PREPOSITION_END:
        return None
    return f"the {label} of {{}}"


def reverse_template(relation: Relation) -> str | None:
    """Return a template asking for the subject given the object ("{} is the capital of")."""
    if relation.templates.reverse:
        return relation.templates.reverse[0]
    phrase = noun_phrase(relation)
    if phrase is None or not phrase.endswith(" {}"):
        return None
    return "{} is " + phrase[: -len(" {}")]


def composed_prompt(view: GraphView, subject: str, relations: Sequence[str]) -> str | None:
    """Return the one-prompt form of a chain from `subject`, or None if it cannot be composed."""
    phrase = subject
    for relation_id in relations[:-1]:
        inner = noun_phrase(view.relation(relation_id))
        if inner is None:
            return None
        phrase = fill(inner, phrase)
    prompt = fill(view.relation(relations[-1]).templates.cloze[0], phrase)
    return prompt[0].upper() + prompt[1:]


def chains_from(
    view: GraphView,
    first_relation: str,
    start: str,
    max_hops: int = 4,
    avoid: Collection[str] = (),
    max_chains: int = 200,
    fanout: int = 20,
) -> list[Chain]:
    """Return chains of 2..max_hops hops whose first hop is (subject, first_relation, start)."""
    out: list[Chain] = []

    def walk(chain: Chain) -> None:
        """Extend a chain by every next fact, depth first."""
        if len(out) >= max_chains or chain.hops >= max_hops:
            return
        for fact in view.facts_about(chain.end)[:fanout]:
            if fact.object in chain.entities or fact.object in avoid:
                continue
            longer = Chain(
                (*chain.relations, fact.relation),
                (*chain.entities, fact.object),
                (*chain.facts, fact),
            )
            out.append(longer)
            if len(out) >= max_chains:
                return
            walk(longer)

    walk(Chain((first_relation,), (start,)))
    return out


def follow(view: GraphView, start: str, relations: Sequence[str]) -> str | None:
    """Return where a relation path from `start` ends (first fact per hop), or None."""
    node = start
    for relation_id in relations:
        nxt = next((f.object for f in view.facts_about(node) if f.relation == relation_id), None)
        if nxt is None:
            return None
        node = nxt
    return node
