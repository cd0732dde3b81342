"""Alembic environment of the graph tables: the caller's connection, or `-x url=...`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from kg.store.migrate import VERSION_TABLE
from kg.store.sql_rows import Base

config = context.config


def _configure(connection, schema: str | None) -> None:
    """Configure the context: graph metadata, own version table, optional schema."""
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
    )


def run_online() -> None:
    """Migrate over the caller's connection, or one made from `-x url=`."""
    schema = config.attributes.get("schema")
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection, schema)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit(
            "give the graph database as -x url=sqlite:///... or postgresql+psycopg://..."
        )
    engine = create_engine(url)
    with engine.connect() as conn:
        _configure(conn, None)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_online()
