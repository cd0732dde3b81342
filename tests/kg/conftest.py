"""Fixtures of the kg tests: a store on a fresh SQLite file, and on PostgreSQL when it runs.

`falkor_server` (a private FalkorDB over Bolt) is shared by every package: see tests/conftest.py.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from service_checks import skip_or_fail
from sqlalchemy import create_engine, text

from kg.store.sql import SqlGraphStore
from kg.types import Entity, Fact, Relation, RelationTemplates

PG_URL = os.environ.get("KGEDIT_TEST_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")


def _pg_unavailable() -> str | None:
    """Return why PostgreSQL cannot be used, or None when it answers."""
    engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"PostgreSQL at {PG_URL} unreachable: {type(exc).__name__}: {exc}"
    finally:
        engine.dispose()
    return None


@pytest.fixture(scope="session")
def pg_url() -> str:
    """Return the PostgreSQL URL of the service tests, skipping (or failing under CI) if down."""
    reason = _pg_unavailable()
    if reason is not None:
        skip_or_fail(reason)
    return PG_URL


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlGraphStore]:
    """Return an empty store: SQLite in a temp file, or PostgreSQL in a throwaway schema."""
    if request.param == "sqlite":
        graph = SqlGraphStore(f"sqlite:///{tmp_path / 'kg.sqlite'}")
        yield graph
        graph.close()
        return
    url = request.getfixturevalue("pg_url")
    graph = SqlGraphStore(url, schema=f"kg_test_{uuid.uuid4().hex[:12]}")
    try:
        yield graph
    finally:
        graph.drop_schema()
        graph.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlGraphStore]:
    """Return an empty store on a temp SQLite file."""
    graph = SqlGraphStore(f"sqlite:///{tmp_path / 'kg.sqlite'}")
    yield graph
    graph.close()


def birth_relation() -> Relation:
    """Return a small place-of-birth relation with every template form."""
    return Relation(
        id="P19",
        label="place of birth",
        templates=RelationTemplates(
            cloze=("{} originates from", "{} was born in"),
            question=("Where was {} born?",),
            reverse=("{} is the birthplace of",),
        ),
        functional=True,
    )


def seed(graph: SqlGraphStore) -> None:
    """Fill a store with four entities, one relation and two facts."""
    graph.add_entities(
        [
            Entity("Q84", "London", ("LDN", "Londinium")),
            Entity("Q935334", "Philadelphia", ("Philly",)),
            Entity("name:spike_hughes", "Spike Hughes", kind="person"),
            Entity("name:max_mosley", "Max Mosley", kind="person"),
        ]
    )
    graph.add_relation(birth_relation())
    graph.add_facts(
        [
            Fact("name:spike_hughes", "P19", "Q84", source="test"),
            Fact("name:max_mosley", "P19", "Q84", source="test"),
        ]
    )


@pytest.fixture
def birth() -> Relation:
    """Return the place-of-birth relation of `seed`."""
    return birth_relation()


@pytest.fixture
def seed_graph() -> Callable[[SqlGraphStore], None]:
    """Return the `seed` function, for tests that build their own store."""
    return seed


@pytest.fixture
def seeded(store: SqlGraphStore) -> SqlGraphStore:
    """Return `store` holding the `seed` graph."""
    seed(store)
    return store


# -- the GraphStore contract: every backend -------------------------------------------------

NEO4J_URI_ENV = "KGEDIT_TEST_NEO4J_URI"
CONTRACT_BATCH = 7  # small UNWIND batches, so the tests cross batch boundaries


def _bolt_store(url: str, **options: object):
    """Return a Neo4j-driver store on an emptied graph."""
    from kg.store.neo4j import Neo4jGraphStore

    graph = Neo4jGraphStore(url, batch_size=CONTRACT_BATCH, **options)
    graph.drop_all()
    return graph


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.service),
        pytest.param("falkordb", marks=pytest.mark.service),
        pytest.param("neo4j", marks=pytest.mark.service),
    ]
)
def graph_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """Return an empty store of every backend: SQLite, PostgreSQL, FalkorDB (Bolt), Neo4j."""
    kind = request.param
    if kind == "sqlite":
        graph = SqlGraphStore(f"sqlite:///{tmp_path / 'kg.sqlite'}")
        yield graph
        graph.close()
        return
    if kind == "postgresql":
        graph = SqlGraphStore(
            request.getfixturevalue("pg_url"), schema=f"kg_test_{uuid.uuid4().hex[:12]}"
        )
        try:
            yield graph
        finally:
            graph.drop_schema()
            graph.close()
        return
    if kind == "falkordb":
        server = request.getfixturevalue("falkor_server")
        if not server.alive():  # a crash in an earlier test must not take every later one
            server.start()
        graph = _bolt_store(server.bolt_url)
        try:
            yield graph
        finally:
            assert server.alive(), "the FalkorDB server died during this test"
            graph.drop_all()
            graph.close()
        return
    uri = os.environ.get(NEO4J_URI_ENV)
    if not uri:
        pytest.skip(f"real Neo4j runs only when {NEO4J_URI_ENV} is set (bolt://user:pw@host)")
    graph = _bolt_store(uri, server="neo4j")
    try:
        yield graph
    finally:
        graph.drop_all()
        graph.close()


def backend_of(graph: object) -> str:
    """Return sqlite, postgresql, falkordb or neo4j for a contract-suite store."""
    server = getattr(graph, "server", None)
    if server is not None:
        return str(server)
    return "sqlite" if str(graph.url).startswith("sqlite") else "postgresql"


def skip_on_falkordb(graph: object, reason: str) -> None:
    """Skip a contract check FalkorDB cannot honour, naming the reason."""
    if backend_of(graph) == "falkordb":
        pytest.skip(f"FalkorDB limitation: {reason}")
