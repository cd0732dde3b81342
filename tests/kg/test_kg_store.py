"""SqlGraphStore on SQLite and (marked `service`) PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from kg.errors import DuplicateError, NotFoundError, ValidationError
from kg.store.sql import SqlGraphStore
from kg.types import Concept, Entity, Fact, FactStatus, Relation


def test_add_fact_returns_id_and_meta(seeded: SqlGraphStore) -> None:
    fact = seeded.add_fact(
        Fact("name:spike_hughes", "P19", "Q935334", source="s", meta={"q": "Where?"})
    )
    assert fact.id is not None
    assert seeded.get_fact(fact.id).meta == {"q": "Where?"}


def test_find_entities_by_name_or_alias(seeded: SqlGraphStore) -> None:
    assert [e.id for e in seeded.find_entities("london")] == ["Q84"]
    assert [e.id for e in seeded.find_entities("  PHILLY ")] == ["Q935334"]
    assert seeded.find_entities("Paris") == []
    updated = seeded.add_alias("Q84", "The Smoke", who="alice", why="nickname")
    assert updated.aliases == ("LDN", "Londinium", "The Smoke")
    assert [e.id for e in seeded.find_entities("the smoke")] == ["Q84"]
    with pytest.raises(DuplicateError):
        seeded.add_alias("Q84", "LDN")


def test_duplicates_are_refused(seeded: SqlGraphStore, birth: Relation) -> None:
    with pytest.raises(DuplicateError, match="Q84"):
        seeded.add_entity(Entity("Q84", "London again"))
    with pytest.raises(DuplicateError):
        seeded.add_relation(birth)
    with pytest.raises(DuplicateError, match="already exists"):
        seeded.add_fact(Fact("name:spike_hughes", "P19", "Q84"))
    assert seeded.count_facts() == 2


def test_retract_then_readd(seeded: SqlGraphStore) -> None:
    retracted = seeded.retract_fact("name:spike_hughes", "P19", "Q84", who="bob", why="wrong")
    assert retracted.status is FactStatus.RETRACTED and retracted.version == 2
    assert seeded.facts_about("name:spike_hughes") == []
    assert len(seeded.facts_about("name:spike_hughes", status=None)) == 1
    seeded.add_fact(Fact("name:spike_hughes", "P19", "Q84"))  # allowed again once retracted
    assert seeded.count_facts(status="current") == 2
    assert seeded.count_facts(status="retracted") == 1
    with pytest.raises(NotFoundError, match="current fact"):
        seeded.retract_fact("name:max_mosley", "P19", "Q935334")


def test_bulk_add_in_batches_and_skip_duplicates(store: SqlGraphStore, birth: Relation) -> None:
    store.add_relation(birth)
    people = [Entity(f"p{i}", f"Person {i}") for i in range(50)]
    store.add_entities([Entity("Q84", "London"), *people], batch=7)
    facts = [Fact(p.id, "P19", "Q84", source="bulk") for p in people]
    assert store.add_facts(facts, batch=7) == 50
    assert store.count_facts(source="bulk") == 50
    assert store.add_facts(facts[:10], batch=3, skip_duplicates=True) == 0
    with pytest.raises(DuplicateError):
        store.add_facts([Fact("p0", "P19", "Q84")])
    assert store.count_facts_by_source() == {"bulk": 50}
    with pytest.raises(DuplicateError):  # the same triple twice in one call
        store.add_facts([Fact("Q84", "P19", "p1"), Fact("Q84", "P19", "p1")])
    assert store.count_facts() == 50  # and nothing of that call was written


def test_unknown_ids_raise_not_found_naming_the_id(seeded: SqlGraphStore) -> None:
    with pytest.raises(NotFoundError, match="P999"):
        seeded.add_fact(Fact("name:spike_hughes", "P999", "Q84"))
    with pytest.raises(NotFoundError, match="Q404"):
        seeded.add_facts([Fact("name:spike_hughes", "P19", "Q404")])
    with pytest.raises(NotFoundError, match="Q404"):
        seeded.get_entity("Q404")
    with pytest.raises(NotFoundError, match="P404"):
        seeded.get_relation("P404")
    with pytest.raises(NotFoundError, match="Q404"):
        seeded.facts_about("Q404")
    with pytest.raises(NotFoundError, match="Q404"):
        seeded.facts_with_object("Q404")
    with pytest.raises(NotFoundError, match="c404"):
        seeded.get_concept("c404")
    assert seeded.count_facts() == 2


def test_bad_input_is_rejected_before_the_store(seeded: SqlGraphStore) -> None:
    with pytest.raises(ValidationError):
        seeded.add_entity(Entity("Q1", ""))
    with pytest.raises(ValidationError):
        seeded.add_fact(Fact("", "P19", "Q84"))
    with pytest.raises(ValidationError, match="who"):
        seeded.add_entity(Entity("Q1", "x"), who="  ")
    with pytest.raises(ValidationError):
        seeded.add_entities(["not an entity"])  # type: ignore[list-item]
    assert seeded.count_entities() == 4


def test_injection_looking_names_are_stored_verbatim(store: SqlGraphStore, birth: Relation) -> None:
    evil = "x'); DROP TABLE facts;--"
    store.add_relation(birth)
    store.add_entities([Entity("evil'id\"", evil, (f"{evil} 2",)), Entity("Q84", "London")])
    store.add_fact(Fact("evil'id\"", "P19", "Q84", source=evil, meta={"note": evil}))
    assert store.get_entity("evil'id\"").name == evil
    assert [e.id for e in store.find_entities(evil)] == ["evil'id\""]
    assert store.facts_about("evil'id\"")[0].source == evil
    assert "facts" in inspect(store.engine).get_table_names(schema=store.schema)
    assert store.count_facts() == 1


def test_concepts(store: SqlGraphStore) -> None:
    store.add_concept(Concept("c1", "Harry Potter", ("HP",), redirect_to="Q1"))
    assert store.get_concept("c1") == Concept("c1", "Harry Potter", ("HP",), redirect_to="Q1")
    assert store.count_concepts() == 1 and len(store.list_concepts()) == 1
    with pytest.raises(DuplicateError):
        store.add_concept(Concept("c1", "Other"))


def test_change_log_records_who_when_why(store: SqlGraphStore, birth: Relation) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    store.add_relation(birth, who="alice", why="schema")
    store.add_entities([Entity("a", "A"), Entity("b", "B")], who="alice", why="seed")
    store.add_fact(Fact("a", "P19", "b"), who="bob", why="curation #12")
    store.retract_fact("a", "P19", "b", who="carol", why="source was wrong")
    store.log("dave", "edited the model", "model_edit", {"job": 7})
    entries = store.change_log()
    assert [(e.who, e.why, e.action) for e in entries] == [
        ("alice", "schema", "add_relations"),
        ("alice", "seed", "add_entities"),
        ("bob", "curation #12", "add_fact"),
        ("carol", "source was wrong", "retract_fact"),
        ("dave", "edited the model", "model_edit"),
    ]
    after = datetime.now(UTC) + timedelta(seconds=5)
    assert all(before <= e.when <= after and e.when.tzinfo is not None for e in entries)
    assert entries[2].payload["triple"] == ["a", "P19", "b"]
    assert [e.action for e in store.change_log(action="add_fact")] == ["add_fact"]
    assert len(store.change_log(limit=2)) == 2


def test_failed_change_leaves_no_log_row(seeded: SqlGraphStore) -> None:
    rows = len(seeded.change_log())
    with pytest.raises(NotFoundError):
        seeded.add_facts([Fact("name:spike_hughes", "P19", "Q935334"), Fact("x", "P19", "Q84")])
    assert len(seeded.change_log()) == rows
    assert seeded.count_facts() == 2


def test_transaction_rolls_back_every_step(seeded: SqlGraphStore) -> None:
    with pytest.raises(DuplicateError), seeded.transaction():
        seeded.add_entity(Entity("Q90", "Paris"))
        seeded.add_fact(Fact("name:spike_hughes", "P19", "Q90"))
        seeded.add_fact(Fact("name:spike_hughes", "P19", "Q84"))  # duplicate: all rolls back
    assert seeded.count_entities() == 4
    assert seeded.facts_about("name:spike_hughes", status=None)[-1].object == "Q84"
    assert seeded.count_facts() == 2


def test_counts_by_subject(seeded: SqlGraphStore) -> None:
    seeded.add_fact(Fact("name:spike_hughes", "P19", "Q935334"))
    assert seeded.count_facts_by_subject() == [("name:spike_hughes", 2), ("name:max_mosley", 1)]


def test_indexes_exist(store: SqlGraphStore) -> None:
    inspector = inspect(store.engine)
    tables = set(inspector.get_table_names(schema=store.schema))
    assert {"entities", "entity_aliases", "relations", "facts", "concepts", "change_log"} <= tables
    indexes = {ix["name"]: ix for ix in inspector.get_indexes("facts", schema=store.schema)}
    assert indexes["ix_facts_subject_relation"]["column_names"] == ["subject_id", "relation_id"]
    assert indexes["ix_facts_object"]["column_names"] == ["object_id"]
    unique = indexes["uq_facts_current_triple"]
    assert unique["unique"] and unique["column_names"] == ["subject_id", "relation_id", "object_id"]


def test_sqlite_default_file_and_pragmas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    graph = SqlGraphStore()
    try:
        assert (tmp_path / "var" / "kg.sqlite").exists()
        with graph.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
    finally:
        graph.close()


def test_sqlite_in_memory_store_works(seed_graph: Callable[[SqlGraphStore], None]) -> None:
    graph = SqlGraphStore("sqlite://")
    seed_graph(graph)
    assert graph.count_facts() == 2


def test_reopen_sees_committed_data(
    tmp_path: Path, seed_graph: Callable[[SqlGraphStore], None]
) -> None:
    url = f"sqlite:///{tmp_path / 'kg.sqlite'}"
    first = SqlGraphStore(url)
    seed_graph(first)
    first.close()
    second = SqlGraphStore(url)
    assert second.count_facts() == 2 and len(second.change_log()) == 3
    second.close()


def test_relation_templates_round_trip_as_json(store: SqlGraphStore) -> None:
    relation = Relation("P1", "odd ✓", {"cloze": ["«{}» est né à"], "question": ["Où {} ?"]})
    store.add_relation(relation)
    assert store.list_relations() == [relation]
