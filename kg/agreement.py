"""Agreement between a model and the graph: which facts to check, how to ask, how to judge.

The model side (what it answers) is measured elsewhere; this module holds the graph's side:

* **Scope.** The current facts to check: all of them, or those about some subject entities,
  of some relations, or touched by one change set (the slots its fact operations touch, and
  the facts of the concepts it marks to forget).
* **Question.** Each fact is asked as its relation's first cloze template filled with the
  subject's name; the expected answer is the object's name.
* **Verdict** (`classify`), per fact:
  - `agrees`: greedy decoding says the graph's object (or another current object of the same
    subject and relation, for relations with several objects);
  - `contradicts`: it says the name of another entity of the graph (named, with its
    probability);
  - `unknown`: it says something that names no entity of the graph;
  - for facts of a concept marked to forget: `forgotten` when the model no longer says the
    object, `still_known` when it does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kg.concepts import concept_entities
from kg.curation import FACT_KINDS
from kg.errors import NotFoundError, ValidationError
from kg.store.base import GraphStore
from kg.types import Fact, FactStatus, OperationKind, fill, name_key

AGREES, CONTRADICTS, UNKNOWN = "agrees", "contradicts", "unknown"
FORGOTTEN, STILL_KNOWN = "forgotten", "still_known"
STATUSES = (AGREES, CONTRADICTS, UNKNOWN, FORGOTTEN, STILL_KNOWN)
MAX_SCOPE_IDS = 1000


@dataclass(frozen=True)
class Scope:
    """Which current facts to check; empty fields mean no restriction by that field."""

    entities: tuple[str, ...] = ()
    relations: tuple[str, ...] = ()
    change_set: str | None = None

    def __post_init__(self) -> None:
        for what in ("entities", "relations"):
            if len(getattr(self, what)) > MAX_SCOPE_IDS:
                raise ValidationError(f"scope: at most {MAX_SCOPE_IDS} {what}")

    @property
    def is_all(self) -> bool:
        """Whether the scope is the whole graph."""
        return not (self.entities or self.relations or self.change_set)

    def to_dict(self) -> dict[str, Any]:
        """Return the scope as JSON-ready data."""
        return {
            "entities": list(self.entities),
            "relations": list(self.relations),
            "change_set": self.change_set,
        }


@dataclass(frozen=True)
class Question:
    """One current fact asked of the model: its prompt and the expected answer."""

    fact: Fact
    prompt: str
    expected: str
    subject_name: str


@dataclass(frozen=True)
class Verdict:
    """The verdict on one fact, with what the model said."""

    fact_id: int
    subject: str
    relation: str
    object: str
    subject_name: str
    object_name: str
    status: str
    answer: str
    answer_id: str | None
    probability: float | None

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data."""
        return dict(self.__dict__)


@dataclass
class GraphSide:
    """Everything the verdicts need from the graph, read once per check."""

    facts: list[Fact]
    names: dict[str, str]
    prompts: dict[int, Question] = field(default_factory=dict)
    by_name: dict[str, str] = field(default_factory=dict)  # name key -> entity id
    slots: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    forget_subjects: set[str] = field(default_factory=set)


def _change_set_filter(store: GraphStore, change_set_id: str) -> tuple[set, set]:
    """Return the (subject, relation) slots and concept subjects one change set touches."""
    change_set = store.get_change_set(change_set_id)
    slots, subjects = set(), set()
    for op in change_set.operations:
        p = op.payload
        if op.kind in FACT_KINDS:
            slots.add((p["subject"], p["relation"]))
        elif op.kind is OperationKind.MARK_FORGET:
            try:
                subjects.update(concept_entities(store, store.get_concept(p["concept"])))
            except NotFoundError:
                continue
    return slots, subjects


def facts_in_scope(store: GraphStore, scope: Scope) -> list[Fact]:
    """Return the current facts of the scope, ordered by id (NotFoundError for unknown ids)."""
    if scope.relations:
        for relation in scope.relations:
            store.get_relation(relation)
    subjects = None
    if scope.entities:
        known = store.entity_names(scope.entities)
        missing = [e for e in scope.entities if e not in known]
        if missing:
            raise NotFoundError("entity", missing[0])
        subjects = scope.entities
    facts = store.list_facts(FactStatus.CURRENT, subjects=subjects)
    if scope.relations:
        wanted = set(scope.relations)
        facts = [f for f in facts if f.relation in wanted]
    if scope.change_set is not None:
        slots, concept_subjects = _change_set_filter(store, scope.change_set)
        facts = [
            f for f in facts if (f.subject, f.relation) in slots or f.subject in concept_subjects
        ]
    return sorted(facts, key=lambda f: f.id or 0)


def forget_subjects(store: GraphStore) -> set[str]:
    """Return the entities of every concept marked to forget."""
    marked = {m.concept_id for m in store.forget_marks()}
    out: set[str] = set()
    for concept_id in sorted(marked):
        try:
            out.update(concept_entities(store, store.get_concept(concept_id)))
        except NotFoundError:
            continue
    return out


def graph_side(
    store: GraphStore, facts: Sequence[Fact], related: Sequence[Fact] | None = None
) -> GraphSide:
    """Read the names, prompts, answer index, slots and forget marks the verdicts need.

    `related`: every current fact of the scope's relations, when the caller has them already
    (the whole graph's facts, for a check of the whole graph); read here otherwise.
    """
    relations = {r.id: r for r in store.list_relations()}
    if related is None:
        scope_relations = {f.relation for f in facts}
        related = [f for r in sorted(scope_relations) for f in store.facts_of_relation(r)]
    ids = {f.subject for f in facts} | {f.object for f in facts} | {f.object for f in related}
    names = store.entity_names(ids)
    side = GraphSide(list(facts), names)
    for f in related:
        side.slots.setdefault((f.subject, f.relation), set()).add(f.object)
    for entity_id in sorted({f.object for f in related}):
        side.by_name.setdefault(name_key(names[entity_id]), entity_id)
    for f in facts:
        templates = relations[f.relation].templates.cloze
        if not templates:
            continue
        subject = names[f.subject]
        side.prompts[f.id] = Question(f, fill(templates[0], subject), names[f.object], subject)
    side.forget_subjects = forget_subjects(store)
    return side


def classify(
    side: GraphSide, fact: Fact, exact: bool, answer: str, probability: float | None
) -> Verdict:
    """Return the verdict on one fact from what the model said (see the module docstring)."""
    answer_id = side.by_name.get(name_key(answer)) if answer else None
    if exact:
        answer_id = fact.object
    if fact.subject in side.forget_subjects:
        status = STILL_KNOWN if exact or answer_id == fact.object else FORGOTTEN
    elif exact or answer_id in side.slots.get((fact.subject, fact.relation), ()):
        status = AGREES
    elif answer_id is not None:
        status = CONTRADICTS
    else:
        status = UNKNOWN
    return Verdict(
        fact_id=int(fact.id or 0),
        subject=fact.subject,
        relation=fact.relation,
        object=fact.object,
        subject_name=side.names.get(fact.subject, fact.subject),
        object_name=side.names.get(fact.object, fact.object),
        status=status,
        answer=answer,
        answer_id=answer_id,
        probability=probability,
    )


def count(verdicts: Iterable[Verdict]) -> dict[str, int]:
    """Return {status: number of facts} for every status (zeros included)."""
    out: dict[str, int] = defaultdict(int)
    for v in verdicts:
        out[v.status] += 1
    return {s: out.get(s, 0) for s in STATUSES}


def describe_contradiction(v: Verdict) -> str:
    """Return one line about a fact the model contradicts or does not know."""
    said = f"{v.answer!r}" + (f" (p={v.probability:.2f})" if v.probability is not None else "")
    return f"{v.subject_name} / {v.relation}: graph {v.object_name!r}, model {said}"
