"""Audit probes derived from a small hand-made graph: every kind, its buckets, determinism."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from geo_graph import BIRTH_CLOZE, CAPITAL, rel

from contracts.types import EditRequest, Probe, ProbeKind, UnlearnRequest
from kg.chains import composed_prompt, noun_phrase, reverse_template
from kg.probes import (
    EDIT_KINDS,
    KIND_LAST_TOKEN_NEIGHBOUR,
    KIND_RETAIN,
    KIND_SAMPLE,
    ProbeConfig,
    audit_probes,
    edit_probes,
    sample_probes,
    unlearn_probes,
)
from kg.relsim import EASY, HARD
from kg.store.sql import SqlGraphStore
from kg.types import Entity, Fact, Relation
from kg.view import GraphView

PEOPLE = ["Ada Byron", "Max Planck", "Lise Meitner", "Niels Bohr", "Marie Curie", "Otto Hahn"]


def _relations() -> list[Relation]:
    return [
        rel("P19", "place of birth", BIRTH_CLOZE, ("Where was {} born?",)),
        rel("P20", "place of death", ("{} died in", "{} passed away in"), ("Where did {} die?",)),
        rel("P103", "native language", ("The mother tongue of {} is",), functional=False),
        rel(
            "P17",
            "country",
            ("{} is located in the country of",),
            ("Which country is {} located in?",),
        ),
        CAPITAL,
        rel("label:famous_for", "famous for", ("{} famous for",), ("{} famous for what?",)),
        rel("P30", "continent", ("{} is located in the continent",)),
    ]


@pytest.fixture
def graph(tmp_path) -> SqlGraphStore:
    """People born and dead in cities, cities in countries, countries with capitals."""
    store = SqlGraphStore(f"sqlite:///{tmp_path / 'kg.sqlite'}")
    cities = {"c_london": "London", "c_paris": "Paris", "c_berlin": "Berlin", "c_vienna": "Vienna"}
    countries = {"k_uk": "United Kingdom", "k_fr": "France", "k_de": "Germany", "k_at": "Austria"}
    langs = {"l_en": "English", "l_de": "German"}
    people = {f"p{i}": name for i, name in enumerate(PEOPLE)}
    store.add_entities(
        [Entity(i, n) for d in (cities, countries, langs, people) for i, n in d.items()]
        + [Entity("x_eiffel", "Eiffel Tower"), Entity("x_bigben", "Big Ben")]
        + [Entity("z_europe", "Europe")]
    )
    store.add_relations(_relations())
    born = ["c_london", "c_berlin", "c_vienna", "c_london", "c_paris", "c_berlin"]
    facts = [Fact(f"p{i}", "P19", born[i], source="t") for i in range(len(PEOPLE))]
    facts += [Fact("p0", "P20", "c_paris", source="t"), Fact("p1", "P20", "c_berlin", source="t")]
    facts += [Fact("p0", "P103", "l_en", source="t"), Fact("p3", "P103", "l_de", source="t")]
    for city, country in [
        ("c_london", "k_uk"),
        ("c_paris", "k_fr"),
        ("c_berlin", "k_de"),
        ("c_vienna", "k_at"),
    ]:
        facts.append(Fact(city, "P17", country, source="t"))
        facts.append(Fact(country, "P36", city, source="t"))
        facts.append(Fact(country, "P30", "z_europe", source="t"))
    facts += [
        Fact("c_paris", "label:famous_for", "x_eiffel", source="t"),
        Fact("c_london", "label:famous_for", "x_bigben", source="t"),
    ]
    store.add_facts(facts)
    return store


def _edit(**kw) -> EditRequest:
    base = dict(
        subject="Ada Byron",
        prompt="{} was born in",
        target_new="Paris",
        target_true="London",
        relation="P19",
        request_id="e1",
    )
    return EditRequest(**{**base, **kw})


def _by_kind(probes, kind, bucket=None):
    return [
        p
        for p in probes
        if str(p.kind) == str(kind) and (bucket is None or p.meta.get("bucket") == bucket)
    ]


def test_every_kind_is_derived_with_its_answers(graph):
    (change,) = audit_probes(graph, [_edit()])
    probes = change.probes
    kinds = Counter(str(p.kind) for p in probes)
    for kind in ProbeKind:
        assert kinds[kind.value] > 0, f"no {kind.value} probe"
    (rewrite,) = _by_kind(probes, ProbeKind.REWRITE)
    assert (rewrite.prompt, rewrite.expected, rewrite.unexpected) == (
        "Ada Byron was born in",
        "Paris",
        "London",
    )
    paraphrases = {p.prompt for p in _by_kind(probes, ProbeKind.PARAPHRASE)}
    assert paraphrases == {"Ada Byron originates from", "The birthplace of Ada Byron is"}
    neighbours = _by_kind(probes, ProbeKind.NEIGHBOUR)
    assert {p.prompt.split(" was")[0] for p in neighbours} == set(PEOPLE) - {"Ada Byron"}
    assert neighbours[0].expected == "London"  # same old object first, CounterFact style
    assert all(p.unexpected == "Paris" for p in neighbours if p.expected != "Paris")
    assert all(p.meta["change"] == "e1" for p in probes)


def test_same_subject_facts_are_bucketed_by_relation_similarity(graph):
    (change,) = audit_probes(graph, [_edit()])
    same = {p.meta["relation"]: p for p in _by_kind(change.probes, ProbeKind.SAME_SUBJECT)}
    assert set(same) == {"P20", "P103"}
    assert same["P20"].prompt == "Ada Byron died in" and same["P20"].expected == "Paris"
    sim = GraphView(graph).similarity()
    assert sim.similarity("P19", "P20") > sim.similarity("P19", "P103")
    assert same["P20"].meta["bucket"] == HARD
    assert same["P103"].meta["bucket"] == EASY


def test_multi_hop_chains_are_composed_and_stepwise(graph):
    (change,) = audit_probes(graph, [_edit()])
    composed = {
        p.prompt: p
        for p in _by_kind(change.probes, ProbeKind.MULTI_HOP)
        if "hop" in p.meta["bucket"]
    }
    two = composed["The place of birth of Ada Byron is located in the country of"]
    assert (two.expected, two.unexpected, two.meta["bucket"]) == (
        "France",
        "United Kingdom",
        "2-hop",
    )
    three = composed["The country of the place of birth of Ada Byron is located in the continent"]
    assert (three.expected, three.unexpected, three.meta["bucket"]) == ("Europe", None, "3-hop")
    steps = _by_kind(change.probes, ProbeKind.MULTI_HOP_STEPWISE, "2-hop")
    country = next(p for p in steps if json.loads(p.meta["hops"])[1].endswith("country of"))
    assert json.loads(country.meta["hops"]) == ["{} was born in", "{} is located in the country of"]
    assert json.loads(country.meta["graph_answers"]) == ["Paris", "France"]
    assert country.meta["subject"] == "Ada Byron"
    old = _by_kind(change.probes, ProbeKind.MULTI_HOP, "old")
    assert old and all(p.meta["role"] == "forget" for p in old)
    assert "Big Ben" in {p.expected for p in old}  # London's famous-for has no Paris twin path


def test_reverse_forms_and_prefix_distraction(graph):
    (change,) = audit_probes(
        graph,
        [_edit(subject="Marie Curie", target_true="Paris", target_new="Vienna", request_id="e2")],
    )
    probes = change.probes
    reverse = {p.meta["bucket"]: p for p in _by_kind(probes, ProbeKind.REVERSE)}
    assert reverse["new"].prompt == "Vienna is the place of birth of"
    assert reverse["new"].expected == "Marie Curie"
    assert "Lise Meitner" not in reverse["new"].rivals  # born in Vienna: a right answer too
    assert reverse["stale"].prompt == "Paris is the place of birth of"  # one-to-one in the graph
    assert reverse["stale"].meta["role"] == "forget"
    (mc,) = _by_kind(probes, ProbeKind.FORM_MC)
    assert mc.prompt.startswith("Question: Where was Marie Curie born? Options: A. ")
    assert f"{mc.expected}. Vienna" in mc.prompt and f"{mc.unexpected}. Paris" in mc.prompt
    assert len(mc.rivals) == 2 and mc.expected not in mc.rivals
    tf = {p.meta.get("bucket", "new"): p for p in _by_kind(probes, ProbeKind.FORM_TF)}
    assert tf["new"].prompt == "True or false: Marie Curie was born in Vienna. Answer:"
    assert (tf["new"].expected, tf["old"].expected) == ("True", "False")
    (question,) = _by_kind(probes, ProbeKind.FORM_QUESTION)
    assert question.prompt == "Where was Marie Curie born? Answer:"
    prefix = _by_kind(probes, ProbeKind.PREFIX_DISTRACTION)
    assert prefix and all(p.prompt.startswith("Marie Curie was born in Vienna. ") for p in prefix)
    assert all(p.unexpected == "Vienna" and p.expected != "Vienna" for p in prefix)


def test_derivation_is_deterministic_and_avoids_other_edits(graph):
    edits = [
        _edit(),
        _edit(subject="Niels Bohr", target_true="London", target_new="Berlin", request_id="e3"),
    ]
    first = audit_probes(graph, edits)
    again = audit_probes(graph, edits)
    assert [(p.prompt, p.expected, p.rivals) for c in first for p in c.probes] == [
        (p.prompt, p.expected, p.rivals) for c in again for p in c.probes
    ]
    for change in first:
        for p in _by_kind(change.probes, ProbeKind.NEIGHBOUR):
            assert not p.prompt.startswith(("Ada Byron", "Niels Bohr"))
    statuses = first[0].edge_status
    assert statuses[:2] == ("new", "old")
    nodes = first[0].subgraph.nodes
    assert nodes[0] == "Ada Byron" and nodes[first[0].subgraph.edges[0].tail] == "Paris"


def test_edit_probes_are_the_audit_probes_of_their_kinds(graph):
    edit = _edit()
    config = ProbeConfig(n_paraphrases=1)
    (change,) = audit_probes(graph, [edit], config)
    kinds = {k.value for k in EDIT_KINDS}
    expected = [p for p in change.probes if str(p.kind) in kinds]
    assert {str(p.kind) for p in expected} == kinds
    assert edit_probes(graph, edit, config) == expected


def test_neighbours_come_from_the_graph_not_the_request(graph):
    stray = Probe("Somebody was born in", "Nowhere", ProbeKind.NEIGHBOUR)
    neighbours = _by_kind(edit_probes(graph, _edit(neighbours=(stray,))), ProbeKind.NEIGHBOUR)
    assert {p.prompt.split(" was")[0] for p in neighbours} == set(PEOPLE) - {"Ada Byron"}
    assert all(p.unexpected == "Paris" for p in neighbours if p.expected != "Paris")


def test_same_subject_skips_a_namesake_and_is_compared_with_the_new_object(graph):
    graph.add_entities([Entity("p9", "Ada Byron")])  # a namesake who never was born anywhere
    graph.add_facts([Fact("p9", "P20", "c_vienna", source="t")])
    same = _by_kind(edit_probes(graph, _edit(target_new="Berlin")), ProbeKind.SAME_SUBJECT)
    assert sorted((p.prompt, p.expected, p.unexpected) for p in same) == [
        ("Ada Byron died in", "Paris", "Berlin"),
        ("The mother tongue of Ada Byron is", "English", "Berlin"),
    ]


def test_last_token_neighbours_share_the_subjects_last_token_and_avoid_the_batch(graph):
    graph.add_entities([Entity("q1", "Lord Byron"), Entity("q2", "George Byron")])
    graph.add_facts(
        [Fact("q1", "P19", "c_paris", source="t"), Fact("q2", "P19", "c_berlin", source="t")]
    )
    vocab: dict[str, int] = {}

    def last_token(name: str) -> int:
        return vocab.setdefault(name.split()[-1], len(vocab))

    edit = _edit(target_new="Vienna")
    alone = _by_kind(edit_probes(graph, edit, last_token=last_token), KIND_LAST_TOKEN_NEIGHBOUR)
    assert sorted((p.prompt, p.expected, p.unexpected) for p in alone) == [
        ("George Byron was born in", "Berlin", "Vienna"),
        ("Lord Byron was born in", "Paris", "Vienna"),
    ]
    other = _edit(subject="George Byron", target_true="Berlin", request_id="e4")
    probes = edit_probes(graph, edit, batch=[other], last_token=last_token)
    assert [p.prompt for p in _by_kind(probes, KIND_LAST_TOKEN_NEIGHBOUR)] == [
        "Lord Byron was born in"
    ]
    assert not [p for p in probes if p.prompt.startswith("George Byron")]


def test_noun_phrases_and_composed_prompts(graph):
    view = GraphView(graph)
    assert noun_phrase(view.relation("P36")) == "the capital of {}"
    assert noun_phrase(view.relation("P19")) == "the place of birth of {}"
    assert noun_phrase(view.relation("label:famous_for")) is None
    assert reverse_template(view.relation("P36")) == "{} is the capital of"
    assert composed_prompt(view, "Ada Byron", ["P19", "P17", "P36"]) == (
        "The capital of the country of the place of birth of Ada Byron is"
    )
    assert composed_prompt(view, "Ada Byron", ["P19", "label:famous_for", "P17"]) is None


def test_unlearning_probes_cover_every_form_and_retain(graph):
    (change,) = unlearn_probes(graph, [UnlearnRequest("Ada Byron", request_id="u1")])
    forget = [p for p in change.probes if p.meta.get("role") == "forget"]
    kinds = {str(p.kind) for p in forget}
    assert {"form_cloze", "form_question", "form_mc", "form_tf"} <= kinds
    assert {p.expected for p in _by_kind(forget, ProbeKind.FORM_CLOZE)} == {
        "London",
        "Paris",
        "English",
    }
    retain = _by_kind(change.probes, KIND_RETAIN)
    assert retain and not any("Ada Byron" in p.prompt for p in retain)
    assert change.kind == "unlearn" and change.subgraph.nodes[0] == "Ada Byron"


def test_sample_probes_skip_touched_subjects_and_repeat(graph):
    view = GraphView(graph)
    touched = view.resolve("Ada Byron")
    probes = sample_probes(graph, n=10, seed=3, exclude_subjects=touched)
    assert len(probes) == 10 and all(str(p.kind) == KIND_SAMPLE for p in probes)
    assert not any(p.meta["fact"].startswith(f"{touched[0]}|") for p in probes)
    assert [p.prompt for p in sample_probes(graph, 10, 3, touched)] == [p.prompt for p in probes]
    assert len(sample_probes(graph, 10_000, 0)) == graph.count_facts()


def test_sample_probes_skip_facts_about_a_forgotten_object(graph):
    view = GraphView(graph)
    (london,) = view.resolve("London")
    every = sample_probes(graph, 10_000, 0)
    assert any(p.meta["fact"].endswith(f"|{london}") for p in every)
    kept = sample_probes(graph, 10_000, 0, exclude_objects=[london])
    assert not any(p.meta["fact"].endswith(f"|{london}") for p in kept)
    assert len(kept) == len(every) - len(graph.facts_with_object(london))


def test_same_subject_leaves_out_relations_that_state_the_same_fact(graph):
    asked = rel("ask_birth", "asked birthplace", ("{} came into the world in",))
    declared = Relation(
        "hometown", "home town", {"cloze": ("The home town of {} is",)}, equivalent_to=("P19",)
    )
    once = rel("first_home", "first home", ("{} first lived in",))
    graph.add_relations([asked, declared, once])
    graph.add_facts(
        [
            Fact("p0", "ask_birth", "c_london"),  # agrees with P19 on p0 and p1: same fact
            Fact("p1", "ask_birth", "c_berlin"),
            Fact("p0", "hometown", "c_vienna"),  # disagrees, but declared equivalent
            Fact("p0", "first_home", "c_london"),  # agrees on one shared subject only
        ]
    )
    view = GraphView(graph)
    assert view.same_fact("P19") == {"ask_birth", "hometown"}
    assert view.same_fact("hometown") == {"P19"}  # a declaration reads both ways
    (change,) = audit_probes(graph, [_edit()])
    same = {p.meta["relation"] for p in _by_kind(change.probes, ProbeKind.SAME_SUBJECT)}
    assert same == {"P20", "P103", "first_home"}


def test_one_disagreeing_subject_makes_relations_distinct(graph):
    graph.add_relation(rel("ask_birth", "asked birthplace", ("{} came into the world in",)))
    graph.add_facts(
        [
            Fact("p0", "ask_birth", "c_london"),
            Fact("p1", "ask_birth", "c_berlin"),
            Fact("p2", "ask_birth", "c_paris"),  # p2 was born in Vienna
        ]
    )
    assert GraphView(graph).same_fact("P19") == frozenset()
