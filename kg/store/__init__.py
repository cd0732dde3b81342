"""Graph stores; `SqlGraphStore` is the embedded default (SQLite) and the PostgreSQL store."""

from kg.store.sql import SqlGraphStore

__all__ = ["SqlGraphStore"]
