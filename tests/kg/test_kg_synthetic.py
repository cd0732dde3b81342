"""The synthetic world: deterministic, consistent, every template form, multi-hop probes."""

from __future__ import annotations

from collections import Counter

import pytest

from contracts.types import ProbeKind
from kg import curation
from kg.chains import noun_phrase
from kg.importers.synthetic import RELATION_KINDS, RELATIONS, build_world, import_synthetic
from kg.planner import plan
from kg.store.base import GraphStore
from kg.types import Operation, TemplateForm


def test_same_seed_same_world_other_seed_other_world() -> None:
    a, b = build_world(60, seed=3), build_world(60, seed=3)
    assert a == b
    assert [f.triple for f in a.facts] == [f.triple for f in b.facts]
    other = build_world(60, seed=4)
    assert {e.name for e in other.entities} != {e.name for e in a.entities}


def test_import_writes_the_same_facts_for_the_same_seed(tmp_path) -> None:
    from kg.store import open_store

    triples = []
    for name in ("a", "b"):
        store = open_store(f"sqlite:///{tmp_path / name}.sqlite")
        summary = import_synthetic(store, n_people=40, seed=7)
        names = store.entity_names(e.id for e in store.list_entities())
        triples.append(
            sorted((names[f.subject], f.relation, names[f.object]) for f in store.list_facts())
        )
        assert summary.added == {
            "entities": summary.entities,
            "relations": len(RELATIONS),
            "facts": summary.facts,
        }
        again = import_synthetic(store, n_people=40, seed=7)  # idempotent
        assert again.added == {"entities": 0, "relations": 0, "facts": 0}
        store.close()
    assert triples[0] == triples[1] and len(triples[0]) == summary.facts


def test_functional_relations_hold_one_object_and_kinds_match() -> None:
    world = build_world(120, seed=1)
    kinds = {e.id: e.kind for e in world.entities}
    per_slot = Counter((f.subject, f.relation) for f in world.facts)
    assert max(per_slot.values()) == 1
    for f in world.facts:
        assert (kinds[f.subject], kinds[f.object]) == RELATION_KINDS[f.relation], f
    people = [e.id for e in world.entities if e.kind == "person"]
    assert len(people) == 120
    for relation in ("born_in", "lives_in", "citizen_of", "works_for"):
        assert {f.subject for f in world.facts if f.relation == relation} == set(people)
    city_country = {f.subject: f.object for f in world.facts if f.relation == "located_in"}
    for f in world.facts:
        if f.relation == "capital":
            assert city_country[f.object] == f.subject  # a capital lies in its own country
    born = {f.subject: city_country[f.object] for f in world.facts if f.relation == "born_in"}
    citizen = {f.subject: f.object for f in world.facts if f.relation == "citizen_of"}
    same = sum(born[p] == citizen[p] for p in people) / len(people)
    assert 0.7 < same <= 1.0


def test_names_are_unique_and_made_of_letters() -> None:
    world = build_world(300, seed=0)
    names = [e.name for e in world.entities]
    assert len(set(names)) == len(names)
    assert all(part.isalpha() and part[0].isupper() for n in names for part in n.split())


def test_every_relation_has_several_templates_of_each_form() -> None:
    for relation in RELATIONS:
        templates = relation.templates
        assert len(templates.cloze) >= 3, relation.id
        assert len(templates.question) >= 2, relation.id
        assert all(t.endswith("?") for t in templates.question)
        assert not any(t.endswith("{}") for t in templates.cloze)  # the object comes last
        assert relation.functional
    reverse = {r.id for r in RELATIONS if r.templates.of(TemplateForm.REVERSE)}
    assert {"born_in", "capital", "founded_by", "works_for"} <= reverse
    inner = {r.id for r in RELATIONS if noun_phrase(r) is not None}
    assert inner == set(RELATION_KINDS)  # every relation can be an inner hop


def test_bad_size_is_refused() -> None:
    for bad in (0, -1, True, "10"):
        with pytest.raises(ValueError, match="n_people"):
            build_world(bad)


def _approve(store: GraphStore, *ops: Operation) -> str:
    cs = curation.create_change_set(store, "alice", "curation", list(ops))
    curation.propose(store, cs.id, who="alice")
    return curation.approve(store, cs.id, reviewer="rita").id


def test_planner_derives_an_edit_and_multi_hop_probes(sqlite_store: GraphStore) -> None:
    import_synthetic(sqlite_store, n_people=50, seed=2)
    person = sqlite_store.list_entities(kind="person")[0]
    (born,) = [f for f in sqlite_store.facts_about(person.id) if f.relation == "born_in"]
    other_city = next(c.id for c in sqlite_store.list_entities(kind="city") if c.id != born.object)
    op = Operation(
        "replace_object",
        {
            "subject": person.id,
            "relation": "born_in",
            "object": born.object,
            "new_object": other_city,
        },
    )
    result = plan(sqlite_store, [_approve(sqlite_store, op)])
    (batch,) = result.batches
    (item,) = batch.requests
    request = item.request
    assert request.subject == person.name and request.prompt == "{} was born in"
    assert request.target_new == sqlite_store.get_entity(other_city).name
    kinds = Counter(p.kind for p in item.probes)
    for kind in (ProbeKind.REWRITE, ProbeKind.PARAPHRASE, ProbeKind.SAME_SUBJECT):
        assert kinds[kind] > 0, kind
    hops = {p.meta["path"] for p in item.probes if p.kind == ProbeKind.MULTI_HOP}
    assert {"born_in/located_in", "born_in/located_in/capital"} <= hops
    capital = [
        p
        for p in item.probes
        if p.kind == ProbeKind.MULTI_HOP and p.meta["path"] == "born_in/located_in/capital"
    ]
    assert capital[0].prompt.startswith(
        f"The capital of the country of the birthplace of {person.name}"
    )
