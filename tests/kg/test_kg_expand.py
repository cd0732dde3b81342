"""GLAME subgraph expansion: shape, caps, filters, deterministic sampling, chain probes."""

from __future__ import annotations

import pytest
from geo_graph import build

from contracts.types import ProbeKind, SubgraphEdge
from kg.errors import NotFoundError, ValidationError
from kg.expand import ExpansionConfig, expand_edit, sample_facts
from kg.store.base import GraphStore, sample_key
from kg.types import Entity, Fact


@pytest.fixture
def geo(sqlite_store: GraphStore) -> GraphStore:
    build(sqlite_store)
    return sqlite_store


def test_subgraph_around_the_new_object(geo: GraphStore) -> None:
    exp = expand_edit(geo, "spike", "P19", "philly", "london", ExpansionConfig(hops=2))
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


def test_new_and_old_chains_become_multi_hop_probes(geo: GraphStore) -> None:
    exp = expand_edit(geo, "spike", "P19", "philly", "london", ExpansionConfig(hops=2))
    assert {(c.relations, c.end) for c in exp.new_chains} == {
        (("P17",), "usa"),
        (("P17", "P37"), "english"),
        (("P17", "P36"), "washington"),
    }
    # london → uk → english still holds through philly → usa → english: not an old chain
    assert {(c.relations, c.end) for c in exp.old_chains} == {
        (("P17",), "uk"),
    }
    by_path = {p.meta["path"]: p for p in exp.probes if p.meta["bucket"] != "old"}
    two_hop = by_path["P19/P17"]
    assert two_hop.kind == ProbeKind.MULTI_HOP
    assert two_hop.prompt == "The place of birth of Spike Hughes is located in the country of"
    assert two_hop.expected == "United States" and two_hop.unexpected == "United Kingdom"
    assert two_hop.meta["bucket"] == "2-hop"
    three = by_path["P19/P17/P37"]
    assert three.prompt == (
        "The official language of the country of the place of birth of Spike Hughes is"
    )
    assert three.expected == "English" and three.meta["bucket"] == "3-hop"
    old = [p for p in exp.probes if p.meta["bucket"] == "old"]
    assert [(p.expected, p.meta["role"]) for p in old] == [("United Kingdom", "forget")]


def test_fanout_caps_filters_and_max_nodes(geo: GraphStore) -> None:
    geo.add_entities([Entity(f"town{i:02d}", f"Town {i}") for i in range(30)])
    geo.add_facts([Fact(f"town{i:02d}", "P17", "usa") for i in range(30)])
    wide = expand_edit(
        geo, "spike", "P19", "usa", None, ExpansionConfig(hops=1, fanout=(100,), direction="both")
    )
    assert len(wide.facts) == 34  # 30 towns + philly + washington (in), english + washington (out)
    capped = expand_edit(
        geo, "spike", "P19", "usa", None, ExpansionConfig(hops=1, fanout=(5,), direction="both")
    )
    assert len(capped.facts) == 5
    in_order = sorted(wide.facts, key=lambda f: sample_key(*f.triple))
    assert list(capped.facts) == in_order[:5]  # seed 0: bottom-5 by the stored sample key
    only = expand_edit(
        geo,
        "spike",
        "P19",
        "usa",
        None,
        ExpansionConfig(hops=1, allow=frozenset({"P36"}), direction="both"),
    )
    assert {f.triple for f in only.facts} == {("usa", "P36", "washington")}
    denied = expand_edit(
        geo,
        "spike",
        "P19",
        "usa",
        None,
        ExpansionConfig(hops=1, deny=frozenset({"P17"}), direction="both"),
    )
    assert {f.relation for f in denied.facts} == {"P36", "P37"}
    small = expand_edit(
        geo, "spike", "P19", "usa", None, ExpansionConfig(hops=2, max_nodes=4, direction="both")
    )
    assert len(small.node_ids) <= 4


def test_expansion_is_deterministic_and_seeded(graph_store: GraphStore) -> None:
    build(graph_store)
    graph_store.add_entities([Entity(f"town{i:02d}", f"Town {i}") for i in range(30)])
    graph_store.add_facts([Fact(f"town{i:02d}", "P17", "usa") for i in range(30)])
    config = ExpansionConfig(hops=2, fanout=(6, 3), direction="both")
    first = expand_edit(graph_store, "spike", "P19", "philly", "london", config)
    again = expand_edit(graph_store, "spike", "P19", "philly", "london", config)
    assert first == again and first.probes == again.probes
    seeded = ExpansionConfig(hops=2, fanout=(6, 3), direction="both", seed=7)
    other = expand_edit(graph_store, "spike", "P19", "philly", "london", seeded)
    assert other == expand_edit(graph_store, "spike", "P19", "philly", "london", seeded)
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
