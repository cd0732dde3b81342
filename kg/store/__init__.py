"""Graph stores behind one contract (`GraphStore`); `open_store(url)` picks the backend.

- `sqlite:///path` (default, WAL) and `postgresql+psycopg://…` → `SqlGraphStore`;
- `bolt://…` / `neo4j://…` (Neo4j 5, or FalkorDB with `?server=falkordb`) → `Neo4jGraphStore`.

Both are `kg.store.core.StoreCore`: the contract's checks, duplicate rules and change log are
written once there, above each backend's primitives.
"""

from __future__ import annotations

from typing import Any

from kg.errors import ValidationError
from kg.store.base import GraphStore, RelationFilter
from kg.store.sql import SqlGraphStore

BOLT_SCHEMES = ("bolt", "neo4j", "bolt+s", "neo4j+s", "bolt+ssc", "neo4j+ssc")

__all__ = ["GraphStore", "RelationFilter", "SqlGraphStore", "open_store", "upgrade_store"]


def open_store(url: str, **options: Any) -> GraphStore:
    """Return the graph store for a URL: SQL (sqlite, postgresql) or Bolt (Neo4j, FalkorDB)."""
    if not isinstance(url, str) or "://" not in url:
        raise ValidationError(f"graph store URL must look like scheme://…, got {url!r}")
    scheme = url.split("://", 1)[0].lower()
    if scheme in BOLT_SCHEMES:
        from kg.store.neo4j import Neo4jGraphStore

        return Neo4jGraphStore(url, **options)
    if scheme.split("+", 1)[0] in ("sqlite", "postgresql", "postgres"):
        if scheme.startswith("postgres") and scheme.split("+", 1)[0] == "postgres":
            raise ValidationError("use postgresql:// (or postgresql+psycopg://), not postgres://")
        if scheme == "postgresql":
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return SqlGraphStore(url, **options)
    raise ValidationError(
        f"unsupported graph store URL scheme {scheme!r}: use sqlite://, postgresql:// or bolt://"
    )


def upgrade_store(url: str) -> str:
    """Bring a graph store's schema up to date; return its URL (password hidden).

    SQL: the graph migrations run to head. Bolt: constraints and indexes are created.
    """
    store = open_store(url)
    try:
        store.graph_version()  # the first call creates a Bolt server's schema
        return store.url
    finally:
        store.close()
