"""ORT-style forms: six forms per target fact with rivals, retain probes on neighbours."""

from __future__ import annotations

import pytest

from contracts.forms import spell
from contracts.types import UnlearnRequest
from kg.errors import ValidationError
from kg.types import Entity, Fact, Relation, RelationTemplates
from kg.unlearn_forms import FORMS, FormConfig, form_probes


@pytest.fixture
def graph(sqlite_store):
    """Six people born in four cities; Ada is the one to forget."""
    s = sqlite_store
    people = ["Ada Byron", "Bob Stone", "Cy Twombly", "Dee Dee", "Eve Arden", "Fay Wray"]
    cities = ["London", "Paris", "Rome", "Oslo"]
    s.add_entities(
        [Entity(f"p{i}", n, kind="person") for i, n in enumerate(people)]
        + [Entity(f"c{i}", n, kind="city") for i, n in enumerate(cities)]
    )
    s.add_relation(
        Relation(
            "born",
            "place of birth",
            RelationTemplates(cloze=("{} was born in",), question=("Where was {} born?",)),
        )
    )
    s.add_facts([Fact(f"p{i}", "born", f"c{i % 4}") for i in range(len(people))])
    return s


def test_six_forms_with_rivals_and_retain_neighbours(graph):
    request = UnlearnRequest("Ada Byron", request_id="forget-ada")
    probes = form_probes(graph, [request], FormConfig(n_neighbours=3))
    forget = [p for p in probes if p.meta["role"] == "forget"]
    retain = [p for p in probes if p.meta["role"] == "retain"]
    assert [p.meta["form"] for p in forget] == list(FORMS)
    assert len(retain) == 3 * len(FORMS)
    assert all("Ada" not in p.meta["subject"] for p in retain)
    by_form = {p.meta["form"]: p for p in forget}
    assert by_form["cloze"].prompt == "Ada Byron was born in"
    assert by_form["cloze"].expected == "London" and len(by_form["cloze"].rivals) == 3
    assert "London" not in by_form["cloze"].rivals
    assert by_form["question"].prompt == "Where was Ada Byron born? Answer:"
    mc = by_form["mc"]
    assert mc.prompt.startswith("Question: Where was Ada Byron born? Options: A. ")
    assert f"{mc.expected}. London" in mc.prompt and mc.expected not in mc.rivals
    assert by_form["tf"].expected == "True" and by_form["tf"].rivals == ("False",)
    assert by_form["spelled"].expected == spell("London") == "L o n d o n"
    assert by_form["distraction"].prompt.endswith(". Ada Byron was born in")
    assert "Ada" not in by_form["distraction"].prompt.split(".")[0]
    again = form_probes(graph, [request], FormConfig(n_neighbours=3))
    assert [p.prompt for p in again] == [p.prompt for p in probes]  # deterministic


def test_unknown_concept_is_a_clear_error(graph):
    with pytest.raises(ValidationError, match="names no entity"):
        form_probes(graph, [UnlearnRequest("Nobody At All")])
