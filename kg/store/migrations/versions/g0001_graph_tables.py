"""The graph tables: entities, aliases, relations, facts, concepts, change sets, forget marks,
vectors, counters and the change log.

Also adopts a database made before the graph had migrations: tables it already holds are
kept, `facts.sample_key` (filled) and `concepts.entities` are added where missing, and every
missing index is created.

Revision ID: g0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import hashlib
from itertools import islice

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "g0001"
down_revision = None

NAME = 512  # kg.types.MAX_NAME_LEN when this revision was written
CURRENT = sa.text("status = 'current'")
TABLES = ("entities", "entity_aliases", "relations", "facts", "concepts", "graph_meta",
          "change_sets", "forget_marks", "vectors", "change_log")  # fmt: skip
# (index, table, columns, unique, only current facts), per table in the order the ORM declares
# them: SQLite's planner breaks ties between indexes by their order
INDEXES = (
    ("ix_entities_name_key", "entities", ["name_key"], False, False),
    ("ix_entity_aliases_alias_key", "entity_aliases", ["alias_key"], False, False),
    ("ix_facts_object", "facts", ["object_id"], False, False),
    ("ix_facts_subject_relation", "facts", ["subject_id", "relation_id"], False, False),
    ("ix_facts_current_subject_sample", "facts", ["subject_id", "sample_key"], False, True),
    ("ix_facts_current_object_sample", "facts", ["object_id", "sample_key"], False, True),
    ("uq_facts_current_triple", "facts", ["subject_id", "relation_id", "object_id"], True, True),
    ("ix_concepts_name_key", "concepts", ["name_key"], False, False),
    ("ix_change_sets_state", "change_sets", ["state"], False, False),
    ("ix_change_sets_seq", "change_sets", ["seq"], False, False),
    ("ix_forget_marks_concept_id", "forget_marks", ["concept_id"], False, False),
    ("ix_change_log_action", "change_log", ["action"], False, False),
)


def _json() -> sa.types.TypeEngine:
    """JSON, stored as JSONB on PostgreSQL."""
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _name(column: str, foreign_key: str | None = None, **kw) -> sa.Column:
    """A name-sized string column (optionally a foreign key), NOT NULL unless told."""
    args = [sa.ForeignKey(foreign_key)] if foreign_key else []
    return sa.Column(column, sa.String(NAME), *args, nullable=kw.pop("nullable", False), **kw)


def _columns() -> dict[str, list[sa.Column]]:
    """Return each table's columns and constraints."""
    ts = sa.DateTime(timezone=True)
    return {
        "entities": [
            _name("id", primary_key=True),
            _name("name"),
            _name("name_key"),
            _name("kind"),
        ],
        "entity_aliases": [
            sa.Column(
                "entity_id",
                sa.String(NAME),
                sa.ForeignKey("entities.id", ondelete="CASCADE"),
                primary_key=True,
            ),
            _name("alias", primary_key=True),
            _name("alias_key"),
            sa.Column("position", sa.Integer(), nullable=False),
        ],
        "relations": [
            _name("id", primary_key=True),
            _name("label"),
            sa.Column("templates", _json(), nullable=False),
            sa.Column("functional", sa.Boolean(), nullable=False),
        ],
        "facts": [
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            _name("subject_id", foreign_key="entities.id"),
            _name("relation_id", foreign_key="relations.id"),
            _name("object_id", foreign_key="entities.id"),
            sa.Column("status", sa.String(16), nullable=False),
            _name("source"),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("meta", _json(), nullable=False),
            sa.Column("sample_key", sa.BigInteger(), nullable=True),
        ],
        "concepts": [
            _name("id", primary_key=True),
            _name("name"),
            _name("name_key"),
            sa.Column("aliases", _json(), nullable=False),
            _name("redirect_to", nullable=True),
            sa.Column("entities", _json(), nullable=True),
        ],
        "graph_meta": [
            sa.Column("key", sa.String(64), primary_key=True),
            sa.Column("value", sa.BigInteger(), nullable=False),
        ],
        "change_sets": [
            _name("id", primary_key=True),
            _name("author"),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("created_at", ts, nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("operations", _json(), nullable=False),
            sa.Column("base", _json(), nullable=False),
            sa.Column("graph_version", sa.BigInteger(), nullable=True),
            _name("reviewer", nullable=True),
            sa.Column("review_note", sa.Text(), nullable=False),
            sa.Column("seq", sa.BigInteger(), nullable=False),
        ],
        "forget_marks": [
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            _name("concept_id", foreign_key="concepts.id"),
            _name("change_set_id", nullable=True),
            _name("who"),
            sa.Column("why", sa.Text(), nullable=False),
            sa.Column("marked_at", ts, nullable=False),
        ],
        "vectors": [
            sa.Column("key", sa.String(128), primary_key=True),
            sa.Column("model", sa.String(128), primary_key=True),
            sa.Column("dim", sa.Integer(), nullable=False),
            sa.Column("data", sa.LargeBinary(), nullable=False),
        ],
        "change_log": [
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            _name("who"),
            sa.Column("logged_at", ts, nullable=False),
            sa.Column("why", sa.Text(), nullable=False),
            sa.Column("action", sa.String(64), nullable=False),
            sa.Column("payload", _json(), nullable=False),
        ],
    }


def _schema() -> str | None:
    """Return the PostgreSQL schema being migrated (None: the default one)."""
    return op.get_context().version_table_schema


def _sample_key(subject: str, relation: str, obj: str) -> int:
    """Return the triple's 62-bit sampling key (kg.store.base.sample_key when written)."""
    data = f"{subject}\x1f{relation}\x1f{obj}".encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") >> 2


def _fill_sample_keys(bind: sa.Connection) -> None:
    """Give every fact of an adopted `facts` table its sampling key."""
    facts = sa.table("facts", sa.column("id"), sa.column("subject_id"), sa.column("relation_id"),
                     sa.column("object_id"), sa.column("sample_key"), schema=_schema())  # fmt: skip
    rows = bind.execute(
        sa.select(facts.c.id, facts.c.subject_id, facts.c.relation_id, facts.c.object_id)
    ).all()
    stmt = (
        sa.update(facts)
        .where(facts.c.id == sa.bindparam("fid"))
        .values(sample_key=sa.bindparam("skey"))
    )
    it = iter(rows)
    while chunk := list(islice(it, 5000)):
        bind.execute(stmt, [{"fid": r[0], "skey": _sample_key(r[1], r[2], r[3])} for r in chunk])


def upgrade() -> None:
    """Create the missing tables, columns and indexes; seed the graph version."""
    bind = op.get_bind()
    schema = _schema()
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names(schema=schema))
    columns = _columns()
    for name in TABLES:
        if name not in existing:
            op.create_table(name, *columns[name])
    if "facts" in existing:
        have = {c["name"] for c in inspector.get_columns("facts", schema=schema)}
        if "sample_key" not in have:
            op.add_column("facts", sa.Column("sample_key", sa.BigInteger(), nullable=True))
            _fill_sample_keys(bind)
    if "concepts" in existing:
        have = {c["name"] for c in inspector.get_columns("concepts", schema=schema)}
        if "entities" not in have:
            op.add_column("concepts", sa.Column("entities", _json(), nullable=True))
    for name, table, cols, unique, current in INDEXES:
        if table in existing and name in {
            ix["name"] for ix in inspector.get_indexes(table, schema=schema)
        }:
            continue
        where = {"sqlite_where": CURRENT, "postgresql_where": CURRENT} if current else {}
        op.create_index(name, table, cols, unique=unique, **where)
    meta = sa.table("graph_meta", sa.column("key"), sa.column("value"), schema=schema)
    if bind.execute(sa.select(meta.c.key).where(meta.c.key == "graph_version")).first() is None:
        op.bulk_insert(meta, [{"key": "graph_version", "value": 0}])


def downgrade() -> None:
    """Drop every graph table."""
    for name in reversed(TABLES):
        op.drop_table(name)
