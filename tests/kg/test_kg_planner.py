"""Planner: ordering of dependent edits, dedupe, conflicts reported, batch cap, probes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from geo_graph import bag_embed, build

from contracts.types import EditRequest, ProbeKind, UnlearnRequest
from kg import curation
from kg.embeddings import MODEL_NAME
from kg.errors import StateError
from kg.planner import EDIT_AND_FORGET, TWO_TARGETS, PlannerConfig, plan
from kg.related import vector_key
from kg.store.base import GraphStore
from kg.types import ChangeSet, Concept, Entity, Fact, Operation


@pytest.fixture
def geo(sqlite_store: GraphStore) -> GraphStore:
    build(sqlite_store)
    return sqlite_store


def _op(kind: str, **payload) -> Operation:
    return Operation(kind, payload)


def _replace(subject: str, relation: str, old: str, new: str) -> Operation:
    return _op("replace_object", subject=subject, relation=relation, object=old, new_object=new)


def _approve(store: GraphStore, *ops: Operation) -> str:
    cs = curation.create_change_set(store, "alice", "curation", list(ops))
    curation.propose(store, cs.id, who="alice")
    return curation.approve(store, cs.id, reviewer="rita").id


def test_edit_request_carries_subgraph_and_every_probe_kind(geo: GraphStore) -> None:
    cs = _approve(geo, _replace("spike", "P19", "london", "philly"))
    result = plan(geo, [cs])
    (batch,) = result.batches
    (item,) = batch.requests
    request = item.request
    assert isinstance(request, EditRequest) and batch.kind == "edit"
    assert (request.subject, request.prompt, request.target_new, request.target_true) == (
        "Spike Hughes",
        "{} was born in",
        "Philadelphia",
        "London",
    )
    assert request.paraphrases == ("{} originates from", "The birthplace of {} is")
    # the question form and one of the two other wordings (new words before the subject)
    assert request.forms == ("What is the place of birth of {}? Answer:", "The birthplace of {} is")
    assert request.subgraph is not None and request.subgraph.nodes[:2] == (
        "Spike Hughes",
        "Philadelphia",
    )
    kinds = {p.kind for p in item.probes}
    for kind in ("rewrite", "paraphrase", "neighbour", "same_subject", "multi_hop"):
        assert kind in kinds, kind
    paraphrases = [p.prompt for p in item.probes if p.kind == ProbeKind.PARAPHRASE]
    assert paraphrases == ["Spike Hughes originates from"]  # the forms are not held out
    neighbours = [p for p in item.probes if p.kind == ProbeKind.NEIGHBOUR]
    assert {p.expected for p in neighbours} == {"London"}
    assert {p.prompt for p in neighbours} == {"Max Mosley was born in", "Ada Lovelace was born in"}
    assert request.neighbours and all(p.kind == ProbeKind.NEIGHBOUR for p in request.neighbours)
    same = [p for p in item.probes if p.kind == ProbeKind.SAME_SUBJECT]
    assert [(p.prompt, p.expected) for p in same] == [("Spike Hughes speaks", "English")]
    hops = {p.meta["path"] for p in item.probes if p.kind == ProbeKind.MULTI_HOP}
    assert {"P19/P17", "P19/P17/P37", "P19/P17/P36"} <= hops
    assert item.change_sets == (cs,) and item.depends_on == ()
    assert result.graph_version == 1 and result.conflicts == ()


def test_multi_hop_probes_follow_new_chains_and_retire_old_ones(geo: GraphStore) -> None:
    cs = _approve(geo, _replace("spike", "P19", "london", "philly"))
    (item,) = plan(geo, [cs]).batches[0].requests
    chains = [p for p in item.probes if p.kind == ProbeKind.MULTI_HOP]
    by_path = {p.meta["path"]: p for p in chains if p.meta["bucket"] != "old"}
    two = by_path["P19/P17"]
    assert two.prompt == "The place of birth of Spike Hughes is located in the country of"
    assert (two.expected, two.unexpected, two.meta["bucket"]) == (
        "United States",
        "United Kingdom",
        "2-hop",
    )
    three = by_path["P19/P17/P37"]
    assert three.prompt == (
        "The official language of the country of the place of birth of Spike Hughes is"
    )
    assert (three.expected, three.meta["bucket"]) == ("English", "3-hop")
    # london → uk → english still holds through philly → usa → english: not an old chain
    old = [p for p in chains if p.meta["bucket"] == "old"]
    assert [(p.expected, p.meta["role"]) for p in old] == [("United Kingdom", "forget")]
    assert any(p.kind == ProbeKind.MULTI_HOP_STEPWISE for p in item.probes)


def test_dependent_edits_stay_in_order(geo: GraphStore) -> None:
    first = _approve(geo, _replace("spike", "P19", "london", "philly"))
    second = _approve(geo, _replace("philly", "P17", "usa", "france"))  # chains through philly
    third = _approve(geo, _replace("max", "P19", "london", "paris"))  # independent
    result = plan(geo, [third, second, first], PlannerConfig(batch_size=8))
    assert [[r.request_id for r in b.requests] for b in result.batches] == [
        [f"{first}:0", f"{third}:0"],
        [f"{second}:0"],
    ]
    dependent = result.batches[1].requests[0]
    assert dependent.depends_on == (f"{first}:0",)
    ids = [r.request_id for r in result.requests()]
    assert ids.index(f"{first}:0") < ids.index(f"{second}:0")


def test_batch_size_is_capped(geo: GraphStore) -> None:
    geo.add_entities([Entity(f"p{i}", f"Person {i}") for i in range(5)])
    geo.add_facts([Fact(f"p{i}", "P19", "london") for i in range(5)])
    ops = [_replace(f"p{i}", "P19", "london", "paris") for i in range(5)]
    cs = _approve(geo, *ops)
    result = plan(geo, [cs], PlannerConfig(batch_size=2))
    assert [len(b.requests) for b in result.batches] == [2, 2, 1]
    assert [r.request_id for r in result.requests()] == [f"{cs}:{i}" for i in range(5)]


def test_two_targets_for_one_slot_are_reported_and_separated(geo: GraphStore) -> None:
    cs = _approve(
        geo,
        _op("add_fact", subject="max", relation="P1412", object="french"),
        _op("add_fact", subject="max", relation="P1412", object="english"),
    )
    result = plan(geo, [cs])
    (conflict,) = result.conflicts
    assert conflict.kind == TWO_TARGETS and conflict.request_ids == (f"{cs}:0", f"{cs}:1")
    assert conflict.subject == "max" and conflict.relation == "P1412"
    assert "french" in conflict.detail and "english" in conflict.detail
    assert len(result.requests()) == 2  # reported, not dropped
    assert [len(b.requests) for b in result.batches] == [1, 1]


def test_edit_and_forget_on_one_subject_is_reported(geo: GraphStore) -> None:
    cs = _approve(
        geo,
        _replace("spike", "P19", "london", "philly"),
        _op("add_concept", id="c:spike", name="Spike Hughes"),
        _op("mark_forget", concept="c:spike"),
        _op("add_alias", entity="philly", alias="Philly"),
    )
    result = plan(geo, [cs], embed=bag_embed)
    kinds = {c.kind for c in result.conflicts}
    assert kinds == {EDIT_AND_FORGET}
    assert [b.kind for b in result.batches] == ["edit", "unlearn"]
    unlearn = result.batches[1].requests[0]
    assert isinstance(unlearn.request, UnlearnRequest) and unlearn.request.concept == "Spike Hughes"
    assert unlearn.depends_on == (f"{cs}:0",)
    assert [s["kind"] for s in result.skipped] == ["add_concept", "add_alias"]
    assert all("graph-only" in s["reason"] for s in result.skipped)


def test_unlearn_request_uses_related_discovery_and_caches_vectors(geo: GraphStore) -> None:
    cs = _approve(
        geo,
        _op("add_concept", id="c:uk", name="United Kingdom"),
        _op("mark_forget", concept="c:uk"),
    )
    result = plan(geo, [cs], embed=bag_embed)
    (item,) = result.requests()
    request = item.request
    assert isinstance(request, UnlearnRequest) and item.subject_ids == ("uk",)
    assert item.related and all(r.reason for r in item.related)
    assert "United Kingdom is located in the country of" not in request.forget_texts
    assert "London is located in the country of United Kingdom" in request.forget_texts
    assert request.forms and all(p.meta.get("role") == "forget" for p in request.forms)
    assert request.retain_texts and not set(request.retain_texts) & set(request.forget_texts)
    texts = [f"{t}" for t in request.forget_texts]
    assert geo.get_vectors([vector_key(t) for t in texts], MODEL_NAME)  # cached in the store


def test_a_forget_without_a_redirect_gets_the_suggested_anchor(geo: GraphStore) -> None:
    geo.add_entity(Entity("zed", "Zed Quist"))  # a person who shares no fact with Spike
    geo.add_fact(Fact("zed", "P19", "paris", source="t"))
    cs = _approve(
        geo,
        _op("add_concept", id="c:spike", name="Spike Hughes"),
        _op("mark_forget", concept="c:spike"),
    )
    (item,) = plan(geo, [cs], embed=bag_embed).requests()
    assert item.request.anchor == "Zed Quist"  # Max and Ada share Spike's birthplace
    geo.set_concept_redirect("c:spike", "max", who="t", why="curator's choice")
    (item,) = plan(geo, [cs], embed=bag_embed).requests()
    assert item.request.anchor == "Max Mosley"


def test_dedupe_across_change_sets(geo: GraphStore) -> None:
    geo.add_concept(Concept("c:ada", "Ada Lovelace"))
    now = datetime.now(UTC)
    forget = _op("mark_forget", concept="c:ada")
    one = ChangeSet("cs-a", "alice", "gdpr", now, (forget,), "approved", graph_version=1)
    two = ChangeSet("cs-b", "bob", "gdpr again", now, (forget,), "approved", graph_version=2)
    result = plan(geo, [two, one], embed=bag_embed)
    (item,) = result.requests()
    assert item.request_id == "cs-a:0" and item.change_sets == ("cs-a", "cs-b")


def test_only_approved_change_sets_plan(geo: GraphStore) -> None:
    cs = curation.create_change_set(
        geo, "alice", "r", [_replace("spike", "P19", "london", "paris")]
    )
    with pytest.raises(StateError, match="only approved"):
        plan(geo, [cs.id])


def test_plan_serialises(geo: GraphStore) -> None:
    cs = _approve(geo, _replace("spike", "P19", "london", "philly"))
    data = plan(geo, [cs]).to_dict()
    assert data["batches"][0]["requests"][0]["request"]["target_new"] == "Philadelphia"
