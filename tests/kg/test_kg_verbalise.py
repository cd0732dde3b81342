"""Verbalisation of facts into prompt forms, and the trainer's fact texts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from contracts.types import FactText
from kg.errors import NotFoundError, ValidationError
from kg.store.sql import SqlGraphStore
from kg.types import Entity, Fact, Relation
from kg.verbalise import Names, fact_texts, subjects_by_fact_count, verbalise

SPIKE = Fact("name:spike_hughes", "P19", "Q84")


def test_forms(sqlite_store: SqlGraphStore, seed_graph: Callable[[SqlGraphStore], None]) -> None:
    seed_graph(sqlite_store)
    assert verbalise(SPIKE, sqlite_store) == ("Spike Hughes originates from", "London")
    assert verbalise(SPIKE, sqlite_store, "cloze", 1) == ("Spike Hughes was born in", "London")
    assert verbalise(SPIKE, sqlite_store, "question") == ("Where was Spike Hughes born?", "London")
    assert verbalise(SPIKE, sqlite_store, "reverse") == (
        "London is the birthplace of",
        "Spike Hughes",
    )


def test_names_without_a_store(birth: Relation) -> None:
    names = Names({"a": "Ada {0}", "b": "Paris"}, {"P19": birth})
    assert verbalise(Fact("a", "P19", "b"), names) == ("Ada {0} originates from", "Paris")
    with pytest.raises(NotFoundError, match="'c'"):
        verbalise(Fact("a", "P19", "c"), names)
    with pytest.raises(NotFoundError, match="P20"):
        verbalise(Fact("a", "P20", "b"), names)


def test_bad_form_or_index(birth: Relation) -> None:
    no_reverse = Relation("P1", "p", {"cloze": ["{} is"]})
    names = Names({"a": "A", "b": "B"}, {"P19": birth, "P1": no_reverse})
    with pytest.raises(ValidationError, match="no reverse templates"):
        verbalise(Fact("a", "P1", "b"), names, "reverse")
    with pytest.raises(ValidationError, match="out of range"):
        verbalise(Fact("a", "P19", "b"), names, "cloze", 2)
    with pytest.raises(ValueError):
        verbalise(Fact("a", "P19", "b"), names, "haiku")


def test_fact_texts(seeded: SqlGraphStore) -> None:
    texts = fact_texts(seeded)
    assert texts[0] == FactText(
        subject="Spike Hughes",
        relation="P19",
        object="London",
        templates=("{} originates from", "{} was born in"),
        question="Where was {} born?",
    )
    assert texts[0].statement(1) == "Spike Hughes was born in London"
    assert [t.subject for t in texts] == ["Spike Hughes", "Max Mosley"]
    assert [t.subject for t in fact_texts(seeded, limit=1)] == ["Spike Hughes"]
    only = fact_texts(seeded, subjects=["name:max_mosley"])
    assert [t.subject for t in only] == ["Max Mosley"]
    seeded.retract_fact("name:max_mosley", "P19", "Q84")
    assert [t.subject for t in fact_texts(seeded)] == ["Spike Hughes"]


def test_subjects_by_fact_count(seeded: SqlGraphStore) -> None:
    seeded.add_entity(Entity("Q1", "Paris"))
    seeded.add_fact(Fact("name:max_mosley", "P19", "Q1"))
    assert subjects_by_fact_count(seeded) == [("name:max_mosley", 2), ("name:spike_hughes", 1)]
