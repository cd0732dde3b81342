"""The GraphStore contract, run on SQLite, PostgreSQL, FalkorDB over Bolt and (if set) Neo4j."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from conftest import backend_of, birth_relation, seed, skip_on_falkordb

from kg.errors import DuplicateError, NotFoundError, ValidationError
from kg.store import GraphStore, RelationFilter, open_store
from kg.store.base import sample_key
from kg.types import ChangeSet, Concept, Entity, Fact, FactStatus, Operation, Relation

INJECTION = "x'}) DETACH DELETE n //"
NASTY = [
    INJECTION,
    'q"uote\\back \\b %27 %25 100%',
    "'; DROP TABLE facts; --",
    "MATCH (n) DETACH DELETE n",
    "naïve 😀 \u2028 line",
]


def _chain_graph(graph: GraphStore) -> None:
    """a -p-> b -p-> c -q-> d, a -q-> c, hub h with 12 out-facts of relation p."""
    ids = ["a", "b", "c", "d", "h", *[f"leaf{i:02d}" for i in range(12)]]
    graph.add_entities([Entity(i, i.upper()) for i in ids])
    graph.add_relations([_rel("p"), _rel("q")])
    facts = [
        Fact("a", "p", "b"),
        Fact("b", "p", "c"),
        Fact("c", "q", "d"),
        Fact("a", "q", "c"),
        *[Fact("h", "p", f"leaf{i:02d}") for i in range(12)],
        Fact("h", "q", "a"),
    ]
    graph.add_facts(facts, batch=5)


def _rel(rid: str) -> Relation:
    return Relation(rid, f"rel {rid}", {"cloze": ("{} relates to",)})


def test_store_satisfies_protocol(graph_store: GraphStore) -> None:
    assert isinstance(graph_store, GraphStore)


def test_round_trip(graph_store: GraphStore) -> None:
    seed(graph_store)
    assert graph_store.count_entities() == 4
    assert graph_store.count_relations() == 1
    assert graph_store.count_facts() == 2
    assert graph_store.get_entity("Q84") == Entity("Q84", "London", ("LDN", "Londinium"))
    assert graph_store.get_entity("name:spike_hughes").kind == "person"
    assert graph_store.get_relation("P19") == birth_relation()
    assert [e.id for e in graph_store.list_entities(limit=2, offset=1)] == [
        "Q935334",
        "name:max_mosley",
    ]
    assert [e.id for e in graph_store.list_entities(kind="person")] == [
        "name:max_mosley",
        "name:spike_hughes",
    ]
    facts = graph_store.facts_about("name:spike_hughes")
    assert [(f.triple, f.status, f.source, f.version) for f in facts] == [
        (("name:spike_hughes", "P19", "Q84"), FactStatus.CURRENT, "test", 1)
    ]
    assert facts[0].id is not None and graph_store.get_fact(facts[0].id) == facts[0]
    assert graph_store.facts_about("name:spike_hughes", "P19") == facts
    assert {f.subject for f in graph_store.facts_with_object("Q84")} == {
        "name:spike_hughes",
        "name:max_mosley",
    }
    assert len(graph_store.facts_of_relation("P19", limit=1)) == 1
    assert graph_store.entity_names(["Q84", "nope"]) == {"Q84": "London"}
    assert graph_store.count_facts_by_subject() == [
        ("name:max_mosley", 1),
        ("name:spike_hughes", 1),
    ]
    assert graph_store.count_facts(source="test") == 2


def test_fact_meta_and_ids(graph_store: GraphStore) -> None:
    seed(graph_store)
    fact = graph_store.add_fact(
        Fact("name:spike_hughes", "P19", "Q935334", source="s", meta={"q": "Where?", "n": [1, 2]})
    )
    assert fact.id is not None
    assert graph_store.get_fact(fact.id).meta == {"q": "Where?", "n": [1, 2]}
    ids = [f.id for f in graph_store.list_facts()]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert [f.id for f in graph_store.list_facts(limit=2, offset=1)] == ids[1:3]
    assert [f.object for f in graph_store.list_facts(source="s")] == ["Q935334"]


def test_search_entities_by_partial_names(graph_store: GraphStore) -> None:
    seed(graph_store)
    graph_store.add_entities(
        [
            Entity("name:imogen_stallard", "Imogen Stallard", ("Immy S",), kind="person"),
            Entity("name:stall", "Stall", kind="thing"),
            Entity("pct", "100% Lond_n"),
        ]
    )

    def ids(text: str, limit: int = 50) -> list[str]:
        return [e.id for e in graph_store.search_entities(text, limit)]

    assert ids("Imog") == ["name:imogen_stallard"]
    assert ids("stallard") == ["name:imogen_stallard"]
    assert ids("  imogen   STALL") == ["name:imogen_stallard"]
    assert ids("imm") == ["name:imogen_stallard"]  # an alias
    # the whole name first, then names starting with the text, then word prefixes
    assert ids("stall") == ["name:stall", "name:imogen_stallard"]
    assert ids("lond") == ["Q84", "pct"]
    assert ids("londinium") == ["Q84"]
    assert ids("ondon") == [] and ids("mogen") == []
    assert ids("lond", limit=1) == ["Q84"]
    # LIKE wildcards are matched literally
    assert ids("100%") == ["pct"] and ids("lond_") == ["pct"] and ids("%") == []
    assert ids("lon%") == [] and ids("l_nd") == []
    assert ids("   ") == []
    for text in NASTY:
        assert ids(text) == []
    with pytest.raises(ValidationError):
        graph_store.search_entities("x", 0)


def test_find_entities_and_aliases(graph_store: GraphStore) -> None:
    seed(graph_store)
    assert [e.id for e in graph_store.find_entities("london")] == ["Q84"]
    assert [e.id for e in graph_store.find_entities("  PHILLY ")] == ["Q935334"]
    assert graph_store.find_entities("Paris") == []
    updated = graph_store.add_alias("Q84", "The Smoke", who="alice", why="nickname")
    assert updated.aliases == ("LDN", "Londinium", "The Smoke")
    assert graph_store.get_entity("Q84").aliases == ("LDN", "Londinium", "The Smoke")
    assert [e.id for e in graph_store.find_entities("the smoke")] == ["Q84"]
    with pytest.raises(DuplicateError):
        graph_store.add_alias("Q84", "LDN")


def test_duplicates_are_refused(graph_store: GraphStore) -> None:
    seed(graph_store)
    with pytest.raises(DuplicateError, match="Q84"):
        graph_store.add_entity(Entity("Q84", "London again"))
    with pytest.raises(DuplicateError):
        graph_store.add_relation(birth_relation())
    with pytest.raises(DuplicateError, match="already exists"):
        graph_store.add_fact(Fact("name:spike_hughes", "P19", "Q84"))
    with pytest.raises(DuplicateError):
        graph_store.add_concept(Concept("c1", "x")) and graph_store.add_concept(Concept("c1", "y"))
    assert graph_store.count_facts() == 2
    assert graph_store.count_entities() == 4


def test_retract_then_readd(graph_store: GraphStore) -> None:
    seed(graph_store)
    retracted = graph_store.retract_fact("name:spike_hughes", "P19", "Q84", who="bob", why="wrong")
    assert retracted.status is FactStatus.RETRACTED and retracted.version == 2
    assert graph_store.facts_about("name:spike_hughes") == []
    assert len(graph_store.facts_about("name:spike_hughes", status=None)) == 1
    graph_store.add_fact(Fact("name:spike_hughes", "P19", "Q84"))
    assert graph_store.count_facts(status="current") == 2
    assert graph_store.count_facts(status="retracted") == 1
    with pytest.raises(NotFoundError, match="current fact"):
        graph_store.retract_fact("name:max_mosley", "P19", "Q935334")


def test_bulk_import_batches_and_skips_duplicates(graph_store: GraphStore) -> None:
    graph_store.add_relation(birth_relation())
    entities = [Entity(f"e{i:03d}", f"Entity {i}", (f"alias {i}",)) for i in range(40)]
    assert graph_store.add_entities(entities, batch=9) == 40
    assert graph_store.add_entities(entities[:5], skip_existing=True) == 0
    facts = [Fact(f"e{i:03d}", "P19", f"e{(i + 1) % 40:03d}", source="bulk") for i in range(40)]
    assert graph_store.add_facts(facts, batch=11) == 40
    again = [*facts[:10], Fact("e000", "P19", "e005")]
    assert graph_store.add_facts(again, skip_duplicates=True) == 1
    assert graph_store.count_facts() == 41
    with pytest.raises(DuplicateError):
        graph_store.add_facts([Fact("e001", "P19", "e009"), Fact("e001", "P19", "e009")])
    assert graph_store.count_facts() == 41
    assert graph_store.count_facts_by_source() == {"bulk": 40, "": 1}


def test_unknown_ids_raise_not_found(graph_store: GraphStore) -> None:
    seed(graph_store)
    for call, ident in [
        (lambda: graph_store.get_entity("nope"), "nope"),
        (lambda: graph_store.get_relation("P404"), "P404"),
        (lambda: graph_store.get_fact(999_999), "999999"),
        (lambda: graph_store.get_concept("c404"), "c404"),
        (lambda: graph_store.facts_about("ghost"), "ghost"),
        (lambda: graph_store.facts_with_object("ghost"), "ghost"),
        (lambda: graph_store.facts_of_relation("P404"), "P404"),
        (lambda: graph_store.add_fact(Fact("Q84", "P19", "ghost")), "ghost"),
        (lambda: graph_store.add_fact(Fact("Q84", "P404", "Q84")), "P404"),
        (lambda: graph_store.add_alias("ghost", "x"), "ghost"),
        (lambda: graph_store.mark_forget("c404", None), "c404"),
        (lambda: graph_store.get_change_set("cs404"), "cs404"),
    ]:
        with pytest.raises(NotFoundError, match=ident):
            call()
    assert graph_store.count_facts() == 2


def test_bad_input_is_rejected_before_any_write(graph_store: GraphStore) -> None:
    seed(graph_store)
    before = len(graph_store.change_log())
    with pytest.raises(ValidationError):
        graph_store.add_entities(["not an entity"])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="why"):
        graph_store.add_entity(Entity("z", "Z"), who="alice", why="  ")
    with pytest.raises(ValidationError):
        graph_store.add_alias("Q84", "bad\x00alias")
    with pytest.raises(NotFoundError):
        graph_store.add_facts([Fact("Q84", "P19", "Q84"), Fact("Q84", "P19", "ghost")])
    assert graph_store.count_entities() == 4 and graph_store.count_facts() == 2
    assert len(graph_store.change_log()) == before


def test_injection_names_round_trip_as_plain_data(graph_store: GraphStore) -> None:
    graph_store.add_relation(Relation(INJECTION, INJECTION, {"cloze": ("{} is " + NASTY[1],)}))
    entities = [Entity(text, text, (text + " alias",)) for text in NASTY]
    graph_store.add_entities([Entity("anchor", "Anchor"), *entities])
    facts = [Fact("anchor", INJECTION, text, source=text, meta={"k": text}) for text in NASTY]
    graph_store.add_facts(facts, who=INJECTION, why=NASTY[1])
    assert graph_store.count_entities() == len(NASTY) + 1
    assert graph_store.count_facts() == len(NASTY)
    for text in NASTY:
        assert graph_store.get_entity(text) == Entity(text, text, (text + " alias",))
        assert [e.id for e in graph_store.find_entities(text + " alias")] == [text]
        (fact,) = graph_store.facts_with_object(text)
        assert fact.source == text and fact.meta == {"k": text} and fact.relation == INJECTION
    assert graph_store.get_relation(INJECTION).templates.cloze == ("{} is " + NASTY[1],)
    entry = graph_store.change_log(action="add_facts")[-1]
    assert entry.who == INJECTION and entry.why == NASTY[1]
    graph_store.retract_fact("anchor", INJECTION, INJECTION, who="x", why=INJECTION)
    assert graph_store.count_facts(status="current") == len(NASTY) - 1
    assert graph_store.count_entities() == len(NASTY) + 1


def test_change_log_records_who_when_why(graph_store: GraphStore) -> None:
    start = datetime.now(UTC)
    graph_store.add_relation(birth_relation(), who="alice", why="set up")
    graph_store.add_entities([Entity("a", "A"), Entity("b", "B")], who="alice", why="people")
    graph_store.add_fact(Fact("a", "P19", "b"), who="bob", why="source: census")
    graph_store.log("carol", "model edited", "model_edit", {"delta": "d1"})
    log = graph_store.change_log()
    assert [e.action for e in log] == ["add_relations", "add_entities", "add_fact", "model_edit"]
    assert [e.who for e in log] == ["alice", "alice", "bob", "carol"]
    assert log[2].why == "source: census" and log[2].payload["triple"] == ["a", "P19", "b"]
    assert all(e.when >= start.replace(microsecond=0) for e in log)
    assert [e.action for e in graph_store.change_log(action="model_edit")] == ["model_edit"]
    assert len(graph_store.change_log(limit=2)) == 2


def test_transaction_rolls_back_every_step(graph_store: GraphStore) -> None:
    skip_on_falkordb(graph_store, "rollback is a no-op: writes before an error stay")
    seed(graph_store)
    with pytest.raises(DuplicateError), graph_store.transaction():
        graph_store.add_entity(Entity("new", "New"))
        graph_store.add_fact(Fact("new", "P19", "Q84"))
        graph_store.add_fact(Fact("name:spike_hughes", "P19", "Q84"))  # duplicate: fails
    assert graph_store.count_entities() == 4
    assert graph_store.count_facts() == 2
    with pytest.raises(NotFoundError):
        graph_store.get_entity("new")


def test_transaction_commits_all_steps(graph_store: GraphStore) -> None:
    seed(graph_store)
    with graph_store.transaction():
        graph_store.add_entity(Entity("new", "New"))
        graph_store.add_fact(Fact("new", "P19", "Q84"))
        assert graph_store.facts_about("new")[0].object == "Q84"  # reads see the open tx
    assert graph_store.count_facts() == 3


def test_incident_facts_order_filter_and_cap(graph_store: GraphStore) -> None:
    _chain_graph(graph_store)
    out = graph_store.incident_facts(["h"], direction="out")["h"]
    keys = [sample_key(*f.triple) for f in out]
    assert len(out) == 13 and keys == sorted(keys)
    capped = graph_store.incident_facts(["h", "c"], limit_per_entity=4)
    assert capped["h"] == out[:4]
    assert {f.triple for f in capped["c"]} == {("b", "p", "c"), ("c", "q", "d"), ("a", "q", "c")}
    only_q = graph_store.incident_facts(["h"], relations=RelationFilter.of(allow=["q"]))
    assert [f.triple for f in only_q["h"]] == [("h", "q", "a")]
    no_p = graph_store.incident_facts(["a"], relations=RelationFilter.of(deny=["p"]))
    assert {f.triple for f in no_p["a"]} == {("a", "q", "c"), ("h", "q", "a")}
    into = graph_store.incident_facts(["c"], direction="in")["c"]
    assert {f.triple for f in into} == {("b", "p", "c"), ("a", "q", "c")}
    assert graph_store.incident_facts(["ghost"]) == {"ghost": []}
    with pytest.raises(ValidationError):
        graph_store.incident_facts(["a"], direction="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        graph_store.incident_facts(["a"], limit_per_entity=0)


def test_neighbourhood_and_paths(graph_store: GraphStore) -> None:
    _chain_graph(graph_store)
    graph_store.retract_fact("c", "q", "d")
    one = {f.triple for f in graph_store.neighbourhood(["b"], hops=1)}
    assert one == {("a", "p", "b"), ("b", "p", "c")}
    two = {f.triple for f in graph_store.neighbourhood(["b"], hops=2)}
    assert two == one | {("a", "q", "c"), ("h", "q", "a")}
    capped = graph_store.neighbourhood(["h"], hops=1, limit_per_entity=3)
    assert len(capped) == 3
    paths = graph_store.paths("a", "c", max_hops=3)
    assert [[f.triple for f in p] for p in paths] == [
        [("a", "q", "c")],
        [("a", "p", "b"), ("b", "p", "c")],
    ]
    assert graph_store.paths("a", "d") == []  # the only link to d is retracted
    assert len(graph_store.paths("h", "c", max_hops=3, limit=1)) == 1
    with pytest.raises(ValidationError):
        graph_store.neighbourhood(["a"], hops=0)


def test_current_facts_of_slots(graph_store: GraphStore) -> None:
    _chain_graph(graph_store)
    slots = graph_store.current_facts([("a", "p"), ("a", "q"), ("d", "p")])
    assert [f.object for f in slots[("a", "p")]] == ["b"]
    assert [f.object for f in slots[("a", "q")]] == ["c"]
    assert slots[("d", "p")] == []


def test_graph_version_and_change_sets(graph_store: GraphStore) -> None:
    assert graph_store.graph_version() == 0
    with graph_store.transaction():
        assert graph_store.bump_graph_version() == 1
    assert graph_store.graph_version() == 1
    created = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    ops = (Operation("add_fact", {"subject": "a", "relation": "p", "object": INJECTION}),)
    cs = ChangeSet("cs1", "alice", "because " + INJECTION, created, ops, base=({"k": [1]},))
    graph_store.save_change_set(cs, create=True)
    graph_store.save_change_set(ChangeSet("cs2", "bob", "other", created), create=True)
    with pytest.raises(DuplicateError):
        graph_store.save_change_set(cs, create=True)
    got = graph_store.get_change_set("cs1")
    assert got == cs and got.base == ({"k": [1]},) and got.operations == ops
    approved = ChangeSet(
        "cs1", "alice", cs.reason, created, ops, "approved", cs.base, 1, "carol", "ok"
    )
    graph_store.save_change_set(approved)
    assert graph_store.get_change_set("cs1").graph_version == 1
    assert [c.id for c in graph_store.list_change_sets()] == ["cs1", "cs2"]
    assert [c.id for c in graph_store.list_change_sets(state="draft")] == ["cs2"]
    with pytest.raises(NotFoundError):
        graph_store.save_change_set(ChangeSet("cs9", "x", "y", created))


def test_forget_marks(graph_store: GraphStore) -> None:
    graph_store.add_concept(Concept("c1", "Tolkien", ("JRRT",)), who="alice", why="curation")
    mark = graph_store.mark_forget("c1", "cs1", who="alice", why="GDPR request")
    assert mark.concept_id == "c1" and mark.change_set_id == "cs1" and mark.who == "alice"
    assert graph_store.forget_marks() == [mark]
    assert graph_store.forget_marks("other") == []
    assert graph_store.get_concept("c1").aliases == ("JRRT",)
    assert graph_store.count_concepts() == 1


def test_concept_redirect_override(graph_store: GraphStore) -> None:
    seed(graph_store)
    concept = Concept("c1", "London", ("LDN",), entities=("Q84",))
    graph_store.add_concept(concept, who="alice", why="curation")
    assert graph_store.get_concept("c1") == concept
    got = graph_store.set_concept_redirect("c1", "Q935334", who="bob", why="better anchor")
    assert got.redirect_to == "Q935334" and got.entities == ("Q84",)
    assert graph_store.get_concept("c1") == got
    entry = graph_store.change_log(action="set_concept_redirect")[-1]
    assert entry.action == "set_concept_redirect" and entry.who == "bob"
    assert entry.payload == {"id": "c1", "redirect_to": "Q935334", "before": None}
    assert graph_store.set_concept_redirect("c1", None, who="bob", why="clear").redirect_to is None
    assert graph_store.get_concept("c1").redirect_to is None
    for call, ident in [
        (lambda: graph_store.set_concept_redirect("c404", "Q84"), "c404"),
        (lambda: graph_store.set_concept_redirect("c1", "ghost"), "ghost"),
    ]:
        with pytest.raises(NotFoundError, match=ident):
            call()
    assert graph_store.get_concept("c1").redirect_to is None


def test_vector_cache_round_trip(graph_store: GraphStore) -> None:
    rng = np.random.default_rng(0)
    vectors = {
        f"text {i} {INJECTION}": rng.standard_normal(384).astype(np.float32) for i in range(3)
    }
    assert graph_store.put_vectors(vectors, model="m1") == 3
    got = graph_store.get_vectors([*vectors, "missing"], model="m1")
    assert set(got) == set(vectors)
    for key, vector in vectors.items():
        np.testing.assert_array_equal(got[key], vector)
    assert graph_store.get_vectors(vectors, model="m2") == {}
    graph_store.put_vectors({"text 0 " + INJECTION: np.zeros(384, np.float32)}, model="m1")
    assert not graph_store.get_vectors(["text 0 " + INJECTION], model="m1")[
        "text 0 " + INJECTION
    ].any()


def test_backend_specific_schema(graph_store: GraphStore) -> None:
    backend = backend_of(graph_store)
    if backend in ("sqlite", "postgresql"):
        pytest.skip("SQL schema is covered by test_kg_store.py::test_indexes_exist")
    graph_store.count_entities()  # first use creates the schema
    if backend == "falkordb":
        indexes = graph_store._run("CALL db.indexes()")
        indexed = {(row["label"], prop) for row in indexes for prop in row["properties"]}
        assert {("Entity", "id"), ("Entity", "name_key"), ("FACT", "id"), ("Alias", "key")} <= (
            indexed
        )
        pytest.skip("FalkorDB limitation: CREATE CONSTRAINT is unsupported (indexes checked)")
    names = {row["name"] for row in graph_store._run("SHOW CONSTRAINTS YIELD name")}
    assert {"kg_entity_id", "kg_relation_id", "kg_concept_id"} <= names


def test_open_store_picks_backend(tmp_path) -> None:
    graph = open_store(f"sqlite:///{tmp_path / 'x.sqlite'}")
    assert type(graph).__name__ == "SqlGraphStore"
    graph.close()
    for bad in ("mysql://x/y", "nonsense", "postgres://u@h/db"):
        with pytest.raises(ValidationError):
            open_store(bad)
    with pytest.raises(ValidationError, match="unknown Neo4j URL options"):
        open_store("bolt://127.0.0.1:1?colour=red")


def test_bulk_import_into_an_empty_store(graph_store: GraphStore) -> None:
    entities = [Entity(f"e{i:02d}", f"E {i}", (f"alias {i}",)) for i in range(30)]
    facts = [Fact(f"e{i:02d}", "p", f"e{(i * 7) % 30:02d}", source="bulk") for i in range(30)]
    with pytest.raises(NotFoundError, match="ghost"):
        graph_store.bulk_import(entities, [_rel("p")], [*facts, Fact("e01", "p", "ghost")])
    if backend_of(graph_store) == "falkordb":
        graph_store.drop_all()  # no rollback on FalkorDB: the failed import left its batches
    with pytest.raises(DuplicateError, match="twice"):
        graph_store.bulk_import(entities, [_rel("p")], [facts[0], facts[0]])
    if backend_of(graph_store) == "falkordb":
        graph_store.drop_all()
    assert graph_store.count_facts() == 0 and graph_store.count_entities() == 0
    counts = graph_store.bulk_import(entities, [_rel("p"), _rel("q")], facts, batch=8)
    assert counts == {"entities": 30, "relations": 2, "facts": 30}
    assert graph_store.count_facts() == 30 and graph_store.get_entity("e03").aliases == ("alias 3",)
    assert [e.id for e in graph_store.find_entities("alias 7")] == ["e07"]
    assert len({f.id for f in graph_store.list_facts()}) == 30
    assert graph_store.change_log(action="bulk_import")[-1].payload["facts"] == 30
    with pytest.raises(ValidationError, match="empty"):
        graph_store.bulk_import([Entity("zz", "Z")], [], [])


def test_relation_equivalence_round_trips(graph_store: GraphStore) -> None:
    asked = Relation("ask_birth", "asked birthplace", {"cloze": ("{} came into the world in",)})
    graph_store.add_relations([birth_relation(), asked])
    declared = Relation(
        "P19b", "birthplace", {"cloze": ("{} was born at",)}, equivalent_to=("P19", "ask_birth")
    )
    graph_store.add_relation(declared)
    assert graph_store.get_relation("P19b").equivalent_to == ("P19", "ask_birth")
    assert graph_store.get_relation("P19").equivalent_to == ()
    listed = {r.id: r.equivalent_to for r in graph_store.list_relations()}
    assert listed == {"P19": (), "ask_birth": (), "P19b": ("P19", "ask_birth")}
