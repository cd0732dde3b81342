"""The SQL graph store's tables (`kg.store.sql`) and the conversions between rows and kg types.

`Base.metadata` is the schema the graph migrations (`migrations/graph/`) build; a test checks
that a migrated database equals it on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kg.store.base import sample_key
from kg.store.core import utc
from kg.types import (
    MAX_NAME_LEN,
    ChangeLogEntry,
    Concept,
    Entity,
    Fact,
    FactStatus,
    ForgetMark,
    Relation,
    RelationTemplates,
    name_key,
)

JSON_TYPE = JSON().with_variant(JSONB(), "postgresql")
_CURRENT = text("status = 'current'")  # constant predicate of the partial indexes
FACT_COLUMNS = [
    "subject_id",
    "relation_id",
    "object_id",
    "status",
    "source",
    "version",
    "meta",
    "sample_key",
]  # fmt: skip  (the order of `fact_tuple`)


class Base(DeclarativeBase):
    """Declarative base of the graph tables."""


class EntityRow(Base):
    """Table `entities`."""

    __tablename__ = "entities"

    id: Mapped[str] = mapped_column(String(MAX_NAME_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LEN))
    name_key: Mapped[str] = mapped_column(String(MAX_NAME_LEN), index=True)
    kind: Mapped[str] = mapped_column(String(MAX_NAME_LEN), default="entity")


class AliasRow(Base):
    """Table `entity_aliases`: other names of an entity, in order."""

    __tablename__ = "entity_aliases"

    entity_id: Mapped[str] = mapped_column(
        ForeignKey("entities.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(MAX_NAME_LEN), primary_key=True)
    alias_key: Mapped[str] = mapped_column(String(MAX_NAME_LEN), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class RelationRow(Base):
    """Table `relations`; templates are a JSON object of form -> list of templates."""

    __tablename__ = "relations"

    id: Mapped[str] = mapped_column(String(MAX_NAME_LEN), primary_key=True)
    label: Mapped[str] = mapped_column(String(MAX_NAME_LEN))
    templates: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)
    functional: Mapped[bool] = mapped_column(Boolean, default=False)
    equivalent_to: Mapped[list[str]] = mapped_column(JSON_TYPE, default=list)


class FactRow(Base):
    """Table `facts`; one current row per (subject, relation, object)."""

    __tablename__ = "facts"
    __table_args__ = (
        Index("ix_facts_subject_relation", "subject_id", "relation_id"),
        Index("ix_facts_object", "object_id"),
        Index(
            "uq_facts_current_triple",
            "subject_id",
            "relation_id",
            "object_id",
            unique=True,
            sqlite_where=_CURRENT,
            postgresql_where=_CURRENT,
        ),
        Index(
            "ix_facts_current_subject_sample",
            "subject_id",
            "sample_key",
            sqlite_where=_CURRENT,
            postgresql_where=_CURRENT,
        ),
        Index(
            "ix_facts_current_object_sample",
            "object_id",
            "sample_key",
            sqlite_where=_CURRENT,
            postgresql_where=_CURRENT,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("entities.id"))
    relation_id: Mapped[str] = mapped_column(ForeignKey("relations.id"))
    object_id: Mapped[str] = mapped_column(ForeignKey("entities.id"))
    status: Mapped[str] = mapped_column(String(16), default=FactStatus.CURRENT.value)
    source: Mapped[str] = mapped_column(String(MAX_NAME_LEN), default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE, default=dict)
    # fixed pseudo-random key of the triple: fan-out samples are "the first n by sample_key"
    sample_key: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ConceptRow(Base):
    """Table `concepts`."""

    __tablename__ = "concepts"

    id: Mapped[str] = mapped_column(String(MAX_NAME_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LEN))
    name_key: Mapped[str] = mapped_column(String(MAX_NAME_LEN), index=True)
    aliases: Mapped[list[str]] = mapped_column(JSON_TYPE, default=list)
    redirect_to: Mapped[str | None] = mapped_column(String(MAX_NAME_LEN), nullable=True)
    entities: Mapped[list[str] | None] = mapped_column(JSON_TYPE, default=list, nullable=True)


class GraphMetaRow(Base):
    """Table `graph_meta`: named counters such as the graph version."""

    __tablename__ = "graph_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class ChangeSetRow(Base):
    """Table `change_sets`: curators' change sets, their review state and base versions."""

    __tablename__ = "change_sets"

    id: Mapped[str] = mapped_column(String(MAX_NAME_LEN), primary_key=True)
    author: Mapped[str] = mapped_column(String(MAX_NAME_LEN))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(16), index=True)
    operations: Mapped[list[dict[str, Any]]] = mapped_column(JSON_TYPE, default=list)
    base: Mapped[list[dict[str, Any]]] = mapped_column(JSON_TYPE, default=list)
    graph_version: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reviewer: Mapped[str | None] = mapped_column(String(MAX_NAME_LEN), nullable=True)
    review_note: Mapped[str] = mapped_column(Text, default="")
    seq: Mapped[int] = mapped_column(BigInteger, index=True, default=0)


class ForgetMarkRow(Base):
    """Table `forget_marks`: concepts marked to be forgotten."""

    __tablename__ = "forget_marks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    concept_id: Mapped[str] = mapped_column(ForeignKey("concepts.id"), index=True)
    change_set_id: Mapped[str | None] = mapped_column(String(MAX_NAME_LEN), nullable=True)
    who: Mapped[str] = mapped_column(String(MAX_NAME_LEN))
    why: Mapped[str] = mapped_column(Text)
    marked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VectorRow(Base):
    """Table `vectors`: cached sentence vectors (float32 bytes) by text key and model."""

    __tablename__ = "vectors"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    dim: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ChangeLogRow(Base):
    """Table `change_log`: who changed what, when and why."""

    __tablename__ = "change_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    who: Mapped[str] = mapped_column(String(MAX_NAME_LEN))
    logged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    why: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE, default=dict)


def fact_of(row: FactRow) -> Fact:
    """Return the fact of a `facts` row."""
    return Fact(
        subject=row.subject_id,
        relation=row.relation_id,
        object=row.object_id,
        status=row.status,
        source=row.source,
        version=row.version,
        meta=dict(row.meta or {}),
        id=row.id,
    )


def fact_values(fact: Fact) -> dict[str, Any]:
    """Return a fact as `facts` column values."""
    return {
        "subject_id": fact.subject,
        "relation_id": fact.relation,
        "object_id": fact.object,
        "status": FactStatus(fact.status).value,
        "source": fact.source,
        "version": fact.version,
        "meta": dict(fact.meta),
        "sample_key": sample_key(fact.subject, fact.relation, fact.object),
    }


def fact_tuple(fact: Fact) -> tuple[Any, ...]:
    """Return a fact's column values in `FACT_COLUMNS` order (meta as JSON text)."""
    return (
        fact.subject,
        fact.relation,
        fact.object,
        fact.status.value if isinstance(fact.status, FactStatus) else str(fact.status),
        fact.source,
        fact.version,
        json.dumps(fact.meta) if fact.meta else "{}",
        sample_key(fact.subject, fact.relation, fact.object),
    )


def relation_values(relation: Relation) -> dict[str, Any]:
    """Return a relation as `relations` column values."""
    return {
        "id": relation.id,
        "label": relation.label,
        "templates": relation.templates.to_dict(),
        "functional": relation.functional,
        "equivalent_to": list(relation.equivalent_to),
    }


def relation_of(row: RelationRow) -> Relation:
    """Return the relation of a `relations` row."""
    return Relation(
        id=row.id,
        label=row.label,
        templates=RelationTemplates.from_dict(row.templates),
        functional=bool(row.functional),
        equivalent_to=tuple(row.equivalent_to or ()),
    )


def concept_of(row: ConceptRow) -> Concept:
    """Return the concept of a `concepts` row."""
    return Concept(
        id=row.id,
        name=row.name,
        aliases=tuple(row.aliases or ()),
        redirect_to=row.redirect_to,
        entities=tuple(row.entities or ()),
    )


def alias_values(entity_id: str, aliases: Iterable[str], start: int) -> list[dict[str, Any]]:
    """Return alias rows, duplicates dropped, positions from `start`."""
    names = list(dict.fromkeys(aliases))
    return [
        {"entity_id": entity_id, "alias": a, "alias_key": name_key(a), "position": start + i}
        for i, a in enumerate(names)
    ]


def entity_values(entity: Entity) -> dict[str, Any]:
    """Return an entity as `entities` column values."""
    return {
        "id": entity.id,
        "name": entity.name,
        "name_key": name_key(entity.name),
        "kind": entity.kind,
    }


def mark_of(row: ForgetMarkRow) -> ForgetMark:
    """Return the forget mark of a `forget_marks` row."""
    return ForgetMark(
        concept_id=row.concept_id,
        change_set_id=row.change_set_id,
        who=row.who,
        when=utc(row.marked_at),
        why=row.why,
        id=row.id,
    )


def concept_values(concept: Concept) -> dict[str, Any]:
    """Return a concept as `concepts` column values."""
    return {
        "id": concept.id,
        "name": concept.name,
        "name_key": name_key(concept.name),
        "aliases": list(concept.aliases),
        "redirect_to": concept.redirect_to,
        "entities": list(concept.entities),
    }


def log_entry_of(row: ChangeLogRow) -> ChangeLogEntry:
    """Return the change-log entry of a `change_log` row."""
    return ChangeLogEntry(
        who=row.who,
        when=utc(row.logged_at),
        why=row.why,
        action=row.action,
        payload=dict(row.payload or {}),
        id=row.id,
    )
