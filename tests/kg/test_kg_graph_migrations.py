"""Alembic migrations of the SQL graph tables: a migrated database equals the declared tables
(`kg.store.sql_rows`) on SQLite and on PostgreSQL (in a schema of its own), downgrades cleanly,
shares a database with the metadata migrations, and adopts a database made before them."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect, text

from kg.store import upgrade_store
from kg.store.migrate import VERSION_TABLE, downgrade_graph_schema, head_revision
from kg.store.sql import SqlGraphStore
from kg.store.sql_rows import Base
from kg.types import Entity, Fact, Relation

GRAPH_TABLES = {t.name for t in Base.metadata.sorted_tables}


def _diff(url: str, schema: str | None) -> list:
    """Return Alembic's differences between a live graph schema and the declared tables."""
    # index names as the store makes them, without the schema in `column_0_label`
    declared = MetaData(naming_convention={"ix": "ix_%(table_name)s_%(column_0_name)s"})
    for table in Base.metadata.sorted_tables:
        table.to_metadata(declared, schema=schema)

    def include(name, kind, parent_names) -> bool:
        """Compare the graph's own schema and tables only."""
        if kind == "schema":
            return name == schema
        return kind != "table" or name != VERSION_TABLE

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            opts = {"compare_type": True, "include_schemas": schema is not None,
                    "include_name": include}  # fmt: skip
            return compare_metadata(MigrationContext.configure(conn, opts=opts), declared)
    finally:
        engine.dispose()


def _tables(store: SqlGraphStore) -> set[str]:
    return set(inspect(store.engine).get_table_names(schema=store.schema))


def _check(url: str, schema: str | None = None) -> None:
    store = SqlGraphStore(url, schema=schema)
    try:
        assert _tables(store) == GRAPH_TABLES | {VERSION_TABLE}
        assert _diff(url, schema) == []
        assert store.graph_version() == 0
        downgrade_graph_schema(store.engine, "base", schema)
        assert _tables(store) == {VERSION_TABLE}
        store.create_schema()
        assert _diff(url, schema) == []
        versions = f"{schema}.{VERSION_TABLE}" if schema else VERSION_TABLE
        with store.engine.connect() as conn:
            revision = conn.execute(text(f"SELECT version_num FROM {versions}")).scalar()
        assert revision == head_revision()
    finally:
        store.drop_schema()
        store.close()


def test_sqlite_schema_matches_the_rows(tmp_path):
    _check(f"sqlite:///{tmp_path / 'kg.sqlite'}")


@pytest.mark.service
def test_postgresql_schema_matches_the_rows(pg_url):
    _check(pg_url, schema=f"kg_mig_{uuid.uuid4().hex[:10]}")


def test_graph_and_metadata_migrations_share_one_database(tmp_path):
    from workers.db import Database

    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    meta = Database(url)
    assert upgrade_store(url).startswith("sqlite:///")
    meta.downgrade("base")  # the metadata's own version table and tables only
    tables = set(inspect(meta.engine).get_table_names())
    assert tables == GRAPH_TABLES | {VERSION_TABLE, "alembic_version"}
    assert _diff(url, None) == []
    meta.dispose()


def test_a_database_made_before_migrations_is_adopted(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    store = SqlGraphStore(url)
    store.add_relation(Relation("p", "p", {"cloze": ["{} p"]}))
    store.add_entities([Entity("a", "A"), Entity("b", "B")])
    store.add_fact(Fact("a", "p", "b"))
    with store.engine.begin() as conn:  # the shape of an early kgedit database
        conn.execute(text("DROP INDEX ix_facts_current_subject_sample"))
        conn.execute(text("DROP INDEX ix_facts_current_object_sample"))
        conn.execute(text("ALTER TABLE facts DROP COLUMN sample_key"))
        conn.execute(text(f"DROP TABLE {VERSION_TABLE}"))
    store.close()
    again = SqlGraphStore(url)
    assert _diff(url, None) == []
    assert again.incident_facts(["a"], limit_per_entity=1)["a"][0].triple == ("a", "p", "b")
    with again.engine.connect() as conn:
        missing = conn.execute(text("SELECT count(*) FROM facts WHERE sample_key IS NULL"))
        assert missing.scalar() == 0
    again.close()
