"""Graph store on Neo4j 5 through the official `neo4j` driver (also FalkorDB over Bolt).

The public contract, its checks and the change log come from `kg.store.core.StoreCore`; this
module holds the Bolt connection, FalkorDB's workarounds and the Cypher primitives.

- Cypher with parameters only: every statement is a constant of `kg.store.cypher`.
- Writes go as batched `UNWIND $rows`; `batch_size` rows per request (URL `?batch_size=`).
- Uniqueness constraints and indexes are created on first use.
- Every call runs in an explicit transaction; calls inside `with store.transaction():` share it.

Entities, relations, concepts, change sets, forget marks, vectors, counters and log entries
are nodes; a fact is a `(:Entity)-[:FACT {id, rel, status, source, version, meta, skey}]->
(:Entity)` relationship. JSON fields are stored as JSON strings and times as ISO strings.

**FalkorDB** (`server="falkordb"`, or detected: it has no `dbms.components()`) speaks Bolt
with limits found by probing FalkorDB 4.16 (docs/graph.md), which the store works around:

- a request over about 4 KB crashes the server: batches hold at most 50 rows and stay under
  `max_request_bytes` (3,000); relation templates over the budget are written in parts
  (`SET r.templates = r.templates + $part`), any other value too large for one request is
  refused up front;
- it splices parameters into the query text without escaping `'` and `\\`: string values are
  sent with `%`, `'` and `\\` percent-encoded (`%25`, `%27`, `%5C`) and decoded on the way
  back, so any name round-trips as plain data;
- returning temporal values crashes it: none are stored (ISO strings instead);
- `CREATE CONSTRAINT` is unsupported: uniqueness is checked by the store before writing;
- rollback is a no-op: the store validates every input before its first write, but a
  transaction that fails half-way through leaves its earlier writes on FalkorDB;
- `database` is ignored: every store on one FalkorDB server shares its graph.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import numpy as np

from kg.errors import BackendError, DuplicateError, ValidationError
from kg.store import core
from kg.store import cypher as q
from kg.store.base import Direction, chunks, sample_key
from kg.store.bolt import falkor_decode, falkor_encode, release_driver, shared_driver
from kg.store.core import ALL, CountBy, Counted, Ids, Page, Record, Rels, Triple, Versioned
from kg.types import ChangeLogEntry, Concept, Entity, Fact, ForgetMark, Relation, name_key

NEO4J, FALKORDB = "neo4j", "falkordb"
FALKOR_BATCH = 50
FALKOR_MAX_REQUEST = 3_000  # bytes; the server crashes on Bolt messages over about 4 KB
FALKOR_MAX_WHY = 1_500
NO_LIMIT = 2**31 - 1  # FalkorDB returns no rows for a LIMIT of 2**32 or more
_LOOKUP_CHUNK = 500


def _utc_now() -> str:
    return datetime.now(UTC).isoformat()


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class Neo4jGraphStore(core.StoreCore):
    """Graph store on a Bolt server: Neo4j 5 (`bolt://`, `neo4j://`) or FalkorDB (`bolt://`).

    `uri` may carry `user:password@` and the query options `server` (`neo4j`, `falkordb`,
    `auto`), `batch_size` and `database`; keyword arguments override them.
    """

    def __init__(
        self,
        uri: str,
        *,
        auth: tuple[str, str] | None = None,
        database: str | None = None,
        batch_size: int | None = None,
        server: str | None = None,
        max_request_bytes: int | None = None,
        connect_timeout: float = 10.0,
    ) -> None:

        parts = urlsplit(uri)
        if parts.scheme not in ("bolt", "neo4j", "bolt+s", "neo4j+s", "bolt+ssc", "neo4j+ssc"):
            raise ValidationError(f"not a Bolt URL: {parts.scheme!r} (use bolt:// or neo4j://)")
        options = dict(parse_qsl(parts.query))
        unknown = set(options) - {"server", "batch_size", "database"}
        if unknown:
            raise ValidationError(f"unknown Neo4j URL options: {sorted(unknown)}")
        if auth is None and parts.username:
            auth = (unquote(parts.username), unquote(parts.password or ""))
        host = parts.hostname or "localhost"
        netloc = f"{host}:{parts.port}" if parts.port else host
        self._uri = urlunsplit((parts.scheme, netloc, "", "", ""))
        self._user = auth[0] if auth else None
        self._database = database or options.get("database") or None
        self._server = (server or options.get("server") or "auto").lower()
        if self._server not in ("auto", NEO4J, FALKORDB):
            raise ValidationError(f"server must be neo4j, falkordb or auto, got {self._server!r}")
        size = batch_size if batch_size is not None else int(options.get("batch_size", 500))
        if not isinstance(size, int) or size < 1:
            raise ValidationError(f"batch_size must be a positive integer, got {size!r}")
        self._batch_size = size
        self._max_request = max_request_bytes
        self._driver = shared_driver(self._uri, auth, connect_timeout, pinned=self._server)
        self._local = threading.local()
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        if self._server == "auto":
            self._server = self._detect_server()
        if self._server == FALKORDB:
            self._batch_size = min(self._batch_size, FALKOR_BATCH)
            self._max_request = self._max_request or FALKOR_MAX_REQUEST
            self.max_why = FALKOR_MAX_WHY
            self.log_list_cap = 10

    # -- connection, codec, transactions ------------------------------------------------------

    @property
    def url(self) -> str:
        """Return the Bolt URL (user shown, password never)."""
        parts = urlsplit(self._uri)
        netloc = f"{self._user}@{parts.netloc}" if self._user else parts.netloc
        return urlunsplit((parts.scheme, netloc, "", f"server={self._server}", ""))

    @property
    def server(self) -> str:
        """Return `neo4j` or `falkordb`."""
        return self._server

    @property
    def batch_size(self) -> int:
        """Return the rows per UNWIND request."""
        return self._batch_size

    def close(self) -> None:
        """Release this store's hold on the shared driver (closed when the last store goes)."""
        if not getattr(self, "_closed", False):
            self._closed = True
            release_driver(self._driver, keep_open=self._server == FALKORDB)

    def _detect_server(self) -> str:
        """Return `neo4j` if the server answers `dbms.components()`, else `falkordb`."""
        import neo4j.exceptions as nx

        try:
            with self._driver.session(database=self._database) as session:
                names = [r["name"] for r in session.run(q.SERVER_KIND)]
        except nx.ServiceUnavailable as exc:
            raise BackendError(f"graph server at {self._uri} is unreachable: {exc}") from exc
        except nx.Neo4jError:
            return FALKORDB
        return NEO4J if any("neo4j" in str(n).lower() for n in names) else FALKORDB

    def _encode(self, value: Any) -> Any:
        """Return `value` with strings made safe for the server (FalkorDB escaping bug)."""
        return falkor_encode(value) if self._server == FALKORDB else value

    def _decode(self, value: Any) -> Any:
        """Undo `_encode` on values read back."""
        return falkor_decode(value) if self._server == FALKORDB else value

    @staticmethod
    def _size(query: str, params: Mapping[str, Any]) -> int:
        """Return an upper estimate of a request's size on the wire, in bytes."""
        return len(query.encode()) + len(json.dumps(params, default=str).encode())

    def _ensure_schema(self) -> None:
        """Create constraints and indexes once per store (first use)."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            try:
                with self._driver.session(database=self._database) as session:
                    if self._server == NEO4J:
                        for statement in q.NEO4J_SCHEMA:
                            session.run(statement).consume()
                    else:
                        have = set()
                        for row in session.run(q.LIST_INDEXES):
                            data = row.data()
                            rel = str(data.get("entitytype", "NODE")).upper() != "NODE"
                            for prop in data.get("properties") or ():
                                have.add((data.get("label"), prop, rel))
                        for key, statement in q.FALKOR_INDEXES.items():
                            if key not in have:
                                session.run(statement).consume()
            except Exception as exc:
                raise BackendError(f"creating the graph schema failed: {exc}") from exc
            self._schema_ready = True

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """Run the enclosed store calls in one explicit transaction (commit or roll back)."""
        current = getattr(self._local, "tx", None)
        if current is not None:
            yield current
            return
        self._ensure_schema()
        import neo4j.exceptions as nx

        for attempt in (1, 2):  # FalkorDB fails the first handshake after a closed connection
            try:
                session = self._driver.session(database=self._database)
                tx = session.begin_transaction()
                break
            except nx.ServiceUnavailable as exc:
                if attempt == 2:
                    msg = f"graph server at {self._uri} is unreachable: {exc}"
                    raise BackendError(msg) from exc
        self._local.tx = tx
        try:
            yield tx
        except BaseException:
            self._local.tx = None
            try:
                tx.rollback()
            finally:
                session.close()
            raise
        self._local.tx = None
        try:
            tx.commit()
        except nx.Neo4jError as exc:
            raise BackendError(f"commit failed: {exc}") from exc
        finally:
            session.close()

    def _run(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """Run one constant statement with parameters in the current transaction."""
        import neo4j.exceptions as nx

        encoded = {k: self._encode(v) for k, v in params.items()}
        if self._max_request is not None and self._size(query, encoded) > self._max_request:
            raise ValidationError(
                f"request of {self._size(query, encoded)} bytes exceeds this server's limit of "
                f"{self._max_request} bytes per Bolt request (FalkorDB); shorten the values"
            )
        with self.transaction() as tx:
            try:
                result = tx.run(query, encoded)
                records = [record.data() for record in result]
            except nx.ConstraintError as exc:
                raise DuplicateError(f"the graph server refused a duplicate: {exc}") from exc
            except (nx.Neo4jError, nx.DriverError) as exc:
                detail = str(exc) or type(exc).__name__
                raise BackendError(f"graph query failed: {detail}") from exc
        return [self._decode(r) for r in records]

    def _batches(self, query: str, rows: Sequence[dict[str, Any]], **extra: Any) -> Iterator[list]:
        """Yield slices of rows that fit `batch_size` and the request byte budget."""
        budget = self._max_request
        base = self._size(query, {k: self._encode(v) for k, v in extra.items()}) + 16
        batch: list[dict[str, Any]] = []
        used = base
        for row in rows:
            size = len(json.dumps(self._encode(row), default=str).encode()) + 2
            full = len(batch) >= self._batch_size or (
                budget is not None and batch and used + size > budget
            )
            if full:
                yield batch
                batch, used = [], base
            if budget is not None and base + size > budget:
                raise ValidationError(
                    f"one row of {size} bytes does not fit this server's {budget}-byte Bolt "
                    f"request limit (FalkorDB): {str(row)[:120]}"
                )
            batch.append(row)
            used += size
        if batch:
            yield batch

    def _write(self, query: str, rows: Sequence[dict[str, Any]], **extra: Any) -> None:
        """Run `UNWIND $rows` statement `query` in batches."""
        batches = list(self._batches(query, rows, **extra))  # every size checked before writing
        for batch in batches:
            self._run(query, rows=batch, **extra)

    def _write_split(
        self, query: str, rows: Sequence[dict[str, Any]], field: str, append: str
    ) -> None:
        """Run `_write`; a row over the request budget sends its text `field` in parts after it.

        Only FalkorDB has a budget. `append` adds `$part` to the field of node `$id`.
        """
        parts: list[tuple[str, str]] = []
        if self._max_request is not None:
            base = self._size(query, {}) + 16
            fitted = []
            for row in rows:
                size = len(json.dumps(self._encode(row), default=str).encode()) + 2
                if base + size > self._max_request:
                    parts.append((row["id"], row[field]))
                    row = {**row, field: ""}
                fitted.append(row)
            rows = fitted
        with self.transaction():
            self._write(query, rows)
            for key, value in parts:
                budget = self._max_request or 0
                room = budget - self._size(append, {"id": self._encode(key), "part": ""}) - 16
                step = max(1, room // 12)  # one character costs at most 12 bytes as JSON
                for start in range(0, len(value), step):
                    self._run(append, id=key, part=value[start : start + step])

    def _lookup(self, query: str, ids: Iterable[Any], **extra: Any) -> list[dict[str, Any]]:
        """Run `UNWIND $ids` statement `query` over ids in request-sized chunks."""
        out: list[dict[str, Any]] = []
        items = sorted(set(ids))
        size = self._batch_size * 4 if self._server == FALKORDB else _LOOKUP_CHUNK
        for chunk in chunks(items, size):
            for part in self._batches(query, chunk, **extra) if self._max_request else [chunk]:
                out.extend(self._run(query, ids=part, **extra))
        return out

    def _next_ids(self, name: str, n: int) -> list[int]:
        """Reserve n consecutive ids from the named counter."""
        if n <= 0:
            return []
        last = int(self._run(q.NEXT_IDS, name=name, n=n)[0]["last"])
        return list(range(last - n + 1, last + 1))

    def drop_all(self) -> None:
        """Delete every node kgedit created (all labels of `cypher.KG_LABELS`), in batches."""
        for label in q.KG_LABELS:
            while True:
                with self.transaction():
                    gone = self._run(q.DELETE_SOME[label], n=1000)
                if not gone or int(gone[0]["gone"]) == 0:
                    break

    # -- write primitives ---------------------------------------------------------------------

    def _log(self, who: str, why: str, action: str, payload: dict[str, Any]) -> None:
        (entry_id,) = self._next_ids("log", 1)
        self._run(
            q.CREATE_LOG,
            id=entry_id,
            who=who,
            why=why,
            action=action,
            payload=json.dumps(payload, sort_keys=True),
            at=_utc_now(),
        )

    def _insert_entities(self, entities: Sequence[Entity]) -> None:
        rows, aliases = [], []
        for entity in entities:
            names = list(dict.fromkeys(entity.aliases))
            rows.append(
                {
                    "id": entity.id,
                    "name": entity.name,
                    "name_key": name_key(entity.name),
                    "kind": entity.kind,
                    "aliases": names,
                }
            )
            aliases += [{"key": name_key(a), "alias": a, "entity_id": entity.id} for a in names]
        with self.transaction():
            self._write(q.CREATE_ENTITIES, rows)
            self._write(q.CREATE_ALIASES, aliases)

    def _append_alias(self, entity: Entity, alias: str) -> None:
        with self.transaction():
            self._run(q.SET_ALIASES, id=entity.id, aliases=[*entity.aliases, alias])
            row = {"key": name_key(alias), "alias": alias, "entity_id": entity.id}
            self._write(q.CREATE_ALIASES, [row])

    def _insert_relations(self, relations: Sequence[Relation]) -> None:
        rows = [
            {
                "id": r.id,
                "label": r.label,
                "templates": json.dumps(r.templates.to_dict()),
                "functional": r.functional,
                "equivalent_to": list(r.equivalent_to),
            }
            for r in relations
        ]
        self._write_split(q.CREATE_RELATIONS, rows, "templates", q.APPEND_TEMPLATES)

    def _insert_fact(self, fact: Fact) -> Fact:
        (added,) = self._create_facts([fact])
        return added

    def _insert_facts(self, facts: Sequence[Fact]) -> None:
        self._create_facts(facts)

    def _create_facts(self, facts: Sequence[Fact]) -> list[Fact]:
        """Write facts with ids from the `fact` counter; return them with their ids."""
        with self.transaction():
            ids = self._next_ids("fact", len(facts))
            rows = [
                {
                    "id": fid,
                    "s": f.subject,
                    "r": f.relation,
                    "o": f.object,
                    "status": f.status.value,
                    "source": f.source,
                    "version": f.version,
                    "meta": json.dumps(f.meta, sort_keys=True),
                    "skey": sample_key(*f.triple),
                }
                for fid, f in zip(ids, facts, strict=True)
            ]
            self._write(q.CREATE_FACTS, rows)
        return [
            Fact(f.subject, f.relation, f.object, f.status, f.source, f.version, f.meta, fid)
            for fid, f in zip(ids, facts, strict=True)
        ]

    def _retract(self, subject: str, relation: str, obj: str) -> Fact | None:
        rows = self._run(q.RETRACT_FACT, s=subject, r=relation, o=obj)
        return self._fact(rows[0]) if rows else None

    def _insert_concept(self, concept: Concept) -> None:
        self._run(
            q.CREATE_CONCEPT,
            id=concept.id,
            name=concept.name,
            name_key=name_key(concept.name),
            aliases=list(concept.aliases),
            redirect_to=concept.redirect_to,
            entities=list(concept.entities),
        )

    def _set_redirect(self, concept_id: str, anchor_id: str | None) -> None:
        self._run(q.SET_CONCEPT_REDIRECT, id=concept_id, redirect_to=anchor_id)

    def _insert_mark(self, mark: ForgetMark) -> ForgetMark:
        with self.transaction():
            (mark_id,) = self._next_ids("forget_mark", 1)
            rows = self._run(
                q.CREATE_MARK,
                id=mark_id,
                concept_id=mark.concept_id,
                change_set_id=mark.change_set_id,
                who=mark.who,
                why=mark.why,
                at=mark.when.isoformat(),
            )
        return self._mark(rows[0])

    def _write_change_set(self, record: dict[str, Any], *, create: bool) -> None:
        params = {
            **record,
            "created_at": record["created_at"].isoformat(),
            "operations": json.dumps(record["operations"], sort_keys=True),
            "base": json.dumps(record["base"], sort_keys=True),
        }
        with self.transaction():
            if create:
                (seq,) = self._next_ids("change_set", 1)
                self._run(q.CREATE_CHANGE_SET, seq=seq, **params)
            else:
                self._run(q.UPDATE_CHANGE_SET, **params)

    def _write_vectors(self, rows: Sequence[tuple[str, np.ndarray]], model: str) -> None:
        records = [
            {
                "key": f"{model}\x1f{key}",
                "data": base64.b64encode(arr.tobytes()).decode("ascii"),
                "dim": int(arr.size),
            }
            for key, arr in rows
        ]
        self._write(q.PUT_VECTORS, records)

    def _bump(self, counter: str) -> int:
        """Bump with a MERGE ... SET, which locks the counter node until commit."""
        (value,) = self._next_ids(counter, 1)
        return value

    # -- read primitives ----------------------------------------------------------------------

    def _existing(self, kind: core.Kind, ids: Iterable[str]) -> set[str]:
        return {r["id"] for r in self._lookup(q.EXISTING[kind], ids)}

    @staticmethod
    def _entity(row: Mapping[str, Any]) -> Entity:
        return Entity(row["id"], row["name"], tuple(row["aliases"] or ()), row["kind"])

    def _select_entities(self, ids: Ids, kind: str | None = None, page: Page = ALL) -> list[Entity]:
        if ids is not None:
            return sorted((self._entity(r) for r in self._lookup(q.GET_ENTITIES, ids)),
                          key=lambda e: e.id)  # fmt: skip
        limit = page.limit or NO_LIMIT
        rows = self._run(q.LIST_ENTITIES, kind=kind, offset=page.offset, limit=limit)
        return [self._entity(r) for r in rows]

    def _find_entities(self, key: str) -> list[Entity]:
        with self.transaction():
            rows = self._run(q.FIND_BY_NAME, key=key) + self._run(q.FIND_BY_ALIAS, key=key)
        by_id = {r["id"]: self._entity(r) for r in rows}
        return [by_id[i] for i in sorted(by_id)]

    def _search_entities(self, key: str, limit: int) -> list[Entity]:
        args = {"key": key, "word": " " + key, "limit": limit}
        with self.transaction():
            rows = self._run(q.SEARCH_BY_NAME, **args) + self._run(q.SEARCH_BY_ALIAS, **args)
        by_id = {r["id"]: self._entity(r) for r in rows}
        return [by_id[i] for i in sorted(by_id)][:limit]

    @staticmethod
    def _relation(row: Mapping[str, Any]) -> Relation:
        return Relation(
            id=row["id"],
            label=row["label"],
            templates=json.loads(row["templates"]),
            functional=bool(row["functional"]),
            equivalent_to=tuple(row.get("equivalent_to") or ()),
        )

    def _select_relations(self, ids: Iterable[str] | None = None) -> list[Relation]:
        rows = self._run(q.LIST_RELATIONS) if ids is None else self._lookup(q.GET_RELATIONS, ids)
        return sorted((self._relation(r) for r in rows), key=lambda r: r.id)

    @staticmethod
    def _fact(row: Mapping[str, Any]) -> Fact:
        meta = row["meta"]
        return Fact.trusted(
            row["s"],
            row["r"],
            row["o"],
            row["status"],
            row["source"] or "",
            int(row["version"]),
            json.loads(meta) if meta and meta != "{}" else {},
            int(row["fid"]),
        )

    def _select_facts(self, query: core.FactQuery) -> list[Fact]:
        """Pick the constant statement of the query's leading field; filter the rest here."""
        st, limit = query.status, query.limit or NO_LIMIT
        if query.id is not None:
            rows = self._run(q.GET_FACT, id=query.id)
        elif query.subjects is not None:
            by_subject = q.CURRENT_OF_SUBJECTS if st == "current" else q.ALL_OF_SUBJECTS
            rows = self._lookup(by_subject, query.subjects)
        elif query.object is not None:
            rows = self._run(q.FACTS_WITH_OBJECT, id=query.object, status=st)
        elif query.relation is not None:
            rows = self._run(q.FACTS_OF_RELATION, rel=query.relation, status=st, limit=limit)
        else:
            rows = self._run(q.LIST_FACTS, status=st, source=query.source, offset=query.offset,
                             limit=limit)  # fmt: skip
            return [self._fact(r) for r in rows]
        facts = sorted(
            (
                f
                for f in map(self._fact, rows)
                if (query.relation is None or f.relation == query.relation)
                and (query.object is None or f.object == query.object)
                and (st is None or f.status.value == st)
                and (query.source is None or f.source == query.source)
            ),
            key=lambda f: f.id or 0,
        )
        end = None if query.limit is None else query.offset + query.limit
        return facts[query.offset : end]

    def _stored_versions(self, triples: list[Triple], current_only: bool) -> list[Versioned]:
        wanted = set(triples)
        query = q.CURRENT_OF_SUBJECTS if current_only else q.ALL_OF_SUBJECTS
        rows = self._lookup(query, {s for s, _, _ in wanted})
        return [
            (r["s"], r["r"], r["o"], r["status"], int(r["version"]))
            for r in rows
            if (r["s"], r["r"], r["o"]) in wanted
        ]

    def _incident(self, ids: list[str], way: Direction, rels: Rels, cap: int | None) -> list[Fact]:
        allow = None if rels is None or rels.allow is None else sorted(rels.allow)
        deny = [] if rels is None else sorted(rels.deny)
        rows: list[dict[str, Any]] = []
        for one in ("out", "in") if way == "both" else (way,):
            rows += self._lookup(
                q.INCIDENT[one], ids, allow=allow, deny=deny, limit=cap or NO_LIMIT
            )
        return [self._fact(r) for r in rows]

    @staticmethod
    def _concept(row: Mapping[str, Any]) -> Concept:
        return Concept(
            row["id"],
            row["name"],
            tuple(row["aliases"] or ()),
            row["redirect_to"],
            tuple(row.get("entities") or ()),
        )

    def _select_concepts(self, ids: Iterable[str] | None = None) -> list[Concept]:
        rows = self._run(q.LIST_CONCEPTS) if ids is None else self._lookup(q.GET_CONCEPTS, ids)
        return sorted((self._concept(r) for r in rows), key=lambda c: c.id)

    @staticmethod
    def _mark(row: Mapping[str, Any]) -> ForgetMark:
        return ForgetMark(
            concept_id=row["concept_id"],
            change_set_id=row["change_set_id"],
            who=row["who"],
            when=_parse_time(row["at"]),
            why=row["why"],
            id=int(row["id"]),
        )

    def _select_marks(self, concept_id: str | None) -> list[ForgetMark]:
        return [self._mark(r) for r in self._run(q.LIST_MARKS, concept_id=concept_id)]

    def _select_change_sets(self, key: str | None, state: str | None, page: Page) -> list[Record]:
        if key is not None:
            rows = self._run(q.GET_CHANGE_SET, id=key)
        else:
            limit = page.limit or NO_LIMIT
            rows = self._run(q.LIST_CHANGE_SETS, state=state, offset=page.offset, limit=limit)
        return [
            {
                **row,
                "created_at": _parse_time(row["created_at"]),
                "operations": json.loads(row["operations"] or "[]"),
                "base": json.loads(row["base"] or "[]"),
            }
            for row in rows
        ]

    def _select_vectors(self, keys: Sequence[str], model: str) -> dict[str, np.ndarray]:
        wanted = {f"{model}\x1f{k}": k for k in keys}
        rows: list[dict[str, Any]] = []
        for chunk in chunks(sorted(wanted), 1 if self._server == FALKORDB else _LOOKUP_CHUNK):
            rows += self._run(q.GET_VECTORS, keys=chunk)
        return {
            wanted[r["key"]]: np.frombuffer(base64.b64decode(r["data"]), dtype=np.float32)
            for r in rows
        }

    def _select_log(self, limit: int | None, action: str | None) -> list[ChangeLogEntry]:
        rows = self._run(q.LIST_LOG, action=action, limit=limit or NO_LIMIT)
        return [
            ChangeLogEntry(
                who=r["who"],
                when=_parse_time(r["at"]),
                why=r["why"],
                action=r["action"],
                payload=json.loads(r["payload"] or "{}"),
                id=r["id"],
            )
            for r in rows
        ]

    def _count(self, kind: Counted) -> int:
        return int(self._run(q.COUNT[kind])[0]["n"])

    def _fact_counts(self, by: CountBy, status: str | None, source: str | None) -> dict[str, int]:
        if by == "all":
            return {"": int(self._run(q.COUNT_FACTS, status=status, source=source)[0]["n"])}
        if by == "source":
            rows = self._run(q.COUNT_BY_SOURCE, status=status)
            return {r["source"] or "": int(r["n"]) for r in rows}
        return {r["id"]: int(r["n"]) for r in self._run(q.COUNT_BY_SUBJECT, status=status)}

    def _counter(self, counter: str) -> int:
        rows = self._run(q.READ_COUNTER, name=counter)
        return int(rows[0]["value"]) if rows else 0
