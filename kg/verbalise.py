"""Verbalisation: turn facts into (prompt, answer) pairs in each template form.

- ``cloze``: ``"{} originates from"`` -> ("Spike Hughes originates from", "London")
- ``question``: ``"Where was {} born?"`` -> ("Where was Spike Hughes born?", "London")
- ``reverse``: ``"{} is the birthplace of"`` -> ("London is the birthplace of", "Spike Hughes")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from contracts.types import FactText
from kg.errors import NotFoundError, ValidationError
from kg.store.base import GraphStore
from kg.types import Fact, FactStatus, Relation, TemplateForm, fill


class GraphReader(Protocol):
    """The read methods verbalisation needs (every `GraphStore` has them)."""

    def entity_names(self, ids: Iterable[str]) -> dict[str, str]:
        """Return {id: name} for the given ids."""
        ...

    def get_relation(self, relation_id: str) -> Relation:
        """Return one relation."""
        ...


@dataclass(frozen=True)
class Names:
    """Entity names and relations by id, for verbalising many facts without a store."""

    entities: Mapping[str, str]
    relations: Mapping[str, Relation]

    def entity_names(self, ids: Iterable[str]) -> dict[str, str]:
        """Return {id: name} for the ids that are known."""
        return {i: self.entities[i] for i in ids if i in self.entities}

    def get_relation(self, relation_id: str) -> Relation:
        """Return one relation; NotFoundError if unknown."""
        try:
            return self.relations[relation_id]
        except KeyError:
            raise NotFoundError("relation", relation_id) from None


def verbalise(
    fact: Fact,
    store_or_names: GraphReader,
    form: TemplateForm | str = TemplateForm.CLOZE,
    template_index: int = 0,
) -> tuple[str, str]:
    """Return (prompt, answer) for a fact in one form, using one of its relation's templates."""
    form = TemplateForm(form)
    relation = store_or_names.get_relation(fact.relation)
    templates = relation.templates.of(form)
    if not templates:
        raise ValidationError(f"relation {relation.id!r} has no {form.value} templates")
    if not 0 <= template_index < len(templates):
        raise ValidationError(
            f"template_index {template_index} out of range: relation {relation.id!r} "
            f"has {len(templates)} {form.value} templates"
        )
    names = store_or_names.entity_names([fact.subject, fact.object])
    for entity_id in (fact.subject, fact.object):
        if entity_id not in names:
            raise NotFoundError("entity", entity_id)
    subject, obj = names[fact.subject], names[fact.object]
    if form is TemplateForm.REVERSE:
        return fill(templates[template_index], obj), subject
    return fill(templates[template_index], subject), obj


def statement(fact: Fact, store_or_names: GraphReader, template_index: int = 0) -> str:
    """Return the fact as one sentence: its cloze prompt followed by the object's name."""
    prompt, answer = verbalise(fact, store_or_names, TemplateForm.CLOZE, template_index)
    return f"{prompt} {answer}"


def fact_texts(
    store: GraphStore, limit: int | None = None, subjects: Iterable[str] | None = None
) -> list[FactText]:
    """Return current facts (optionally of some subject ids) with names and cloze templates."""
    facts = store.list_facts(status=FactStatus.CURRENT, subjects=subjects, limit=limit)
    relations = {r.id: r for r in store.list_relations()}
    names = store.entity_names({f.subject for f in facts} | {f.object for f in facts})
    return [
        FactText(
            subject=names[f.subject],
            relation=f.relation,
            object=names[f.object],
            templates=relations[f.relation].templates.cloze,
            question=next(iter(relations[f.relation].templates.question), None),
        )
        for f in facts
    ]


def subjects_by_fact_count(store: GraphStore) -> list[tuple[str, int]]:
    """Return (subject id, number of current facts), most facts first, ties by id."""
    return store.count_facts_by_subject(FactStatus.CURRENT)
