"""SQL graph store on SQLAlchemy 2: SQLite (default, WAL mode) or PostgreSQL.

The public contract, its checks and the change log come from `kg.store.core.StoreCore`; this
module holds the SQL primitives. Methods called inside `with store.transaction():` share one
session, so a multi-step import commits all or nothing. All statements are SQLAlchemy
expressions or constant text with bound parameters; no user data is formatted into SQL.
The tables (`kg.store.sql_rows`) are built and upgraded by the graph migrations
(`kg.store.migrate`) when a store opens a fresh or older database.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sqlalchemy import (
    Engine,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateSchema, DropSchema

from kg.errors import ValidationError
from kg.store.base import Direction, RelationFilter, chunks, sample_key
from kg.store.core import FactQuery, Kind, StoreCore, utc
from kg.store.migrate import VERSION_TABLE, upgrade_graph_schema
from kg.store.sql_rows import (
    AliasRow,
    Base,
    ChangeLogRow,
    ChangeSetRow,
    ConceptRow,
    EntityRow,
    FactRow,
    ForgetMarkRow,
    GraphMetaRow,
    RelationRow,
    VectorRow,
)
from kg.types import (
    ChangeLogEntry,
    Concept,
    Entity,
    Fact,
    FactStatus,
    ForgetMark,
    Relation,
    RelationTemplates,
    check_id,
    name_key,
)

DEFAULT_URL = "sqlite:///var/kg.sqlite"
_IN_CHUNK = 500  # ids per IN (...) list: far below SQLite's bound-parameter limit
_ID_COLUMNS = {"entity": EntityRow.id, "relation": RelationRow.id, "concept": ConceptRow.id}
_COUNTED = {"entities": EntityRow, "relations": RelationRow, "concepts": ConceptRow}
_FACT_NAMES = ["subject_id", "relation_id", "object_id", "status", "source", "version", "meta",
               "sample_key"]  # fmt: skip


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
    """Return a fact's column values in `_FACT_NAMES` order (meta as JSON text)."""
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


def _relation_row(relation: Relation) -> dict[str, Any]:
    return {
        "id": relation.id,
        "label": relation.label,
        "templates": relation.templates.to_dict(),
        "functional": relation.functional,
    }


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


def _alias_rows(entity_id: str, aliases: Iterable[str], start: int) -> list[dict[str, Any]]:
    """Return alias rows, duplicates dropped, positions from `start`."""
    names = list(dict.fromkeys(aliases))
    return [
        {"entity_id": entity_id, "alias": a, "alias_key": name_key(a), "position": start + i}
        for i, a in enumerate(names)
    ]


def _entity_row(entity: Entity) -> dict[str, Any]:
    return {
        "id": entity.id,
        "name": entity.name,
        "name_key": name_key(entity.name),
        "kind": entity.kind,
    }


class SqlGraphStore(StoreCore):
    """Graph store on SQLite (default file `./var/kg.sqlite`) or PostgreSQL.

    `schema` (PostgreSQL only) puts the tables in that schema, creating it if needed.
    `create=False` opens the database without migrating it (`kgedit db upgrade` does that).
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
        """Bring the graph tables up to the latest migration (creating them if needed)."""
        upgrade_graph_schema(self._engine, self._schema)

    def drop_schema(self) -> None:
        """Drop every table of the store (and its PostgreSQL schema, if one was given)."""
        Base.metadata.drop_all(self._engine)
        with self._engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {self._qualified(VERSION_TABLE)}"))
            if self._schema is not None:
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

    def _qualified(self, table: str) -> str:
        """Return a table name quoted by the dialect, with the store's schema if it has one."""
        preparer = self._engine.dialect.identifier_preparer
        name = preparer.quote(table)
        return f"{preparer.quote_schema(self._schema)}.{name}" if self._schema else name

    # -- write primitives ---------------------------------------------------------------------

    def _log(self, who: str, why: str, action: str, payload: dict[str, Any]) -> None:
        row = {"who": who, "why": why, "action": action, "payload": payload,
               "logged_at": datetime.now(UTC)}  # fmt: skip
        with self.transaction() as session:
            session.execute(insert(ChangeLogRow), [row])

    def _insert_entities(self, entities: Sequence[Entity]) -> None:
        aliases = [a for e in entities for a in _alias_rows(e.id, e.aliases, 0)]
        with self.transaction() as session:
            session.execute(insert(EntityRow), [_entity_row(e) for e in entities])
            if aliases:
                session.execute(insert(AliasRow), aliases)

    def _append_alias(self, entity: Entity, alias: str) -> None:
        with self.transaction() as session:
            rows = _alias_rows(entity.id, [alias], len(entity.aliases))
            session.execute(insert(AliasRow), rows)

    def _insert_relations(self, relations: Sequence[Relation]) -> None:
        with self.transaction() as session:
            session.execute(insert(RelationRow), [_relation_row(r) for r in relations])

    def _insert_facts(self, facts: Sequence[Fact]) -> list[Fact]:
        with self.transaction() as session:
            if len(facts) == 1:  # one row: the ORM returns its id
                row = FactRow(**_fact_row(facts[0]))
                session.add(row)
                session.flush()
                return [_fact(row)]
            table = FactRow.__table__
            stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            ids = [r[0] for r in session.execute(stmt, [_fact_row(f) for f in facts])]
        return [
            Fact(f.subject, f.relation, f.object, f.status, f.source, f.version, f.meta, fid)
            for fid, f in zip(ids, facts, strict=True)
        ]

    def _retract(self, subject: str, relation: str, obj: str) -> Fact | None:
        stmt = select(FactRow).where(
            FactRow.subject_id == subject,
            FactRow.relation_id == relation,
            FactRow.object_id == obj,
            FactRow.status == FactStatus.CURRENT.value,
        )
        with self.transaction() as session:
            row = session.execute(stmt).scalar_one_or_none()
            if row is None:
                return None
            row.status = FactStatus.RETRACTED.value
            row.version = row.version + 1
            session.flush()
            return _fact(row)

    def _insert_concept(self, concept: Concept) -> None:
        row = {
            "id": concept.id,
            "name": concept.name,
            "name_key": name_key(concept.name),
            "aliases": list(concept.aliases),
            "redirect_to": concept.redirect_to,
            "entities": list(concept.entities),
        }
        with self.transaction() as session:
            session.execute(insert(ConceptRow), [row])

    def _set_redirect(self, concept_id: str, anchor_id: str | None) -> None:
        stmt = update(ConceptRow).where(ConceptRow.id == concept_id).values(redirect_to=anchor_id)
        with self.transaction() as session:
            session.execute(stmt)

    def _insert_mark(self, mark: ForgetMark) -> ForgetMark:
        row = ForgetMarkRow(
            concept_id=mark.concept_id,
            change_set_id=mark.change_set_id,
            who=mark.who,
            why=mark.why,
            marked_at=mark.when,
        )
        with self.transaction() as session:
            session.add(row)
            session.flush()
            return _mark(row)

    def _write_change_set(self, record: dict[str, Any], *, create: bool) -> None:
        with self.transaction() as session:
            if create:
                seq = session.execute(select(func.count()).select_from(ChangeSetRow)).scalar_one()
                session.add(ChangeSetRow(**record, seq=int(seq) + 1))
            else:
                row = session.get(ChangeSetRow, record["id"])
                for key, value in record.items():
                    setattr(row, key, value)
            session.flush()

    def _write_vectors(self, rows: Sequence[tuple[str, np.ndarray]], model: str) -> None:
        with self.transaction() as session:
            for chunk in chunks(rows, _IN_CHUNK):
                keys = [key for key, _ in chunk]
                session.execute(
                    VectorRow.__table__.delete().where(
                        VectorRow.model == model, VectorRow.key.in_(keys)
                    )
                )
                values = [{"key": key, "model": model, "dim": int(arr.size),
                           "data": arr.tobytes()} for key, arr in chunk]  # fmt: skip
                session.execute(insert(VectorRow), values)

    def _bump(self, counter: str) -> int:
        """Bump with an UPDATE: it takes the row's write lock first, so callers serialise."""
        with self.transaction() as session:
            bump = (
                update(GraphMetaRow)
                .where(GraphMetaRow.key == counter)
                .values(value=GraphMetaRow.value + 1)
            )
            if session.execute(bump).rowcount == 0:
                session.execute(insert(GraphMetaRow), [{"key": counter, "value": 1}])
            row = session.get(GraphMetaRow, counter, populate_existing=True)
            assert row is not None
            return int(row.value)

    def _bulk_write(
        self,
        entities: Sequence[Entity],
        relations: Sequence[Relation],
        facts: Iterator[Fact],
        batch: int,
    ) -> int:
        """Load with the indexes dropped (one sort per index beats random inserts)."""
        with self.transaction() as session:
            if relations:
                session.execute(insert(RelationRow), [_relation_row(r) for r in relations])
            conn = session.connection()
            tables = [EntityRow.__table__, AliasRow.__table__, FactRow.__table__]
            indexes = [index for table in tables for index in table.indexes]
            for index in indexes:
                index.drop(conn)
            for chunk in chunks(entities, batch):
                conn.execute(insert(EntityRow.__table__), [_entity_row(e) for e in chunk])
                aliases = [a for e in chunk for a in _alias_rows(e.id, e.aliases, 0)]
                if aliases:
                    conn.execute(insert(AliasRow.__table__), aliases)
            fast = self._url.get_backend_name() == "sqlite"
            table = FactRow.__table__
            sql = str(insert(table).compile(dialect=conn.dialect, column_keys=_FACT_NAMES))
            n = 0
            for chunk in chunks(facts, batch):
                if fast:  # SQLite: tuples straight to the driver's executemany
                    conn.exec_driver_sql(sql, [_fact_tuple(f) for f in chunk])
                else:
                    conn.execute(insert(table), [_fact_row(f) for f in chunk])
                n += len(chunk)
            for index in indexes:
                index.create(conn)
        return n

    # -- read primitives ----------------------------------------------------------------------

    def _existing(self, kind: Kind, ids: Iterable[str]) -> set[str]:
        column = _ID_COLUMNS[kind]
        found: set[str] = set()
        with self.transaction() as session:
            for chunk in chunks(sorted(set(ids)), _IN_CHUNK):
                found.update(session.execute(select(column).where(column.in_(chunk))).scalars())
        return found

    def _entities(self, session: Session, rows: Sequence[EntityRow]) -> list[Entity]:
        """Return entities of rows with their aliases in order."""
        aliases: dict[str, list[str]] = {}
        for chunk in chunks(sorted({row.id for row in rows}), _IN_CHUNK):
            stmt = (
                select(AliasRow.entity_id, AliasRow.alias)
                .where(AliasRow.entity_id.in_(chunk))
                .order_by(AliasRow.entity_id, AliasRow.position)
            )
            for entity_id, alias in session.execute(stmt):
                aliases.setdefault(entity_id, []).append(alias)
        return [
            Entity(id=row.id, name=row.name, aliases=tuple(aliases.get(row.id, ())), kind=row.kind)
            for row in rows
        ]

    def _select_entities(
        self,
        ids: Iterable[str] | None = None,
        *,
        kind: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Entity]:
        with self.transaction() as session:
            if ids is not None:
                rows: list[EntityRow] = []
                for chunk in chunks(sorted(set(ids)), _IN_CHUNK):
                    stmt = select(EntityRow).where(EntityRow.id.in_(chunk))
                    rows.extend(session.execute(stmt).scalars())
                rows.sort(key=lambda r: r.id)
                return self._entities(session, rows)
            stmt = select(EntityRow).order_by(EntityRow.id).offset(offset).limit(limit)
            if kind is not None:
                stmt = stmt.where(EntityRow.kind == kind)
            return self._entities(session, session.execute(stmt).scalars().all())

    def entity_names(self, ids: Iterable[str]) -> dict[str, str]:
        """Return {id: name} for the given ids (one query per chunk, aliases not read)."""
        out: dict[str, str] = {}
        with self.transaction() as session:
            for chunk in chunks(sorted(set(ids)), _IN_CHUNK):
                stmt = select(EntityRow.id, EntityRow.name).where(EntityRow.id.in_(chunk))
                out.update({row.id: row.name for row in session.execute(stmt)})
        return out

    def _find_entities(self, key: str) -> list[Entity]:
        by_alias = select(AliasRow.entity_id).where(AliasRow.alias_key == key)
        stmt = (
            select(EntityRow)
            .where((EntityRow.name_key == key) | EntityRow.id.in_(by_alias))
            .order_by(EntityRow.id)
        )
        with self.transaction() as session:
            return self._entities(session, session.execute(stmt).scalars().all())

    def _select_relations(self, ids: Iterable[str] | None = None) -> list[Relation]:
        stmt = select(RelationRow).order_by(RelationRow.id)
        if ids is not None:
            stmt = stmt.where(RelationRow.id.in_(sorted(set(ids))))
        with self.transaction() as session:
            return [_relation(row) for row in session.execute(stmt).scalars()]

    def _select_facts(self, query: FactQuery) -> list[Fact]:
        stmt = select(FactRow).order_by(FactRow.id)
        for column, value in (
            (FactRow.id, query.id),
            (FactRow.object_id, query.object),
            (FactRow.relation_id, query.relation),
            (FactRow.status, query.status),
            (FactRow.source, query.source),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        with self.transaction() as session:
            if query.subjects is None:
                stmt = stmt.offset(query.offset).limit(query.limit)
                return [_fact(row) for row in session.execute(stmt).scalars()]
            out: list[FactRow] = []
            for chunk in chunks(query.subjects, _IN_CHUNK):
                out.extend(session.execute(stmt.where(FactRow.subject_id.in_(chunk))).scalars())
            out.sort(key=lambda row: row.id)
            end = None if query.limit is None else query.offset + query.limit
            return [_fact(row) for row in out[query.offset : end]]

    def _stored_versions(
        self, triples: Sequence[tuple[str, str, str]], *, current_only: bool
    ) -> Iterable[tuple[str, str, str, str, int]]:
        """Look up exactly the triples at hand (index on the triple), never a hub's every fact."""
        columns = (FactRow.subject_id, FactRow.relation_id, FactRow.object_id, FactRow.status,
                   FactRow.version)  # fmt: skip
        triple = tuple_(FactRow.subject_id, FactRow.relation_id, FactRow.object_id)
        out: list[tuple[str, str, str, str, int]] = []
        with self.transaction() as session:
            for chunk in chunks(triples, _IN_CHUNK // 2):
                stmt = select(*columns).where(triple.in_(chunk))
                if current_only:
                    stmt = stmt.where(FactRow.status == FactStatus.CURRENT.value)
                out.extend(tuple(row) for row in session.execute(stmt))
        return out

    def _incident(
        self,
        ids: Sequence[str],
        direction: Direction,
        relations: RelationFilter | None,
        limit_per_entity: int | None,
    ) -> list[Fact]:
        """Serve the walk from the partial indexes (subject|object, sample_key).

        With a cap, each entity is one range scan with `LIMIT n`, all in one UNION ALL
        statement per chunk of entities. Statements are built once per shape from constant
        SQL with bound parameters.
        """
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
            for chunk in chunks(ids, per_stmt):
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
        return facts

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

    def _select_concepts(self, ids: Iterable[str] | None = None) -> list[Concept]:
        stmt = select(ConceptRow).order_by(ConceptRow.id)
        if ids is not None:
            stmt = stmt.where(ConceptRow.id.in_(sorted(set(ids))))
        with self.transaction() as session:
            return [_concept(row) for row in session.execute(stmt).scalars()]

    def _select_marks(self, concept_id: str | None) -> list[ForgetMark]:
        stmt = select(ForgetMarkRow).order_by(ForgetMarkRow.id)
        if concept_id is not None:
            stmt = stmt.where(ForgetMarkRow.concept_id == concept_id)
        with self.transaction() as session:
            return [_mark(row) for row in session.execute(stmt).scalars()]

    def _select_change_sets(
        self,
        change_set_id: str | None = None,
        state: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        stmt = select(ChangeSetRow).order_by(ChangeSetRow.seq, ChangeSetRow.id)
        if change_set_id is not None:
            stmt = stmt.where(ChangeSetRow.id == change_set_id)
        if state is not None:
            stmt = stmt.where(ChangeSetRow.state == state)
        with self.transaction() as session:
            rows = session.execute(stmt.offset(offset).limit(limit)).scalars().all()
            names = [c.key for c in ChangeSetRow.__table__.columns if c.key != "seq"]
            return [{name: getattr(row, name) for name in names} for row in rows]

    def _select_vectors(self, keys: Sequence[str], model: str) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        with self.transaction() as session:
            for chunk in chunks(keys, _IN_CHUNK):
                stmt = select(VectorRow.key, VectorRow.data).where(
                    VectorRow.model == model, VectorRow.key.in_(chunk)
                )
                for key, data in session.execute(stmt):
                    out[key] = np.frombuffer(data, dtype=np.float32)
        return out

    def _select_log(self, limit: int | None, action: str | None) -> list[ChangeLogEntry]:
        stmt = select(ChangeLogRow).order_by(ChangeLogRow.id).limit(limit)
        if action is not None:
            stmt = stmt.where(ChangeLogRow.action == action)
        with self.transaction() as session:
            return [
                ChangeLogEntry(
                    who=row.who,
                    when=utc(row.logged_at),
                    why=row.why,
                    action=row.action,
                    payload=dict(row.payload or {}),
                    id=row.id,
                )
                for row in session.execute(stmt).scalars()
            ]

    def _count(self, kind: Literal["entities", "relations", "concepts"]) -> int:
        with self.transaction() as session:
            stmt = select(func.count()).select_from(_COUNTED[kind])
            return int(session.execute(stmt).scalar_one())

    def _fact_counts(
        self, by: Literal["all", "source", "subject"], status: str | None, source: str | None
    ) -> dict[str, int]:
        group = {"all": None, "source": FactRow.source, "subject": FactRow.subject_id}[by]
        stmt = select(func.count()).select_from(FactRow)
        if group is not None:
            stmt = select(group, func.count()).group_by(group)
        if status is not None:
            stmt = stmt.where(FactRow.status == status)
        if source is not None:
            stmt = stmt.where(FactRow.source == source)
        with self.transaction() as session:
            if group is None:
                return {"": int(session.execute(stmt).scalar_one())}
            return {key: int(n) for key, n in session.execute(stmt)}

    def _counter(self, counter: str) -> int:
        with self.transaction() as session:
            row = session.get(GraphMetaRow, counter)
            return 0 if row is None else int(row.value)


def _mark(row: ForgetMarkRow) -> ForgetMark:
    return ForgetMark(
        concept_id=row.concept_id,
        change_set_id=row.change_set_id,
        who=row.who,
        when=utc(row.marked_at),
        why=row.why,
        id=row.id,
    )
