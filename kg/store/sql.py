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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Engine, create_engine, event, func, insert, select, text, tuple_, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateSchema, DropSchema

from kg.errors import ValidationError
from kg.store import core
from kg.store.base import Direction, chunks
from kg.store.core import ALL, CountBy, Counted, Ids, Page, Record, Rels, Triple, Versioned
from kg.store.migrate import VERSION_TABLE, upgrade_graph_schema
from kg.store.sql_rows import (
    FACT_COLUMNS,
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
    alias_values,
    concept_of,
    concept_values,
    entity_values,
    fact_of,
    fact_tuple,
    fact_values,
    log_entry_of,
    mark_of,
    relation_of,
    relation_values,
)
from kg.types import ChangeLogEntry, Concept, Entity, Fact, ForgetMark, Relation, check_id

DEFAULT_URL = "sqlite:///var/kg.sqlite"
T = TypeVar("T")
_IN_CHUNK = 500  # ids per IN (...) list: far below SQLite's bound-parameter limit
_ID_COLUMNS = {"entity": EntityRow.id, "relation": RelationRow.id, "concept": ConceptRow.id}
_COUNTED = {"entities": EntityRow, "relations": RelationRow, "concepts": ConceptRow}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class SqlGraphStore(core.StoreCore):
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
        aliases = [a for e in entities for a in alias_values(e.id, e.aliases, 0)]
        with self.transaction() as session:
            session.execute(insert(EntityRow), [entity_values(e) for e in entities])
            if aliases:
                session.execute(insert(AliasRow), aliases)

    def _append_alias(self, entity: Entity, alias: str) -> None:
        with self.transaction() as session:
            rows = alias_values(entity.id, [alias], len(entity.aliases))
            session.execute(insert(AliasRow), rows)

    def _insert_relations(self, relations: Sequence[Relation]) -> None:
        with self.transaction() as session:
            session.execute(insert(RelationRow), [relation_values(r) for r in relations])

    def _insert_fact(self, fact: Fact) -> Fact:
        with self.transaction() as session:
            row = FactRow(**fact_values(fact))
            session.add(row)
            session.flush()  # assigns the id
            return fact_of(row)

    def _insert_facts(self, facts: Sequence[Fact]) -> None:
        with self.transaction() as session:
            session.execute(insert(FactRow), [fact_values(f) for f in facts])

    def _retract(self, subject: str, relation: str, obj: str) -> Fact | None:
        stmt = select(FactRow).where(
            FactRow.subject_id == subject,
            FactRow.relation_id == relation,
            FactRow.object_id == obj,
            FactRow.status == core.CURRENT,
        )
        with self.transaction() as session:
            row = session.execute(stmt).scalar_one_or_none()
            if row is None:
                return None
            row.status = core.RETRACTED
            row.version = row.version + 1
            session.flush()
            return fact_of(row)

    def _insert_concept(self, concept: Concept) -> None:
        with self.transaction() as session:
            session.execute(insert(ConceptRow), [concept_values(concept)])

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
            return mark_of(row)

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

    def _bulk_write(self, checked: core.Checked, batch: int) -> int:
        """Load with the indexes dropped (one sort per index beats random inserts)."""
        entities, relations, facts = checked
        with self.transaction() as session:
            if relations:
                session.execute(insert(RelationRow), [relation_values(r) for r in relations])
            conn = session.connection()
            tables = [EntityRow.__table__, AliasRow.__table__, FactRow.__table__]
            indexes = [index for table in tables for index in table.indexes]
            for index in indexes:
                index.drop(conn)
            for chunk in chunks(entities, batch):
                conn.execute(insert(EntityRow.__table__), [entity_values(e) for e in chunk])
                aliases = [a for e in chunk for a in alias_values(e.id, e.aliases, 0)]
                if aliases:
                    conn.execute(insert(AliasRow.__table__), aliases)
            fast = self._url.get_backend_name() == "sqlite"
            table = FactRow.__table__
            sql = str(insert(table).compile(dialect=conn.dialect, column_keys=FACT_COLUMNS))
            n = 0
            for chunk in chunks(facts, batch):
                if fast:  # SQLite: tuples straight to the driver's executemany
                    conn.exec_driver_sql(sql, [fact_tuple(f) for f in chunk])
                else:
                    conn.execute(insert(table), [fact_values(f) for f in chunk])
                n += len(chunk)
            for index in indexes:
                index.create(conn)
        return n

    # -- read primitives ----------------------------------------------------------------------

    def _existing(self, kind: core.Kind, ids: Iterable[str]) -> set[str]:
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

    def _select_entities(self, ids: Ids, kind: str | None = None, page: Page = ALL) -> list[Entity]:
        with self.transaction() as session:
            if ids is not None:
                rows: list[EntityRow] = []
                for chunk in chunks(sorted(set(ids)), _IN_CHUNK):
                    stmt = select(EntityRow).where(EntityRow.id.in_(chunk))
                    rows.extend(session.execute(stmt).scalars())
                rows.sort(key=lambda r: r.id)
                return self._entities(session, rows)
            stmt = select(EntityRow).order_by(EntityRow.id).offset(page.offset).limit(page.limit)
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

    def _search_entities(self, key: str, limit: int) -> list[Entity]:
        word = " " + key
        by_alias = select(AliasRow.entity_id).where(
            AliasRow.alias_key.startswith(key, autoescape=True)
            | AliasRow.alias_key.contains(word, autoescape=True)
        )
        stmt = (
            select(EntityRow)
            .where(
                EntityRow.name_key.startswith(key, autoescape=True)
                | EntityRow.name_key.contains(word, autoescape=True)
                | EntityRow.id.in_(by_alias)
            )
            .order_by(EntityRow.id)
            .limit(limit)
        )
        with self.transaction() as session:
            return self._entities(session, session.execute(stmt).scalars().all())

    def _select_by_id(self, row_type: Any, ids: Ids, convert: Callable[[Any], T]) -> list[T]:
        """Return rows of a table keyed by `id`, converted, ordered by id (of the ids, or all)."""
        stmt = select(row_type).order_by(row_type.id)
        if ids is not None:
            stmt = stmt.where(row_type.id.in_(sorted(set(ids))))
        with self.transaction() as session:
            return [convert(row) for row in session.execute(stmt).scalars()]

    def _select_relations(self, ids: Ids = None) -> list[Relation]:
        return self._select_by_id(RelationRow, ids, relation_of)

    def _select_facts(self, query: core.FactQuery) -> list[Fact]:
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
                return [fact_of(row) for row in session.execute(stmt).scalars()]
            out: list[FactRow] = []
            for chunk in chunks(query.subjects, _IN_CHUNK):
                out.extend(session.execute(stmt.where(FactRow.subject_id.in_(chunk))).scalars())
            out.sort(key=lambda row: row.id)
            end = None if query.limit is None else query.offset + query.limit
            return [fact_of(row) for row in out[query.offset : end]]

    def _stored_versions(self, triples: list[Triple], current_only: bool) -> list[Versioned]:
        """Look up exactly the triples at hand (index on the triple), never a hub's every fact."""
        columns = (FactRow.subject_id, FactRow.relation_id, FactRow.object_id, FactRow.status,
                   FactRow.version)  # fmt: skip
        triple = tuple_(FactRow.subject_id, FactRow.relation_id, FactRow.object_id)
        out: list[tuple[str, str, str, str, int]] = []
        with self.transaction() as session:
            for chunk in chunks(triples, _IN_CHUNK // 2):
                stmt = select(*columns).where(triple.in_(chunk))
                if current_only:
                    stmt = stmt.where(FactRow.status == core.CURRENT)
                out.extend(tuple(row) for row in session.execute(stmt))
        return out

    def _incident(self, ids: list[str], way: Direction, rels: Rels, cap: int | None) -> list[Fact]:
        """Serve the walk from the partial indexes (subject|object, sample_key).

        With a cap, each entity is one range scan with `LIMIT n`, all in one UNION ALL
        statement per chunk of entities. Statements are built once per shape from constant
        SQL with bound parameters.
        """
        columns = (
            ("subject_id", "object_id")
            if way == "both"
            else (("subject_id",) if way == "out" else ("object_id",))
        )
        allow = sorted(rels.allow) if rels and rels.allow is not None else None
        deny = sorted(rels.deny) if rels else []
        params: dict[str, Any] = {f"a{i}": rid for i, rid in enumerate(allow or ())}
        params.update({f"d{i}": rid for i, rid in enumerate(deny)})
        facts: list[Fact] = []
        per_stmt = _IN_CHUNK if cap is None else max(1, 100 // len(columns))
        with self.transaction() as session:
            for chunk in chunks(ids, per_stmt):
                shape = (columns, len(chunk), cap is not None, allow is not None,
                         len(allow or ()), len(deny))  # fmt: skip
                stmt = self._incident_statement(shape)
                values = {**params, **{f"e{i}": e for i, e in enumerate(chunk)}}
                if cap is not None:
                    values["lim"] = cap
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

    def _select_concepts(self, ids: Ids = None) -> list[Concept]:
        return self._select_by_id(ConceptRow, ids, concept_of)

    def _select_marks(self, concept_id: str | None) -> list[ForgetMark]:
        stmt = select(ForgetMarkRow).order_by(ForgetMarkRow.id)
        if concept_id is not None:
            stmt = stmt.where(ForgetMarkRow.concept_id == concept_id)
        with self.transaction() as session:
            return [mark_of(row) for row in session.execute(stmt).scalars()]

    def _select_change_sets(self, key: str | None, state: str | None, page: Page) -> list[Record]:
        stmt = select(ChangeSetRow).order_by(ChangeSetRow.seq, ChangeSetRow.id)
        if key is not None:
            stmt = stmt.where(ChangeSetRow.id == key)
        if state is not None:
            stmt = stmt.where(ChangeSetRow.state == state)
        with self.transaction() as session:
            rows = session.execute(stmt.offset(page.offset).limit(page.limit)).scalars().all()
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
            return [log_entry_of(row) for row in session.execute(stmt).scalars()]

    def _count(self, kind: Counted) -> int:
        with self.transaction() as session:
            stmt = select(func.count()).select_from(_COUNTED[kind])
            return int(session.execute(stmt).scalar_one())

    def _fact_counts(self, by: CountBy, status: str | None, source: str | None) -> dict[str, int]:
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
