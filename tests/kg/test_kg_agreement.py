"""The graph's side of the agreement check: scope, questions and verdicts."""

from __future__ import annotations

import pytest
from geo_graph import build

from kg.agreement import (
    AGREES,
    CONTRADICTS,
    FORGOTTEN,
    STILL_KNOWN,
    UNKNOWN,
    Scope,
    classify,
    count,
    facts_in_scope,
    graph_side,
)
from kg.curation import approve, create_change_set, propose
from kg.errors import NotFoundError, ValidationError
from kg.types import Concept


@pytest.fixture
def geo(store):
    """The geography graph in a fresh store."""
    build(store)
    return store


def _fact(store, subject, relation):
    (fact,) = [f for f in store.facts_about(subject) if f.relation == relation]
    return fact


def test_questions_are_the_first_cloze_template(geo):
    side = graph_side(geo, geo.list_facts())
    fact = _fact(geo, "spike", "P19")
    question = side.prompts[fact.id]
    assert (question.prompt, question.expected) == ("Spike Hughes was born in", "London")
    assert side.by_name["paris"] == "paris"


def test_verdicts(geo):
    side = graph_side(geo, geo.list_facts())
    born = _fact(geo, "spike", "P19")
    assert classify(side, born, True, "London", 0.9).status == AGREES
    wrong = classify(side, born, False, "paris", 0.4)  # names are matched case-insensitively
    assert (wrong.status, wrong.answer_id, wrong.probability) == (CONTRADICTS, "paris", 0.4)
    assert classify(side, born, False, "the moon", 0.1).status == UNKNOWN
    assert classify(side, born, False, "", None).status == UNKNOWN
    counts = count([classify(side, born, True, "London", 1.0)])
    assert counts[AGREES] == 1 and set(counts) >= {AGREES, CONTRADICTS, UNKNOWN, FORGOTTEN}


def test_another_object_of_the_same_slot_agrees(geo):
    from kg.types import Fact

    geo.add_fact(Fact("spike", "P1412", "french", source="t"))
    side = graph_side(geo, geo.list_facts())
    english = next(f for f in geo.facts_about("spike") if f.object == "english")
    assert classify(side, english, False, "French", 0.5).status == AGREES


def test_forget_marks_turn_verdicts_into_forgotten_or_still_known(geo):
    geo.add_concept(Concept("c-spike", "Spike Hughes", entities=("spike",)))
    geo.mark_forget("c-spike", "cs-1", who="t", why="t")
    side = graph_side(geo, geo.list_facts())
    born = _fact(geo, "spike", "P19")
    assert classify(side, born, True, "London", 0.9).status == STILL_KNOWN
    assert classify(side, born, False, "Paris", 0.3).status == FORGOTTEN
    other = _fact(geo, "max", "P19")
    assert classify(side, other, True, "London", 0.9).status == AGREES


def test_scopes(geo):
    assert len(facts_in_scope(geo, Scope())) == geo.count_facts("current")
    assert {f.subject for f in facts_in_scope(geo, Scope(entities=("spike",)))} == {"spike"}
    assert {f.relation for f in facts_in_scope(geo, Scope(relations=("P36",)))} == {"P36"}
    op = {
        "kind": "replace_object",
        "payload": {"subject": "uk", "relation": "P36", "object": "london", "new_object": "paris"},
    }
    cs = create_change_set(geo, "t", "r", [op])
    propose(geo, cs.id, "t")
    approve(geo, cs.id, "reviewer", "ok")
    (fact,) = facts_in_scope(geo, Scope(change_set=cs.id))
    assert (fact.subject, fact.object) == ("uk", "paris")
    with pytest.raises(NotFoundError):
        facts_in_scope(geo, Scope(entities=("atlantis",)))
    with pytest.raises(NotFoundError):
        facts_in_scope(geo, Scope(relations=("P999",)))
    with pytest.raises(NotFoundError):
        facts_in_scope(geo, Scope(change_set="no-such-change-set"))
    with pytest.raises(ValidationError):
        Scope(entities=tuple(f"e{i}" for i in range(1001)))
