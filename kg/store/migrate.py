"""Alembic migrations of the SQL graph tables (`kg.store.sql_rows`), kept apart from the
metadata database's: scripts in `kg/store/migrations/`, version in table `kg_alembic_version`
(the graph and the metadata may share one PostgreSQL database).

A `SqlGraphStore` upgrades its database when it opens it (`create=True`, the default); a
database made before the graph had migrations (tables but no version table) is adopted by the
first revision, which adds what such a database lacks. `kgedit db upgrade` upgrades the graph
store of the settings as well, for deployments that migrate once (compose's `migrate` service).
"""

from __future__ import annotations

import hashlib
import time
from functools import cache
from pathlib import Path

from sqlalchemy import Connection, Engine, column, inspect, select, table, text
from sqlalchemy.exc import OperationalError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "kg_alembic_version"
# PostgreSQL advisory lock id: processes opening one database migrate it one at a time
_LOCK_ID = int.from_bytes(hashlib.blake2b(b"kgedit graph migrations", digest_size=7).digest())


@cache
def head_revision() -> str:
    """Return the newest revision of the graph migrations."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection, schema: str | None = None) -> str | None:
    """Return the graph revision a database is at (None: never migrated)."""
    if not inspect(conn).has_table(VERSION_TABLE, schema=schema):
        return None
    versions = table(VERSION_TABLE, column("version_num"), schema=schema)
    return conn.execute(select(versions.c.version_num)).scalar()


def _run(engine: Engine, schema: str | None, direction: str, revision: str) -> None:
    """Run an Alembic upgrade or downgrade of the graph tables over one connection."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        if direction == "upgrade" and current_revision(conn, schema) == revision:
            return  # another process got there first
        config.attributes["connection"] = conn
        config.attributes["schema"] = schema
        getattr(command, direction)(config, revision)


def upgrade_graph_schema(engine: Engine, schema: str | None = None) -> None:
    """Bring a database's graph tables to the newest revision (a no-op when they are)."""
    with engine.connect() as conn:
        if current_revision(conn, schema) == head_revision():
            return
    for attempt in range(5):
        try:
            _run(engine, schema, "upgrade", head_revision())
            return
        except OperationalError:  # another process is migrating the same SQLite file
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


def downgrade_graph_schema(engine: Engine, revision: str, schema: str | None = None) -> None:
    """Take a database's graph tables down to `revision` ("base": none)."""
    _run(engine, schema, "downgrade", revision)
