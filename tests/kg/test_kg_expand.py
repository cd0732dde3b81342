"""GLAME subgraph expansion: shape, caps, filters, deterministic sampling, requests by name."""

from __future__ import annotations

import dataclasses

import pytest
from geo_graph import build

from contracts.types import EditRequest, SubgraphEdge
from kg.errors import NotFoundError, ValidationError
from kg.expand import ExpansionConfig, expand_edit, expand_request, sample_facts
from kg.store.base import GraphStore, sample_key
from kg.types import Entity, Fact


@pytest.fixture
def geo(sqlite_store: GraphStore) -> GraphStore:
    build(sqlite_store)
    return sqlite_store


def test_subgraph_around_the_new_object(geo: GraphStore) -> None:
    exp = expand_edit(geo, "spike", "P19", "philly", ExpansionConfig(hops=2))
    sg = exp.subgraph
    assert sg.center == 0 and sg.nodes[:2] == ("Spike Hughes", "Philadelphia")
    assert sg.edges[0] == SubgraphEdge(0, "place of birth", 1)
    triples = {(sg.nodes[e.head], e.relation, sg.nodes[e.tail]) for e in sg.edges[1:]}
    assert triples == {
        ("Philadelphia", "country", "United States"),
        ("United States", "official language", "English"),
        ("United States", "capital", "Washington"),
    }
    assert exp.node_ids[:2] == ("spike", "philly") and len(exp.node_ids) == len(sg.nodes)
    assert all(0 <= e.head < len(sg.nodes) and 0 <= e.tail < len(sg.nodes) for e in sg.edges)


def test_a_request_is_expanded_by_its_names(geo: GraphStore) -> None:
    request = EditRequest(
        "Spike Hughes", "{} was born in", "Philadelphia", "London", relation="P19"
    )
    config = ExpansionConfig(hops=2)
    assert expand_request(geo, request, config) == expand_edit(
        geo, "spike", "P19", "philly", config
    )
    with pytest.raises(NotFoundError, match="Atlantis"):
        expand_request(geo, dataclasses.replace(request, target_new="Atlantis"), config)
    with pytest.raises(ValidationError, match="relation"):
        expand_request(geo, dataclasses.replace(request, relation=None), config)


def test_fanout_caps_filters_and_max_nodes(geo: GraphStore) -> None:
    geo.add_entities([Entity(f"town{i:02d}", f"Town {i}") for i in range(30)])
    geo.add_facts([Fact(f"town{i:02d}", "P17", "usa") for i in range(30)])

    def toward_usa(**config):  # Spike Hughes born in the USA, expanded both ways
        return expand_edit(geo, "spike", "P19", "usa", ExpansionConfig(direction="both", **config))

    wide = toward_usa(hops=1, fanout=(100,))
    assert len(wide.facts) == 34  # 30 towns + philly + washington (in), english + washington (out)
    capped = toward_usa(hops=1, fanout=(5,))
    assert len(capped.facts) == 5
    in_order = sorted(wide.facts, key=lambda f: sample_key(*f.triple))
    assert list(capped.facts) == in_order[:5]  # seed 0: bottom-5 by the stored sample key
    only = toward_usa(hops=1, allow=frozenset({"P36"}))
    assert {f.triple for f in only.facts} == {("usa", "P36", "washington")}
    denied = toward_usa(hops=1, deny=frozenset({"P17"}))
    assert {f.relation for f in denied.facts} == {"P36", "P37"}
    small = toward_usa(hops=2, max_nodes=4)
    assert len(small.node_ids) <= 4


def test_expansion_is_deterministic_and_seeded(graph_store: GraphStore) -> None:
    build(graph_store)
    graph_store.add_entities([Entity(f"town{i:02d}", f"Town {i}") for i in range(30)])
    graph_store.add_facts([Fact(f"town{i:02d}", "P17", "usa") for i in range(30)])
    config = ExpansionConfig(hops=2, fanout=(6, 3), direction="both")
    first = expand_edit(graph_store, "spike", "P19", "philly", config)
    again = expand_edit(graph_store, "spike", "P19", "philly", config)
    assert first == again
    seeded = ExpansionConfig(hops=2, fanout=(6, 3), direction="both", seed=7)
    other = expand_edit(graph_store, "spike", "P19", "philly", seeded)
    assert other == expand_edit(graph_store, "spike", "P19", "philly", seeded)
    assert {f.triple for f in other.facts} != {f.triple for f in first.facts}
    # the same sample on every backend: bottom-k by the triple's fixed key
    towns = [f for f in first.facts if f.subject.startswith("town")]
    expected = sorted(
        [Fact(f"town{i:02d}", "P17", "usa") for i in range(30)]
        + [Fact("philly", "P17", "usa"), Fact("washington", "P17", "usa")],
        key=lambda f: sample_key(*f.triple),
    )
    picked = [f.triple for f in expected[:3] if f.subject.startswith("town")]
    assert sorted(f.triple for f in towns) == sorted(picked)


def test_sample_facts_orders() -> None:
    facts = [Fact(f"s{i}", "r", "o") for i in range(20)]
    assert sample_facts(facts, 5, 0) == facts[:5]
    assert sample_facts(facts, 5, 3) == sample_facts(list(reversed(facts)), 5, 3)
    assert sample_facts(facts, 5, 3) != sample_facts(facts, 5, 4)


def test_bad_input(geo: GraphStore) -> None:
    with pytest.raises(NotFoundError, match="ghost"):
        expand_edit(geo, "spike", "P19", "ghost")
    with pytest.raises(NotFoundError, match="P404"):
        expand_edit(geo, "spike", "P404", "philly")
    with pytest.raises(ValidationError, match="hops"):
        ExpansionConfig(hops=9)
    with pytest.raises(ValidationError, match="fanout"):
        ExpansionConfig(fanout=(3, 0))
    with pytest.raises(ValidationError, match="not a string"):
        ExpansionConfig(allow="P17")  # type: ignore[arg-type]
