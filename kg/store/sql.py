"""SQL graph store on SQLAlchemy 2: SQLite (default, WAL mode) or PostgreSQL.

Every mutating method takes `who` and `why` and writes a change-log row in the same
transaction as the change. Methods called inside `with store.transaction():` share that one
transaction, so a multi-step import commits all or nothing. All statements are built with
SQLAlchemy expressions and bound parameters; no user data is ever formatted into SQL text.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateSchema, DropSchema

from kg.errors import DuplicateError, NotFoundError, ValidationError
from kg.store.base import (
    Direction,
    GraphWalks,
    RelationFilter,
    bulk_checked,
    check_limit,
    group_incident,
    sample_key,
)
from kg.store.base import (
    check_actor as _check_actor,
)
from kg.store.base import (
    check_types as _check_types,
)
from kg.store.base import (
    chunks as _chunks,
)
from kg.types import (
    MAX_NAME_LEN,
    ChangeLogEntry,
    ChangeSet,
    ChangeSetState,
    Concept,
    Entity,
    Fact,
    FactStatus,
    ForgetMark,
    Operation,
    Relation,
    RelationTemplates,
    check_id,
    check_name,
    name_key,
)

DEFAULT_URL = "sqlite:///var/kg.sqlite"
_IN_CHUNK = 500  # ids per IN (...) list: far below SQLite's bound-parameter limit
_JSON = JSON().with_variant(JSONB(), "postgresql")
_CURRENT = text("status = 'current'")  # constant predicate of the partial unique index

T = TypeVar("T")


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
    templates: Mapped[dict[str, Any]] = mapped_column(_JSON)
    functional: Mapped[bool] = mapped_column(Boolean, default=False)


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
    meta: Mapped[dict[str, Any]] = mapped_column(_JSON, default=dict)
    # fixed pseudo-random key of the triple: fan-out samples are "the first n by sample_key"
    sample_key: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class ConceptRow(Base):
    """Table `concepts`."""

    __tablename__ = "concepts"

    id: Mapped[str] = mapped_column(String(MAX_NAME_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LEN))
    name_key: Mapped[str] = mapped_column(String(MAX_NAME_LEN), index=True)
    aliases: Mapped[list[str]] = mapped_column(_JSON, default=list)
    redirect_to: Mapped[str | None] = mapped_column(String(MAX_NAME_LEN), nullable=True)
    entities: Mapped[list[str] | None] = mapped_column(_JSON, default=list, nullable=True)


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
    operations: Mapped[list[dict[str, Any]]] = mapped_column(_JSON, default=list)
    base: Mapped[list[dict[str, Any]]] = mapped_column(_JSON, default=list)
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
    payload: Mapped[dict[str, Any]] = mapped_column(_JSON, default=dict)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _fact(row: FactRow) -> Fact:
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


def _fact_row(fact: Fact) -> dict[str, Any]:
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


def _fact_tuple(fact: Fact) -> tuple[Any, ...]:
    """Return a fact's column values in `bulk_import`'s order (meta as JSON text)."""
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


def _relation(row: RelationRow) -> Relation:
    return Relation(
        id=row.id,
        label=row.label,
        templates=RelationTemplates.from_dict(row.templates),
        functional=bool(row.functional),
    )


def _concept(row: ConceptRow) -> Concept:
    return Concept(
        id=row.id,
        name=row.name,
        aliases=tuple(row.aliases or ()),
        redirect_to=row.redirect_to,
        entities=tuple(row.entities or ()),
    )


class SqlGraphStore(GraphWalks):
    """Graph store on SQLite (default file `./var/kg.sqlite`) or PostgreSQL.

    `schema` (PostgreSQL only) puts the tables in that schema, creating it if needed.
    """

    def __init__(
        self, url: str | None = None, *, schema: str | None = None, create: bool = True
    ) -> None:
        self._url = make_url(url or DEFAULT_URL)
        self._schema = schema
        self._local = threading.local()
        self._statements: dict[tuple, Any] = {}  # cached text statements by query shape
        self._engine = self._make_engine()
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        if create:
            self.create_schema()

    # -- engine and transactions -------------------------------------------------------------

    def _make_engine(self) -> Engine:
        url = self._url
        if url.get_backend_name() == "sqlite":
            if self._schema is not None:
                raise ValidationError("schema= is only supported on PostgreSQL")
            database = url.database
            in_memory = not database or database == ":memory:"
            kwargs: dict[str, Any] = {"connect_args": {"timeout": 30}}
            if in_memory:
                kwargs = {"connect_args": {"check_same_thread": False}, "poolclass": StaticPool}
            else:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, **kwargs)
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        engine = create_engine(url, pool_pre_ping=True)
        if self._schema is not None:
            check_id(self._schema, "schema")
            with engine.begin() as conn:
                conn.execute(CreateSchema(self._schema, if_not_exists=True))
            engine = engine.execution_options(schema_translate_map={None: self._schema})
        return engine

    @property
    def url(self) -> str:
        """Return the database URL (password hidden)."""
        return self._url.render_as_string(hide_password=True)

    @property
    def schema(self) -> str | None:
        """Return the PostgreSQL schema holding the tables (None: the default one)."""
        return self._schema

    @property
    def engine(self) -> Engine:
        """Return the SQLAlchemy engine (for inspection and tests)."""
        return self._engine

    def create_schema(self) -> None:
        """Create the tables and indexes that do not exist yet (and add new columns)."""
        self._add_sample_keys()
        Base.metadata.create_all(self._engine)
        self._add_missing_columns()
        # the version row exists from the start, so a bump is always an UPDATE (a row lock)
        try:
            with self._engine.begin() as conn:
                stmt = select(GraphMetaRow.key).where(GraphMetaRow.key == "graph_version")
                if conn.execute(stmt).first() is None:
                    conn.execute(insert(GraphMetaRow), [{"key": "graph_version", "value": 0}])
        except IntegrityError:
            pass  # another process created it at the same moment

    def _add_sample_keys(self) -> None:
        """Give a `facts` table made by an older kgedit its `sample_key` column, filled."""
        with self._engine.begin() as conn:
            insp = inspect(conn)
            if not insp.has_table("facts"):
                return
            if "sample_key" in {c["name"] for c in insp.get_columns("facts")}:
                return
            conn.execute(text("ALTER TABLE facts ADD COLUMN sample_key BIGINT"))
            table = FactRow.__table__
            cols = (table.c.id, table.c.subject_id, table.c.relation_id, table.c.object_id)
            rows = conn.execute(select(*cols)).all()
            stmt = (
                update(table)
                .where(table.c.id == bindparam("fid"))
                .values(sample_key=bindparam("skey"))
            )
            for chunk in _chunks(rows, 5000):
                params = [{"fid": r[0], "skey": sample_key(r[1], r[2], r[3])} for r in chunk]
                conn.execute(stmt, params)

    def _add_missing_columns(self) -> None:
        """Add columns introduced after a table was created (`concepts.entities`)."""
        from sqlalchemy import inspect as sa_inspect

        found = sa_inspect(self._engine).get_columns("concepts", schema=self._schema)
        if "entities" not in {c["name"] for c in found}:
            kind = "JSONB" if self._url.get_backend_name() == "postgresql" else "JSON"
            table = "concepts"
            if self._schema is not None:  # identifiers quoted by the dialect, never user SQL
                quote = self._engine.dialect.identifier_preparer.quote_schema
                table = f"{quote(self._schema)}.concepts"
            with self._engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN entities {kind}"))

    def drop_schema(self) -> None:
        """Drop every table of the store (and its PostgreSQL schema, if one was given)."""
        Base.metadata.drop_all(self._engine)
        if self._schema is not None:
            with self._engine.begin() as conn:
                conn.execute(DropSchema(self._schema, cascade=True, if_exists=True))

    def close(self) -> None:
        """Release every pooled connection."""
        self._engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Run the enclosed store calls in one transaction: all commit, or none on error."""
        current: Session | None = getattr(self._local, "session", None)
        if current is not None:
            yield current
            return
        with self._sessions.begin() as session:
            self._local.session = session
            try:
                yield session
            finally:
                self._local.session = None

    def _log(self, session: Session, who: str, why: str, action: str, payload: dict) -> None:
        session.execute(
            insert(ChangeLogRow),
            [
                {
                    "who": who,
                    "why": why,
                    "action": action,
                    "payload": payload,
                    "logged_at": datetime.now(UTC),
                }
            ],
        )

    def _existing(self, session: Session, column: Any, ids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(sorted(set(ids)), _IN_CHUNK):
            found.update(session.execute(select(column).where(column.in_(chunk))).scalars())
        return found

    def _require(self, session: Session, kind: str, column: Any, ids: Iterable[str]) -> None:
        wanted = set(ids)
        missing = wanted - self._existing(session, column, wanted)
        if missing:
            raise NotFoundError(kind, sorted(missing)[0])

    # -- change log ---------------------------------------------------------------------------

    def log(self, who: str, why: str, action: str, payload: dict[str, Any] | None = None) -> None:
        """Append a change-log row (for actions outside the store, e.g. a model edit)."""
        _check_actor(who, why)
        check_id(action, "action")
        with self.transaction() as session:
            self._log(session, who, why, action, dict(payload or {}))

    def change_log(
        self, limit: int | None = None, action: str | None = None
    ) -> list[ChangeLogEntry]:
        """Return change-log entries, oldest first, optionally of one action only."""
        stmt = select(ChangeLogRow).order_by(ChangeLogRow.id)
        if action is not None:
            stmt = stmt.where(ChangeLogRow.action == action)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.transaction() as session:
            rows = session.execute(stmt).scalars().all()
            return [
                ChangeLogEntry(
                    who=row.who,
                    when=_utc(row.logged_at),
                    why=row.why,
                    action=row.action,
                    payload=dict(row.payload or {}),
                    id=row.id,
                )
                for row in rows
            ]

    # -- entities -----------------------------------------------------------------------------

    def add_entity(self, entity: Entity, who: str = "system", why: str = "import") -> Entity:
        """Add one entity; DuplicateError if its id is taken."""
        self.add_entities([entity], who=who, why=why)
        return entity

    def add_entities(
        self,
        entities: Iterable[Entity],
        who: str = "system",
        why: str = "import",
        *,
        batch: int = 1000,
        skip_existing: bool = False,
    ) -> int:
        """Add entities in batches of executemany inserts; return how many were added."""
        _check_actor(who, why)
        added = 0
        seen: set[str] = set()
        with self.transaction() as session:
            for chunk in _chunks(entities, batch):
                _check_types(chunk, Entity)
                existing = self._existing(session, EntityRow.id, (e.id for e in chunk))
                rows: list[dict[str, Any]] = []
                aliases: list[dict[str, Any]] = []
                for entity in chunk:
                    if entity.id in existing or entity.id in seen:
                        if skip_existing:
                            continue
                        raise DuplicateError(f"entity id {entity.id!r} already exists")
                    seen.add(entity.id)
                    rows.append(
                        {
                            "id": entity.id,
                            "name": entity.name,
                            "name_key": name_key(entity.name),
                            "kind": entity.kind,
                        }
                    )
                    aliases.extend(self._alias_rows(entity.id, entity.aliases, 0))
                if rows:
                    session.execute(insert(EntityRow), rows)
                if aliases:
                    session.execute(insert(AliasRow), aliases)
                added += len(rows)
            payload: dict[str, Any] = {"count": added}
            if added <= 100:
                payload["ids"] = sorted(seen)
            self._log(session, who, why, "add_entities", payload)
        return added

    @staticmethod
    def _alias_rows(entity_id: str, aliases: Iterable[str], start: int) -> list[dict[str, Any]]:
        rows = []
        taken: set[str] = set()
        for alias in aliases:
            if alias in taken:
                continue
            taken.add(alias)
            rows.append(
                {
                    "entity_id": entity_id,
                    "alias": alias,
                    "alias_key": name_key(alias),
                    "position": start + len(rows),
                }
            )
        return rows

    def _aliases(self, session: Session, ids: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for chunk in _chunks(sorted(set(ids)), _IN_CHUNK):
            stmt = (
                select(AliasRow.entity_id, AliasRow.alias)
                .where(AliasRow.entity_id.in_(chunk))
                .order_by(AliasRow.entity_id, AliasRow.position)
            )
            for entity_id, alias in session.execute(stmt):
                out.setdefault(entity_id, []).append(alias)
        return out

    def _entities(self, session: Session, rows: Sequence[EntityRow]) -> list[Entity]:
        aliases = self._aliases(session, [row.id for row in rows])
        return [
            Entity(id=row.id, name=row.name, aliases=tuple(aliases.get(row.id, ())), kind=row.kind)
            for row in rows
        ]

    def get_entity(self, entity_id: str) -> Entity:
        """Return one entity; NotFoundError if the id is unknown."""
        with self.transaction() as session:
            row = session.get(EntityRow, entity_id)
            if row is None:
                raise NotFoundError("entity", entity_id)
            return self._entities(session, [row])[0]

    def list_entities(
        self, limit: int | None = None, offset: int = 0, kind: str | None = None
    ) -> list[Entity]:
        """Return entities ordered by id."""
        stmt = select(EntityRow).order_by(EntityRow.id).offset(offset)
        if kind is not None:
            stmt = stmt.where(EntityRow.kind == kind)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.transaction() as session:
            return self._entities(session, session.execute(stmt).scalars().all())

    def find_entities(self, name_or_alias: str) -> list[Entity]:
        """Return entities whose name or an alias equals the text (case-insensitive)."""
        key = name_key(name_or_alias)
        by_alias = select(AliasRow.entity_id).where(AliasRow.alias_key == key)
        stmt = (
            select(EntityRow)
            .where((EntityRow.name_key == key) | EntityRow.id.in_(by_alias))
            .order_by(EntityRow.id)
        )
        with self.transaction() as session:
            return self._entities(session, session.execute(stmt).scalars().all())

    def entity_names(self, ids: Iterable[str]) -> dict[str, str]:
        """Return {id: name} for the given ids (unknown ids are left out)."""
        out: dict[str, str] = {}
        with self.transaction() as session:
            for chunk in _chunks(sorted(set(ids)), _IN_CHUNK):
                stmt = select(EntityRow.id, EntityRow.name).where(EntityRow.id.in_(chunk))
                out.update({row.id: row.name for row in session.execute(stmt)})
        return out

    def add_alias(
        self, entity_id: str, alias: str, who: str = "system", why: str = "import"
    ) -> Entity:
        """Add another name to an entity and return the updated entity."""
        _check_actor(who, why)
        check_name(alias, "alias")
        with self.transaction() as session:
            row = session.get(EntityRow, entity_id)
            if row is None:
                raise NotFoundError("entity", entity_id)
            current = self._aliases(session, [entity_id]).get(entity_id, [])
            if alias in current or alias == row.name:
                raise DuplicateError(f"entity {entity_id!r} already has the name {alias!r}")
            session.execute(insert(AliasRow), self._alias_rows(entity_id, [alias], len(current)))
            self._log(session, who, why, "add_alias", {"entity": entity_id, "alias": alias})
            return self._entities(session, [row])[0]

    def count_entities(self) -> int:
        """Return the number of entities."""
        with self.transaction() as session:
            return int(session.execute(select(func.count()).select_from(EntityRow)).scalar_one())

    # -- relations ----------------------------------------------------------------------------

    def add_relation(
        self, relation: Relation, who: str = "system", why: str = "import"
    ) -> Relation:
        """Add one relation; DuplicateError if its id is taken."""
        self.add_relations([relation], who=who, why=why)
        return relation

    def add_relations(
        self,
        relations: Iterable[Relation],
        who: str = "system",
        why: str = "import",
        *,
        skip_existing: bool = False,
    ) -> int:
        """Add relations; return how many were added."""
        _check_actor(who, why)
        items = list(relations)
        _check_types(items, Relation)
        with self.transaction() as session:
            existing = self._existing(session, RelationRow.id, (r.id for r in items))
            rows: list[dict[str, Any]] = []
            seen: set[str] = set()
            for relation in items:
                if relation.id in existing or relation.id in seen:
                    if skip_existing:
                        continue
                    raise DuplicateError(f"relation id {relation.id!r} already exists")
                seen.add(relation.id)
                rows.append(
                    {
                        "id": relation.id,
                        "label": relation.label,
                        "templates": relation.templates.to_dict(),
                        "functional": relation.functional,
                    }
                )
            if rows:
                session.execute(insert(RelationRow), rows)
            payload: dict[str, Any] = {"count": len(rows)}
            if len(rows) <= 100:
                payload["ids"] = sorted(seen)
            self._log(session, who, why, "add_relations", payload)
        return len(rows)

    def get_relation(self, relation_id: str) -> Relation:
        """Return one relation; NotFoundError if the id is unknown."""
        with self.transaction() as session:
            row = session.get(RelationRow, relation_id)
            if row is None:
                raise NotFoundError("relation", relation_id)
            return _relation(row)

    def list_relations(self) -> list[Relation]:
        """Return every relation ordered by id."""
        with self.transaction() as session:
            rows = session.execute(select(RelationRow).order_by(RelationRow.id)).scalars()
            return [_relation(row) for row in rows]

    def count_relations(self) -> int:
        """Return the number of relations."""
        with self.transaction() as session:
            stmt = select(func.count()).select_from(RelationRow)
            return int(session.execute(stmt).scalar_one())

    # -- facts --------------------------------------------------------------------------------

    def add_fact(self, fact: Fact, who: str = "system", why: str = "import") -> Fact:
        """Add one fact and return it with its id; NotFoundError/DuplicateError on bad input."""
        _check_actor(who, why)
        _check_types([fact], Fact)
        with self.transaction() as session:
            self._check_fact_refs(session, [fact])
            self._check_fact_dups(session, [fact], skip=False)
            row = FactRow(**_fact_row(fact))
            session.add(row)
            session.flush()
            payload = {"id": row.id, "triple": list(fact.triple), "status": row.status}
            self._log(session, who, why, "add_fact", payload)
            return _fact(row)

    def add_facts(
        self,
        facts: Iterable[Fact],
        who: str = "system",
        why: str = "import",
        *,
        batch: int = 1000,
        skip_duplicates: bool = False,
    ) -> int:
        """Add facts in batches of executemany inserts; return how many were added."""
        _check_actor(who, why)
        added = skipped = 0
        sources: set[str] = set()
        seen: set[tuple[str, str, str]] = set()
        with self.transaction() as session:
            for chunk in _chunks(facts, batch):
                _check_types(chunk, Fact)
                self._check_fact_refs(session, chunk)
                keep = self._check_fact_dups(session, chunk, skip=skip_duplicates, seen=seen)
                skipped += len(chunk) - len(keep)
                if keep:
                    session.execute(insert(FactRow), [_fact_row(f) for f in keep])
                added += len(keep)
                sources.update(f.source for f in keep)
            payload = {"count": added, "skipped_duplicates": skipped, "sources": sorted(sources)}
            self._log(session, who, why, "add_facts", payload)
        return added

    def _check_fact_refs(self, session: Session, facts: Sequence[Fact]) -> None:
        self._require(session, "relation", RelationRow.id, (f.relation for f in facts))
        ids = {f.subject for f in facts} | {f.object for f in facts}
        self._require(session, "entity", EntityRow.id, ids)

    def _check_fact_dups(
        self,
        session: Session,
        facts: Sequence[Fact],
        *,
        skip: bool,
        seen: set[tuple[Any, ...]] | None = None,
    ) -> list[Fact]:
        """Refuse (or, with `skip`, drop) current duplicates and exact copies of stored rows."""
        seen = set() if seen is None else seen

        def key(subject: str, relation: str, obj: str, status: str, version: int) -> tuple:
            """Current facts are unique by triple; others by triple, status and version."""
            if status == FactStatus.CURRENT.value:
                return (subject, relation, obj)
            return (subject, relation, obj, status, version)

        checked = [f for f in facts if skip or f.status == FactStatus.CURRENT]
        columns = (
            FactRow.subject_id,
            FactRow.relation_id,
            FactRow.object_id,
            FactRow.status,
            FactRow.version,
        )
        in_db: set[tuple[Any, ...]] = set()
        triple = tuple_(FactRow.subject_id, FactRow.relation_id, FactRow.object_id)
        # look up exactly the triples at hand (index on the triple), never a hub's every fact
        for chunk in _chunks(sorted({f.triple for f in checked}), _IN_CHUNK // 2):
            stmt = select(*columns).where(triple.in_(chunk))
            if not skip:
                stmt = stmt.where(FactRow.status == FactStatus.CURRENT.value)
            in_db.update(key(*row) for row in session.execute(stmt))
        keep: list[Fact] = []
        for fact in facts:
            status = FactStatus(fact.status).value
            if skip or status == FactStatus.CURRENT.value:
                k = key(fact.subject, fact.relation, fact.object, status, fact.version)
                if k in in_db or k in seen:
                    if skip:
                        continue
                    raise DuplicateError(f"current fact {fact.triple} already exists")
                seen.add(k)
            keep.append(fact)
        return keep

    def get_fact(self, fact_id: int) -> Fact:
        """Return one fact by its numeric id."""
        with self.transaction() as session:
            row = session.get(FactRow, fact_id)
            if row is None:
                raise NotFoundError("fact", str(fact_id))
            return _fact(row)

    def list_facts(
        self,
        status: FactStatus | str | None = FactStatus.CURRENT,
        *,
        source: str | None = None,
        subjects: Iterable[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Fact]:
        """Return facts ordered by id, filtered by status (None = all), source, subjects."""
        stmt = select(FactRow).order_by(FactRow.id)
        if status is not None:
            stmt = stmt.where(FactRow.status == FactStatus(status).value)
        if source is not None:
            stmt = stmt.where(FactRow.source == source)
        with self.transaction() as session:
            if subjects is None:
                rows = session.execute(stmt.offset(offset).limit(limit)).scalars().all()
                return [_fact(row) for row in rows]
            out: list[FactRow] = []
            for chunk in _chunks(sorted(set(subjects)), _IN_CHUNK):
                out.extend(session.execute(stmt.where(FactRow.subject_id.in_(chunk))).scalars())
            out.sort(key=lambda row: row.id)
            end = None if limit is None else offset + limit
            return [_fact(row) for row in out[offset:end]]

    def facts_about(
        self,
        subject_id: str,
        relation_id: str | None = None,
        status: FactStatus | str | None = FactStatus.CURRENT,
    ) -> list[Fact]:
        """Return the facts whose subject is `subject_id` (optionally of one relation)."""
        stmt = select(FactRow).where(FactRow.subject_id == subject_id).order_by(FactRow.id)
        if relation_id is not None:
            stmt = stmt.where(FactRow.relation_id == relation_id)
        if status is not None:
            stmt = stmt.where(FactRow.status == FactStatus(status).value)
        with self.transaction() as session:
            self._require(session, "entity", EntityRow.id, [subject_id])
            if relation_id is not None:
                self._require(session, "relation", RelationRow.id, [relation_id])
            return [_fact(row) for row in session.execute(stmt).scalars()]

    def facts_with_object(
        self, object_id: str, status: FactStatus | str | None = FactStatus.CURRENT
    ) -> list[Fact]:
        """Return the facts whose object is `object_id`."""
        stmt = select(FactRow).where(FactRow.object_id == object_id).order_by(FactRow.id)
        if status is not None:
            stmt = stmt.where(FactRow.status == FactStatus(status).value)
        with self.transaction() as session:
            self._require(session, "entity", EntityRow.id, [object_id])
            return [_fact(row) for row in session.execute(stmt).scalars()]

    def facts_of_relation(
        self,
        relation_id: str,
        status: FactStatus | str | None = FactStatus.CURRENT,
        limit: int | None = None,
    ) -> list[Fact]:
        """Return the facts of one relation, ordered by id."""
        stmt = select(FactRow).where(FactRow.relation_id == relation_id).order_by(FactRow.id)
        if status is not None:
            stmt = stmt.where(FactRow.status == FactStatus(status).value)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.transaction() as session:
            self._require(session, "relation", RelationRow.id, [relation_id])
            return [_fact(row) for row in session.execute(stmt).scalars()]

    def retract_fact(
        self,
        subject_id: str,
        relation_id: str,
        object_id: str,
        who: str = "system",
        why: str = "import",
    ) -> Fact:
        """Mark the current fact (subject, relation, object) retracted; return it."""
        _check_actor(who, why)
        with self.transaction() as session:
            stmt = select(FactRow).where(
                FactRow.subject_id == subject_id,
                FactRow.relation_id == relation_id,
                FactRow.object_id == object_id,
                FactRow.status == FactStatus.CURRENT.value,
            )
            row = session.execute(stmt).scalar_one_or_none()
            if row is None:
                triple = f"({subject_id}, {relation_id}, {object_id})"
                raise NotFoundError("current fact", triple)
            row.status = FactStatus.RETRACTED.value
            row.version = row.version + 1
            session.flush()
            payload = {"id": row.id, "triple": [subject_id, relation_id, object_id]}
            self._log(session, who, why, "retract_fact", payload)
            return _fact(row)

    def count_facts(self, status: FactStatus | str | None = None, source: str | None = None) -> int:
        """Return the number of facts, optionally of one status and/or source."""
        stmt = select(func.count()).select_from(FactRow)
        if status is not None:
            stmt = stmt.where(FactRow.status == FactStatus(status).value)
        if source is not None:
            stmt = stmt.where(FactRow.source == source)
        with self.transaction() as session:
            return int(session.execute(stmt).scalar_one())

    def count_facts_by_source(self, status: FactStatus | str | None = None) -> dict[str, int]:
        """Return {source: number of facts}."""
        stmt = select(FactRow.source, func.count()).group_by(FactRow.source)
        if status is not None:
            stmt = stmt.where(FactRow.status == FactStatus(status).value)
        with self.transaction() as session:
            return {source: int(n) for source, n in session.execute(stmt)}

    def count_facts_by_subject(
        self, status: FactStatus | str | None = FactStatus.CURRENT
    ) -> list[tuple[str, int]]:
        """Return (subject id, number of facts), most facts first, ties by id."""
        count = func.count().label("n")
        stmt = select(FactRow.subject_id, count).group_by(FactRow.subject_id)
        if status is not None:
            stmt = stmt.where(FactRow.status == FactStatus(status).value)
        stmt = stmt.order_by(count.desc(), FactRow.subject_id)
        with self.transaction() as session:
            return [(subject, int(n)) for subject, n in session.execute(stmt)]

    # -- concepts -----------------------------------------------------------------------------

    def add_concept(self, concept: Concept, who: str = "system", why: str = "import") -> Concept:
        """Add one concept; DuplicateError if its id is taken."""
        _check_actor(who, why)
        _check_types([concept], Concept)
        with self.transaction() as session:
            if session.get(ConceptRow, concept.id) is not None:
                raise DuplicateError(f"concept id {concept.id!r} already exists")
            row = {
                "id": concept.id,
                "name": concept.name,
                "name_key": name_key(concept.name),
                "aliases": list(concept.aliases),
                "redirect_to": concept.redirect_to,
                "entities": list(concept.entities),
            }
            session.execute(insert(ConceptRow), [row])
            self._log(session, who, why, "add_concept", {"id": concept.id, "name": concept.name})
        return concept

    def get_concept(self, concept_id: str) -> Concept:
        """Return one concept; NotFoundError if the id is unknown."""
        with self.transaction() as session:
            row = session.get(ConceptRow, concept_id)
            if row is None:
                raise NotFoundError("concept", concept_id)
            return _concept(row)

    def set_concept_redirect(
        self, concept_id: str, anchor_id: str | None, who: str = "system", why: str = "curation"
    ) -> Concept:
        """Set (or clear, with None) a concept's redirect anchor, an entity id; change-logged."""
        _check_actor(who, why)
        with self.transaction() as session:
            row = session.get(ConceptRow, concept_id)
            if row is None:
                raise NotFoundError("concept", concept_id)
            if anchor_id is not None:
                check_id(anchor_id, "anchor id")
                self._require(session, "entity", EntityRow.id, [anchor_id])
            before = row.redirect_to
            row.redirect_to = anchor_id
            payload = {"id": concept_id, "redirect_to": anchor_id, "before": before}
            self._log(session, who, why, "set_concept_redirect", payload)
            return _concept(row)

    def list_concepts(self) -> list[Concept]:
        """Return every concept ordered by id."""
        with self.transaction() as session:
            rows = session.execute(select(ConceptRow).order_by(ConceptRow.id)).scalars()
            return [_concept(row) for row in rows]

    def count_concepts(self) -> int:
        """Return the number of concepts."""
        with self.transaction() as session:
            return int(session.execute(select(func.count()).select_from(ConceptRow)).scalar_one())

    # -- bulk import ----------------------------------------------------------------------------

    def bulk_import(
        self,
        entities: Iterable[Entity],
        relations: Iterable[Relation],
        facts: Iterable[Fact],
        who: str = "system",
        why: str = "bulk import",
        *,
        batch: int = 20_000,
    ) -> dict[str, int]:
        """Load a whole graph into an EMPTY store in one transaction (checks done in memory).

        Much faster than `add_*`: references and duplicates are checked against the import
        itself, nothing is looked up in the database. Refused (ValidationError) if the store
        already holds entities, relations or facts; all or nothing on any error.
        """
        _check_actor(who, why)
        ents, rels, fact_iter = bulk_checked(entities, relations, facts)
        counts = {"entities": len(ents), "relations": len(rels), "facts": 0}
        with self.transaction() as session:
            for row_type in (EntityRow, RelationRow, FactRow):
                if session.execute(select(func.count()).select_from(row_type)).scalar_one():
                    raise ValidationError(
                        f"bulk_import needs an empty store ({row_type.__tablename__} has rows); "
                        "use add_entities / add_facts to add to a populated graph"
                    )
            if rels:
                rows = [
                    {
                        "id": r.id,
                        "label": r.label,
                        "templates": r.templates.to_dict(),
                        "functional": r.functional,
                    }
                    for r in rels
                ]
                session.execute(insert(RelationRow), rows)
            conn = session.connection()
            tables = [EntityRow.__table__, AliasRow.__table__, FactRow.__table__]
            indexes = [index for table in tables for index in table.indexes]
            for index in indexes:  # one sort per index after the load beats random inserts
                index.drop(conn)
            for chunk in _chunks(ents, batch):
                rows = [
                    {"id": e.id, "name": e.name, "name_key": name_key(e.name), "kind": e.kind}
                    for e in chunk
                ]
                conn.execute(insert(EntityRow.__table__), rows)
                aliases = [a for e in chunk for a in self._alias_rows(e.id, e.aliases, 0)]
                if aliases:
                    conn.execute(insert(AliasRow.__table__), aliases)
            fast = self._url.get_backend_name() == "sqlite"
            names = ["subject_id", "relation_id", "object_id", "status", "source", "version",
                     "meta", "sample_key"]  # fmt: skip
            sql = str(insert(FactRow.__table__).compile(dialect=conn.dialect, column_keys=names))
            for chunk in _chunks(fact_iter, batch):
                if fast:  # SQLite: tuples straight to the driver's executemany
                    conn.exec_driver_sql(sql, [_fact_tuple(f) for f in chunk])
                else:
                    conn.execute(insert(FactRow.__table__), [_fact_row(f) for f in chunk])
                counts["facts"] += len(chunk)
            for index in indexes:
                index.create(conn)
            self._log(session, who, why, "bulk_import", dict(counts))
        return counts

    # -- slots and walks ----------------------------------------------------------------------

    def current_facts(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[Fact]]:
        """Return the current facts of each (subject, relation) slot, ordered by object."""
        wanted = sorted(set(pairs))
        out: dict[tuple[str, str], list[Fact]] = {pair: [] for pair in wanted}
        subjects = sorted({s for s, _ in wanted})
        with self.transaction() as session:
            for chunk in _chunks(subjects, _IN_CHUNK):
                stmt = select(FactRow).where(
                    FactRow.subject_id.in_(chunk), FactRow.status == FactStatus.CURRENT.value
                )
                for row in session.execute(stmt).scalars():
                    key = (row.subject_id, row.relation_id)
                    if key in out:
                        out[key].append(_fact(row))
        for facts in out.values():
            facts.sort(key=lambda f: f.object)
        return out

    def incident_facts(
        self,
        entity_ids: Iterable[str],
        *,
        direction: Direction = "both",
        relations: RelationFilter | None = None,
        limit_per_entity: int | None = None,
    ) -> dict[str, list[Fact]]:
        """Return each entity's current facts in `direction`, ordered by sample key, capped.

        With a cap, each entity is one range scan of the partial index (subject|object,
        sample_key) with `LIMIT n`, all in one UNION ALL statement per chunk of entities.
        The statements are built once per shape from constant SQL with bound parameters.
        """
        if direction not in ("out", "in", "both"):
            raise ValidationError(f"direction must be 'out', 'in' or 'both', got {direction!r}")
        if isinstance(entity_ids, str):
            raise ValidationError("entity_ids must be a collection of ids, not a string")
        check_limit(limit_per_entity, "limit_per_entity")
        ids = sorted(set(entity_ids))
        columns = (
            ("subject_id", "object_id")
            if direction == "both"
            else (("subject_id",) if direction == "out" else ("object_id",))
        )
        allow = sorted(relations.allow) if relations and relations.allow is not None else None
        deny = sorted(relations.deny) if relations else []
        params: dict[str, Any] = {f"a{i}": rid for i, rid in enumerate(allow or ())}
        params.update({f"d{i}": rid for i, rid in enumerate(deny)})
        facts: list[Fact] = []
        per_stmt = _IN_CHUNK if limit_per_entity is None else max(1, 100 // len(columns))
        with self.transaction() as session:
            for chunk in _chunks(ids, per_stmt):
                shape = (columns, len(chunk), limit_per_entity is not None, allow is not None,
                         len(allow or ()), len(deny))  # fmt: skip
                stmt = self._incident_statement(shape)
                values = {**params, **{f"e{i}": e for i, e in enumerate(chunk)}}
                if limit_per_entity is not None:
                    values["lim"] = limit_per_entity
                for row in session.execute(stmt, values):
                    meta = row[6]
                    if isinstance(meta, str):
                        meta = json.loads(meta) if meta != "{}" else {}
                    facts.append(
                        Fact.trusted(
                            row[0], row[1], row[2], row[3], row[4], row[5], meta or {}, row[7]
                        )
                    )
        return group_incident(facts, ids, direction, relations, limit_per_entity)

    def _incident_statement(self, shape: tuple) -> Any:
        """Return the (cached) text statement of one query shape; only placeholders vary."""
        cached = self._statements.get(shape)
        if cached is not None:
            return cached
        columns, n_ids, limited, has_allow, n_allow, n_deny = shape
        table = self._qualified("facts")
        where = ["status = 'current'"]
        if has_allow:
            where.append(
                "relation_id IN (" + ", ".join(f":a{i}" for i in range(n_allow)) + ")"
                if n_allow
                else "1 = 0"
            )
        if n_deny:
            where.append("relation_id NOT IN (" + ", ".join(f":d{i}" for i in range(n_deny)) + ")")
        fields = "subject_id, relation_id, object_id, status, source, version, meta, id"
        if limited:
            parts = [
                f"SELECT id FROM (SELECT id FROM {table} WHERE {column} = :e{i} AND "
                + " AND ".join(where)
                + f" ORDER BY sample_key LIMIT :lim) AS t{i}_{column[0]}"
                for i in range(n_ids)
                for column in columns
            ]
            sql = f"SELECT {fields} FROM {table} WHERE id IN (" + " UNION ALL ".join(parts) + ")"
        else:
            keys = ", ".join(f":e{i}" for i in range(n_ids))
            sql = " UNION ".join(
                f"SELECT {fields} FROM {table} WHERE {column} IN ({keys}) AND "
                + " AND ".join(where)
                for column in columns
            )
        stmt = text(sql)
        self._statements[shape] = stmt
        return stmt

    def _qualified(self, table: str) -> str:
        """Return a table name quoted by the dialect, with the store's schema if it has one."""
        preparer = self._engine.dialect.identifier_preparer
        name = preparer.quote(table)
        return f"{preparer.quote_schema(self._schema)}.{name}" if self._schema else name

    # -- forget marks -------------------------------------------------------------------------

    def mark_forget(
        self,
        concept_id: str,
        change_set_id: str | None,
        who: str = "system",
        why: str = "forget",
    ) -> ForgetMark:
        """Record that a concept is to be forgotten; NotFoundError for an unknown concept."""
        _check_actor(who, why)
        with self.transaction() as session:
            if session.get(ConceptRow, concept_id) is None:
                raise NotFoundError("concept", concept_id)
            row = ForgetMarkRow(
                concept_id=concept_id,
                change_set_id=change_set_id,
                who=who,
                why=why,
                marked_at=datetime.now(UTC),
            )
            session.add(row)
            session.flush()
            payload = {"concept": concept_id, "change_set": change_set_id}
            self._log(session, who, why, "mark_forget", payload)
            return _mark(row)

    def forget_marks(self, concept_id: str | None = None) -> list[ForgetMark]:
        """Return forget marks, oldest first (of one concept if given)."""
        stmt = select(ForgetMarkRow).order_by(ForgetMarkRow.id)
        if concept_id is not None:
            stmt = stmt.where(ForgetMarkRow.concept_id == concept_id)
        with self.transaction() as session:
            return [_mark(row) for row in session.execute(stmt).scalars()]

    # -- graph version and change sets --------------------------------------------------------

    def graph_version(self) -> int:
        """Return the graph version (0 before any approved change set)."""
        with self.transaction() as session:
            row = session.get(GraphMetaRow, "graph_version")
            return 0 if row is None else int(row.value)

    def bump_graph_version(self) -> int:
        """Increase the graph version inside the current transaction and return it.

        The UPDATE takes the row's write lock first, so concurrent approvals serialise here.
        """
        with self.transaction() as session:
            bump = (
                update(GraphMetaRow)
                .where(GraphMetaRow.key == "graph_version")
                .values(value=GraphMetaRow.value + 1)
            )
            if session.execute(bump).rowcount == 0:
                session.execute(insert(GraphMetaRow), [{"key": "graph_version", "value": 1}])
            row = session.get(GraphMetaRow, "graph_version", populate_existing=True)
            assert row is not None
            return int(row.value)

    def save_change_set(self, change_set: ChangeSet, *, create: bool = False) -> ChangeSet:
        """Insert (create=True; DuplicateError if taken) or overwrite a stored change set."""
        _check_types([change_set], ChangeSet)
        values = _change_set_row(change_set)
        with self.transaction() as session:
            row = session.get(ChangeSetRow, change_set.id)
            if create:
                if row is not None:
                    raise DuplicateError(f"change set id {change_set.id!r} already exists")
                seq = session.execute(select(func.count()).select_from(ChangeSetRow)).scalar_one()
                session.add(ChangeSetRow(**values, seq=int(seq) + 1))
            else:
                if row is None:
                    raise NotFoundError("change set", change_set.id)
                for key, value in values.items():
                    setattr(row, key, value)
            session.flush()
        return change_set

    def get_change_set(self, change_set_id: str) -> ChangeSet:
        """Return one change set; NotFoundError if unknown."""
        with self.transaction() as session:
            row = session.get(ChangeSetRow, change_set_id)
            if row is None:
                raise NotFoundError("change set", change_set_id)
            return _change_set(row)

    def list_change_sets(
        self, state: ChangeSetState | str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[ChangeSet]:
        """Return change sets in creation order, optionally of one state."""
        stmt = select(ChangeSetRow).order_by(ChangeSetRow.seq, ChangeSetRow.id)
        if state is not None:
            stmt = stmt.where(ChangeSetRow.state == ChangeSetState(state).value)
        with self.transaction() as session:
            rows = session.execute(stmt.offset(offset).limit(limit)).scalars().all()
            return [_change_set(row) for row in rows]

    # -- vector cache -------------------------------------------------------------------------

    def get_vectors(self, keys: Iterable[str], model: str) -> dict[str, np.ndarray]:
        """Return cached float32 vectors of the keys stored for `model`."""
        out: dict[str, np.ndarray] = {}
        with self.transaction() as session:
            for chunk in _chunks(sorted(set(keys)), _IN_CHUNK):
                stmt = select(VectorRow.key, VectorRow.data).where(
                    VectorRow.model == model, VectorRow.key.in_(chunk)
                )
                for key, data in session.execute(stmt):
                    out[key] = np.frombuffer(data, dtype=np.float32)
        return out

    def put_vectors(self, vectors: Mapping[str, np.ndarray], model: str) -> int:
        """Store float32 vectors by key for `model` (replacing old ones); return the count."""
        check_id(model, "model")
        rows = []
        for key, vector in vectors.items():
            check_id(key, "vector key")
            arr = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)  # (d,)
            rows.append({"key": key, "model": model, "dim": int(arr.size), "data": arr.tobytes()})
        with self.transaction() as session:
            for chunk in _chunks(rows, _IN_CHUNK):
                keys = [r["key"] for r in chunk]
                session.execute(
                    VectorRow.__table__.delete().where(
                        VectorRow.model == model, VectorRow.key.in_(keys)
                    )
                )
                session.execute(insert(VectorRow), chunk)
        return len(rows)


def _mark(row: ForgetMarkRow) -> ForgetMark:
    return ForgetMark(
        concept_id=row.concept_id,
        change_set_id=row.change_set_id,
        who=row.who,
        when=_utc(row.marked_at),
        why=row.why,
        id=row.id,
    )


def _change_set_row(change_set: ChangeSet) -> dict[str, Any]:
    return {
        "id": change_set.id,
        "author": change_set.author,
        "reason": change_set.reason,
        "created_at": _utc(change_set.created_at),
        "state": ChangeSetState(change_set.state).value,
        "operations": [
            {"kind": op.kind.value, "payload": dict(op.payload)} for op in change_set.operations
        ],
        "base": [dict(slot) for slot in change_set.base],
        "graph_version": change_set.graph_version,
        "reviewer": change_set.reviewer,
        "review_note": change_set.review_note,
    }


def _change_set(row: ChangeSetRow) -> ChangeSet:
    return ChangeSet(
        id=row.id,
        author=row.author,
        reason=row.reason,
        created_at=_utc(row.created_at),
        operations=tuple(Operation(**op) for op in row.operations or ()),
        state=row.state,
        base=tuple(row.base or ()),
        graph_version=row.graph_version,
        reviewer=row.reviewer,
        review_note=row.review_note or "",
    )
