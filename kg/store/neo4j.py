"""Graph store on Neo4j 5 through the official `neo4j` driver (also FalkorDB over Bolt).

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
  `max_request_bytes` (3,000); a single value too large for one request is refused up front;
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

import atexit
import base64
import contextlib
import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import numpy as np

from kg.errors import BackendError, DuplicateError, NotFoundError, ValidationError
from kg.store import cypher as q
from kg.store.base import (
    MAX_WHY,
    Direction,
    GraphWalks,
    RelationFilter,
    bulk_checked,
    check_actor,
    check_limit,
    check_types,
    chunks,
    group_incident,
    sample_key,
)
from kg.types import (
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

NEO4J, FALKORDB = "neo4j", "falkordb"
FALKOR_BATCH = 50
FALKOR_MAX_REQUEST = 3_000  # bytes; the server crashes on Bolt messages over about 4 KB
FALKOR_MAX_WHY = 1_500
NO_LIMIT = 2**31 - 1  # FalkorDB returns no rows for a LIMIT of 2**32 or more
_LOOKUP_CHUNK = 500
_FALKOR_ESCAPES = {"%": "%25", "'": "%27", "\\": "%5C"}
_FALKOR_UNESCAPE = re.compile(r"%(25|27|5C)")
_UNESCAPED = {"25": "%", "27": "'", "5C": "\\"}


_DRIVERS: dict[tuple[str, str | None], list[Any]] = {}  # (uri, user) -> [driver, holders]
_DRIVERS_LOCK = threading.Lock()


def _shared_driver(
    uri: str, auth: tuple[str, str] | None, connect_timeout: float, pinned: str
) -> Any:
    """Return the process-wide driver of (uri, user), creating it on first use.

    Sharing matters on FalkorDB: after a driver closes its connections, the server fails the
    next Bolt handshake, so its drivers stay open for the life of the process.
    """
    import neo4j

    key = (uri, auth[0] if auth else None)
    with _DRIVERS_LOCK:
        entry = _DRIVERS.get(key)
        if entry is None:
            acquire = 3.0 if pinned == FALKORDB else 30.0
            driver = neo4j.GraphDatabase.driver(
                uri,
                auth=auth,
                connection_timeout=connect_timeout,
                connection_acquisition_timeout=acquire,
                max_transaction_retry_time=5,
            )
            entry = _DRIVERS[key] = [driver, 0]
        entry[1] += 1
        return entry[0]


@atexit.register
def _close_drivers() -> None:
    """Close every shared driver when the process ends."""
    with _DRIVERS_LOCK:
        for driver, _ in _DRIVERS.values():
            with contextlib.suppress(Exception):  # best effort at exit
                driver.close()
        _DRIVERS.clear()


def _release_driver(driver: Any, keep_open: bool) -> None:
    """Drop one hold on a shared driver; close it when none is left (unless `keep_open`)."""
    with _DRIVERS_LOCK:
        for key, entry in list(_DRIVERS.items()):
            if entry[0] is driver:
                entry[1] -= 1
                if entry[1] <= 0 and not keep_open:
                    del _DRIVERS[key]
                    driver.close()
                return


def _utc_now() -> str:
    return datetime.now(UTC).isoformat()


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class Neo4jGraphStore(GraphWalks):
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
        self._driver = _shared_driver(self._uri, auth, connect_timeout, pinned=self._server)
        self._local = threading.local()
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        if self._server == "auto":
            self._server = self._detect_server()
        if self._server == FALKORDB:
            self._batch_size = min(self._batch_size, FALKOR_BATCH)
            self._max_request = self._max_request or FALKOR_MAX_REQUEST

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
            _release_driver(self._driver, keep_open=self._server == FALKORDB)

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
        if self._server != FALKORDB:
            return value
        if isinstance(value, str):
            if "%" in value or "'" in value or "\\" in value:
                return "".join(_FALKOR_ESCAPES.get(ch, ch) for ch in value)
            return value
        if isinstance(value, dict):
            return {k: self._encode(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._encode(v) for v in value]
        return value

    def _decode(self, value: Any) -> Any:
        """Undo `_encode` on values read back."""
        if self._server != FALKORDB:
            return value
        if isinstance(value, str):
            if "%" in value:
                return _FALKOR_UNESCAPE.sub(lambda m: _UNESCAPED[m.group(1)], value)
            return value
        if isinstance(value, dict):
            return {k: self._decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._decode(v) for v in value]
        return value

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

    def _actor(self, who: str, why: str) -> None:
        check_actor(who, why)
        limit = FALKOR_MAX_WHY if self._server == FALKORDB else MAX_WHY
        if len(why) > limit:
            raise ValidationError(f"why is {len(why)} characters long (max {limit} here)")

    def _log_payload(self, ids: Sequence[str]) -> list[str] | None:
        cap = 10 if self._server == FALKORDB else 100
        return sorted(ids) if len(ids) <= cap else None

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

    def drop_all(self) -> None:
        """Delete every node kgedit created (all labels of `cypher.KG_LABELS`), in batches."""
        for label in q.KG_LABELS:
            while True:
                with self.transaction():
                    gone = self._run(q.DELETE_SOME[label], n=1000)
                if not gone or int(gone[0]["gone"]) == 0:
                    break

    # -- change log ---------------------------------------------------------------------------

    def log(self, who: str, why: str, action: str, payload: dict[str, Any] | None = None) -> None:
        """Append a change-log row (for actions outside the store, e.g. a model edit)."""
        self._actor(who, why)
        check_id(action, "action")
        with self.transaction():
            self._log(who, why, action, dict(payload or {}))

    def change_log(
        self, limit: int | None = None, action: str | None = None
    ) -> list[ChangeLogEntry]:
        """Return change-log entries, oldest first, optionally of one action only."""
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

    # -- entities -----------------------------------------------------------------------------

    def _existing(self, query: str, ids: Iterable[str]) -> set[str]:
        return {r["id"] for r in self._lookup(query, ids)}

    def _require(self, kind: str, query: str, ids: Iterable[str]) -> None:
        wanted = set(ids)
        missing = wanted - self._existing(query, wanted)
        if missing:
            raise NotFoundError(kind, sorted(missing)[0])

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
        """Add entities (checked in chunks of `batch`, written in UNWIND batches)."""
        self._actor(who, why)
        added = 0
        seen: set[str] = set()
        with self.transaction():
            for chunk in chunks(entities, batch):
                check_types(chunk, Entity)
                existing = self._existing(q.EXISTING_ENTITIES, (e.id for e in chunk))
                rows, aliases = [], []
                for entity in chunk:
                    if entity.id in existing or entity.id in seen:
                        if skip_existing:
                            continue
                        raise DuplicateError(f"entity id {entity.id!r} already exists")
                    seen.add(entity.id)
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
                    aliases += [
                        {"key": name_key(a), "alias": a, "entity_id": entity.id} for a in names
                    ]
                self._write(q.CREATE_ENTITIES, rows)
                self._write(q.CREATE_ALIASES, aliases)
                added += len(rows)
            payload: dict[str, Any] = {"count": added}
            if (ids := self._log_payload(sorted(seen))) is not None:
                payload["ids"] = ids
            self._log(who, why, "add_entities", payload)
        return added

    @staticmethod
    def _entity(row: Mapping[str, Any]) -> Entity:
        return Entity(row["id"], row["name"], tuple(row["aliases"] or ()), row["kind"])

    def get_entity(self, entity_id: str) -> Entity:
        """Return one entity; NotFoundError if the id is unknown."""
        rows = self._run(q.GET_ENTITY, id=entity_id)
        if not rows:
            raise NotFoundError("entity", entity_id)
        return self._entity(rows[0])

    def list_entities(
        self, limit: int | None = None, offset: int = 0, kind: str | None = None
    ) -> list[Entity]:
        """Return entities ordered by id."""
        rows = self._run(q.LIST_ENTITIES, kind=kind, offset=offset, limit=limit or NO_LIMIT)
        return [self._entity(r) for r in rows]

    def find_entities(self, name_or_alias: str) -> list[Entity]:
        """Return entities whose name or an alias equals the text (case-insensitive)."""
        key = name_key(name_or_alias)
        with self.transaction():
            rows = self._run(q.FIND_BY_NAME, key=key) + self._run(q.FIND_BY_ALIAS, key=key)
        by_id = {r["id"]: self._entity(r) for r in rows}
        return [by_id[i] for i in sorted(by_id)]

    def entity_names(self, ids: Iterable[str]) -> dict[str, str]:
        """Return {id: name} for the given ids (unknown ids are left out)."""
        return {r["id"]: r["name"] for r in self._lookup(q.ENTITY_NAMES, ids)}

    def add_alias(
        self, entity_id: str, alias: str, who: str = "system", why: str = "import"
    ) -> Entity:
        """Add another name to an entity and return the updated entity."""
        self._actor(who, why)
        check_name(alias, "alias")
        with self.transaction():
            entity = self.get_entity(entity_id)
            if alias in entity.aliases or alias == entity.name:
                raise DuplicateError(f"entity {entity_id!r} already has the name {alias!r}")
            aliases = [*entity.aliases, alias]
            self._run(q.SET_ALIASES, id=entity_id, aliases=aliases)
            row = {"key": name_key(alias), "alias": alias, "entity_id": entity_id}
            self._write(q.CREATE_ALIASES, [row])
            self._log(who, why, "add_alias", {"entity": entity_id, "alias": alias})
        return Entity(entity.id, entity.name, tuple(aliases), entity.kind)

    def count_entities(self) -> int:
        """Return the number of entities."""
        return int(self._run(q.COUNT_ENTITIES)[0]["n"])

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
        self._actor(who, why)
        items = list(relations)
        check_types(items, Relation)
        with self.transaction():
            existing = self._existing(q.EXISTING_RELATIONS, (r.id for r in items))
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
                        "templates": json.dumps(relation.templates.to_dict()),
                        "functional": relation.functional,
                    }
                )
            self._write(q.CREATE_RELATIONS, rows)
            payload: dict[str, Any] = {"count": len(rows)}
            if (ids := self._log_payload(sorted(seen))) is not None:
                payload["ids"] = ids
            self._log(who, why, "add_relations", payload)
        return len(rows)

    @staticmethod
    def _relation(row: Mapping[str, Any]) -> Relation:
        return Relation(
            id=row["id"],
            label=row["label"],
            templates=RelationTemplates.from_dict(json.loads(row["templates"])),
            functional=bool(row["functional"]),
        )

    def get_relation(self, relation_id: str) -> Relation:
        """Return one relation; NotFoundError if the id is unknown."""
        rows = self._run(q.GET_RELATION, id=relation_id)
        if not rows:
            raise NotFoundError("relation", relation_id)
        return self._relation(rows[0])

    def list_relations(self) -> list[Relation]:
        """Return every relation ordered by id."""
        return [self._relation(r) for r in self._run(q.LIST_RELATIONS)]

    def count_relations(self) -> int:
        """Return the number of relations."""
        return int(self._run(q.COUNT_RELATIONS)[0]["n"])

    # -- facts --------------------------------------------------------------------------------

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

    def _facts(self, rows: Iterable[Mapping[str, Any]]) -> list[Fact]:
        return sorted((self._fact(r) for r in rows), key=lambda f: f.id or 0)

    def add_fact(self, fact: Fact, who: str = "system", why: str = "import") -> Fact:
        """Add one fact and return it with its id; NotFoundError/DuplicateError on bad input."""
        self._actor(who, why)
        check_types([fact], Fact)
        with self.transaction():
            (added,) = self._insert_facts([fact], skip=False, seen=set())
            payload = {"id": added.id, "triple": list(fact.triple), "status": added.status.value}
            self._log(who, why, "add_fact", payload)
        return added

    def add_facts(
        self,
        facts: Iterable[Fact],
        who: str = "system",
        why: str = "import",
        *,
        batch: int = 1000,
        skip_duplicates: bool = False,
    ) -> int:
        """Add facts: checked in chunks of `batch`, written in UNWIND batches of `batch_size`."""
        self._actor(who, why)
        added = skipped = 0
        sources: set[str] = set()
        seen: set[tuple[Any, ...]] = set()
        with self.transaction():
            for chunk in chunks(facts, batch):
                check_types(chunk, Fact)
                kept = self._insert_facts(chunk, skip=skip_duplicates, seen=seen)
                skipped += len(chunk) - len(kept)
                added += len(kept)
                sources.update(f.source for f in kept)
            payload = {"count": added, "skipped_duplicates": skipped, "sources": sorted(sources)}
            if self._server == FALKORDB and len(sources) > 10:
                payload["sources"] = sorted(sources)[:10]
            self._log(who, why, "add_facts", payload)
        return added

    def _insert_facts(
        self, facts: Sequence[Fact], *, skip: bool, seen: set[tuple[Any, ...]]
    ) -> list[Fact]:
        """Check references and duplicates of one chunk, then create it; return what was kept."""
        self._require("relation", q.EXISTING_RELATIONS, {f.relation for f in facts})
        self._require(
            "entity", q.EXISTING_ENTITIES, {f.subject for f in facts} | {f.object for f in facts}
        )

        def key(subject: str, relation: str, obj: str, status: str, version: int) -> tuple:
            """Current facts are unique by triple; others by triple, status and version."""
            if status == FactStatus.CURRENT.value:
                return (subject, relation, obj)
            return (subject, relation, obj, status, version)

        query = q.ALL_OF_SUBJECTS if skip else q.CURRENT_OF_SUBJECTS
        checked = {f.subject for f in facts if skip or f.status == FactStatus.CURRENT}
        in_db = {
            key(r["s"], r["r"], r["o"], r["status"], int(r["version"]))
            for r in self._lookup(query, checked)
        }
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
        ids = self._next_ids("fact", len(keep))
        rows = [
            {
                "id": fid,
                "s": f.subject,
                "r": f.relation,
                "o": f.object,
                "status": FactStatus(f.status).value,
                "source": f.source,
                "version": f.version,
                "meta": json.dumps(f.meta, sort_keys=True),
                "skey": sample_key(*f.triple),
            }
            for fid, f in zip(ids, keep, strict=True)
        ]
        self._write(q.CREATE_FACTS, rows)
        return [
            Fact(f.subject, f.relation, f.object, f.status, f.source, f.version, f.meta, fid)
            for fid, f in zip(ids, keep, strict=True)
        ]

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
        """Load a whole graph into an EMPTY store: checks in memory, UNWIND CREATE batches.

        Refused (ValidationError) if the graph already holds entities, relations or facts.
        On FalkorDB a failure part-way leaves the batches written so far (no rollback).
        """
        self._actor(who, why)
        ents, rels, fact_iter = bulk_checked(entities, relations, facts)
        counts = {"entities": len(ents), "relations": len(rels), "facts": 0}
        with self.transaction():
            if self.count_entities() or self.count_relations() or self.count_facts():
                raise ValidationError(
                    "bulk_import needs an empty graph; use add_entities / add_facts to add to "
                    "a populated one"
                )
            self._write(
                q.CREATE_RELATIONS,
                [
                    {
                        "id": r.id,
                        "label": r.label,
                        "templates": json.dumps(r.templates.to_dict()),
                        "functional": r.functional,
                    }
                    for r in rels
                ],
            )
            for chunk in chunks(ents, batch):
                rows = [
                    {
                        "id": e.id,
                        "name": e.name,
                        "name_key": name_key(e.name),
                        "kind": e.kind,
                        "aliases": list(dict.fromkeys(e.aliases)),
                    }
                    for e in chunk
                ]
                self._write(q.CREATE_ENTITIES, rows)
                aliases = [
                    {"key": name_key(a), "alias": a, "entity_id": e.id}
                    for e in chunk
                    for a in dict.fromkeys(e.aliases)
                ]
                self._write(q.CREATE_ALIASES, aliases)
            for chunk in chunks(fact_iter, batch):
                ids = self._next_ids("fact", len(chunk))
                rows = [
                    {
                        "id": fid,
                        "s": f.subject,
                        "r": f.relation,
                        "o": f.object,
                        "status": FactStatus(f.status).value,
                        "source": f.source,
                        "version": f.version,
                        "meta": json.dumps(f.meta, sort_keys=True),
                        "skey": sample_key(*f.triple),
                    }
                    for fid, f in zip(ids, chunk, strict=True)
                ]
                self._write(q.CREATE_FACTS, rows)
                counts["facts"] += len(chunk)
            self._log(who, why, "bulk_import", dict(counts))
        return counts

    def get_fact(self, fact_id: int) -> Fact:
        """Return one fact by its numeric id."""
        rows = self._run(q.GET_FACT, id=fact_id)
        if not rows:
            raise NotFoundError("fact", str(fact_id))
        return self._fact(rows[0])

    @staticmethod
    def _status(status: FactStatus | str | None) -> str | None:
        return None if status is None else FactStatus(status).value

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
        st = self._status(status)
        if subjects is None:
            rows = self._run(
                q.LIST_FACTS, status=st, source=source, offset=offset, limit=limit or NO_LIMIT
            )
            return [self._fact(r) for r in rows]
        facts = [
            f
            for f in self._facts(self._lookup(q.ALL_OF_SUBJECTS, subjects))
            if (st is None or f.status.value == st) and (source is None or f.source == source)
        ]
        end = None if limit is None else offset + limit
        return facts[offset:end]

    def facts_about(
        self,
        subject_id: str,
        relation_id: str | None = None,
        status: FactStatus | str | None = FactStatus.CURRENT,
    ) -> list[Fact]:
        """Return the facts whose subject is `subject_id` (optionally of one relation)."""
        with self.transaction():
            self._require("entity", q.EXISTING_ENTITIES, [subject_id])
            if relation_id is not None:
                self._require("relation", q.EXISTING_RELATIONS, [relation_id])
            rows = self._run(
                q.FACTS_ABOUT, id=subject_id, rel=relation_id, status=self._status(status)
            )
        return self._facts(rows)

    def facts_with_object(
        self, object_id: str, status: FactStatus | str | None = FactStatus.CURRENT
    ) -> list[Fact]:
        """Return the facts whose object is `object_id`."""
        with self.transaction():
            self._require("entity", q.EXISTING_ENTITIES, [object_id])
            rows = self._run(q.FACTS_WITH_OBJECT, id=object_id, status=self._status(status))
        return self._facts(rows)

    def facts_of_relation(
        self,
        relation_id: str,
        status: FactStatus | str | None = FactStatus.CURRENT,
        limit: int | None = None,
    ) -> list[Fact]:
        """Return the facts of one relation, ordered by id."""
        with self.transaction():
            self._require("relation", q.EXISTING_RELATIONS, [relation_id])
            rows = self._run(
                q.FACTS_OF_RELATION,
                rel=relation_id,
                status=self._status(status),
                limit=limit or NO_LIMIT,
            )
        return self._facts(rows)

    def retract_fact(
        self,
        subject_id: str,
        relation_id: str,
        object_id: str,
        who: str = "system",
        why: str = "import",
    ) -> Fact:
        """Mark the current fact (subject, relation, object) retracted; return it."""
        self._actor(who, why)
        with self.transaction():
            rows = self._run(q.RETRACT_FACT, s=subject_id, r=relation_id, o=object_id)
            if not rows:
                triple = f"({subject_id}, {relation_id}, {object_id})"
                raise NotFoundError("current fact", triple)
            fact = self._fact(rows[0])
            payload = {"id": fact.id, "triple": [subject_id, relation_id, object_id]}
            self._log(who, why, "retract_fact", payload)
        return fact

    def count_facts(self, status: FactStatus | str | None = None, source: str | None = None) -> int:
        """Return the number of facts, optionally of one status and/or source."""
        return int(self._run(q.COUNT_FACTS, status=self._status(status), source=source)[0]["n"])

    def count_facts_by_source(self, status: FactStatus | str | None = None) -> dict[str, int]:
        """Return {source: number of facts}."""
        rows = self._run(q.COUNT_BY_SOURCE, status=self._status(status))
        return {r["source"] or "": int(r["n"]) for r in rows}

    def count_facts_by_subject(
        self, status: FactStatus | str | None = FactStatus.CURRENT
    ) -> list[tuple[str, int]]:
        """Return (subject id, number of facts), most facts first, ties by id."""
        rows = self._run(q.COUNT_BY_SUBJECT, status=self._status(status))
        return sorted(((r["id"], int(r["n"])) for r in rows), key=lambda t: (-t[1], t[0]))

    def current_facts(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[Fact]]:
        """Return the current facts of each (subject, relation) slot, ordered by object."""
        wanted = sorted(set(pairs))
        out: dict[tuple[str, str], list[Fact]] = {pair: [] for pair in wanted}
        for row in self._lookup(q.CURRENT_OF_SUBJECTS, {s for s, _ in wanted}):
            fact = self._fact(row)
            if (fact.subject, fact.relation) in out:
                out[(fact.subject, fact.relation)].append(fact)
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
        """Return each entity's current facts in `direction`, ordered by sample key, capped."""
        if direction not in ("out", "in", "both"):
            raise ValidationError(f"direction must be 'out', 'in' or 'both', got {direction!r}")
        if isinstance(entity_ids, str):
            raise ValidationError("entity_ids must be a collection of ids, not a string")
        check_limit(limit_per_entity, "limit_per_entity")
        ids = sorted(set(entity_ids))
        allow = None if relations is None or relations.allow is None else sorted(relations.allow)
        deny = [] if relations is None else sorted(relations.deny)
        rows: list[dict[str, Any]] = []
        with self.transaction():
            for way in ("out", "in") if direction == "both" else (direction,):
                rows += self._lookup(
                    q.INCIDENT[way], ids, allow=allow, deny=deny, limit=limit_per_entity or NO_LIMIT
                )
        facts = [self._fact(r) for r in rows]
        return group_incident(facts, ids, direction, relations, limit_per_entity)

    # -- concepts and forget marks ------------------------------------------------------------

    def add_concept(self, concept: Concept, who: str = "system", why: str = "import") -> Concept:
        """Add one concept; DuplicateError if its id is taken."""
        self._actor(who, why)
        check_types([concept], Concept)
        with self.transaction():
            if self._run(q.GET_CONCEPT, id=concept.id):
                raise DuplicateError(f"concept id {concept.id!r} already exists")
            self._run(
                q.CREATE_CONCEPT,
                id=concept.id,
                name=concept.name,
                name_key=name_key(concept.name),
                aliases=list(concept.aliases),
                redirect_to=concept.redirect_to,
                entities=list(concept.entities),
            )
            self._log(who, why, "add_concept", {"id": concept.id, "name": concept.name})
        return concept

    @staticmethod
    def _concept(row: Mapping[str, Any]) -> Concept:
        return Concept(
            row["id"],
            row["name"],
            tuple(row["aliases"] or ()),
            row["redirect_to"],
            tuple(row.get("entities") or ()),
        )

    def set_concept_redirect(
        self, concept_id: str, anchor_id: str | None, who: str = "system", why: str = "curation"
    ) -> Concept:
        """Set (or clear, with None) a concept's redirect anchor, an entity id; change-logged."""
        self._actor(who, why)
        with self.transaction():
            before = self.get_concept(concept_id)
            if anchor_id is not None:
                check_id(anchor_id, "anchor id")
                self._require("entity", q.EXISTING_ENTITIES, [anchor_id])
            self._run(q.SET_CONCEPT_REDIRECT, id=concept_id, redirect_to=anchor_id)
            payload = {"id": concept_id, "redirect_to": anchor_id, "before": before.redirect_to}
            self._log(who, why, "set_concept_redirect", payload)
        return replace(before, redirect_to=anchor_id)

    def get_concept(self, concept_id: str) -> Concept:
        """Return one concept; NotFoundError if the id is unknown."""
        rows = self._run(q.GET_CONCEPT, id=concept_id)
        if not rows:
            raise NotFoundError("concept", concept_id)
        return self._concept(rows[0])

    def list_concepts(self) -> list[Concept]:
        """Return every concept ordered by id."""
        return [self._concept(r) for r in self._run(q.LIST_CONCEPTS)]

    def count_concepts(self) -> int:
        """Return the number of concepts."""
        return int(self._run(q.COUNT_CONCEPTS)[0]["n"])

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

    def mark_forget(
        self,
        concept_id: str,
        change_set_id: str | None,
        who: str = "system",
        why: str = "forget",
    ) -> ForgetMark:
        """Record that a concept is to be forgotten; NotFoundError for an unknown concept."""
        self._actor(who, why)
        with self.transaction():
            self.get_concept(concept_id)
            (mark_id,) = self._next_ids("forget_mark", 1)
            rows = self._run(
                q.CREATE_MARK,
                id=mark_id,
                concept_id=concept_id,
                change_set_id=change_set_id,
                who=who,
                why=why,
                at=_utc_now(),
            )
            payload = {"concept": concept_id, "change_set": change_set_id}
            self._log(who, why, "mark_forget", payload)
        return self._mark(rows[0])

    def forget_marks(self, concept_id: str | None = None) -> list[ForgetMark]:
        """Return forget marks, oldest first (of one concept if given)."""
        return [self._mark(r) for r in self._run(q.LIST_MARKS, concept_id=concept_id)]

    # -- graph version and change sets --------------------------------------------------------

    def graph_version(self) -> int:
        """Return the graph version (0 before any approved change set)."""
        rows = self._run(q.READ_COUNTER, name="graph_version")
        return int(rows[0]["value"]) if rows else 0

    def bump_graph_version(self) -> int:
        """Increase the graph version inside the current transaction (locks the counter)."""
        (version,) = self._next_ids("graph_version", 1)
        return version

    @staticmethod
    def _change_set_params(change_set: ChangeSet) -> dict[str, Any]:
        ops = [{"kind": op.kind.value, "payload": dict(op.payload)} for op in change_set.operations]
        created = change_set.created_at
        created = created if created.tzinfo is not None else created.replace(tzinfo=UTC)
        return {
            "id": change_set.id,
            "author": change_set.author,
            "reason": change_set.reason,
            "created_at": created.isoformat(),
            "state": ChangeSetState(change_set.state).value,
            "operations": json.dumps(ops, sort_keys=True),
            "base": json.dumps([dict(slot) for slot in change_set.base], sort_keys=True),
            "graph_version": change_set.graph_version,
            "reviewer": change_set.reviewer,
            "review_note": change_set.review_note,
        }

    def save_change_set(self, change_set: ChangeSet, *, create: bool = False) -> ChangeSet:
        """Insert (create=True; DuplicateError if taken) or overwrite a stored change set."""
        check_types([change_set], ChangeSet)
        params = self._change_set_params(change_set)
        with self.transaction():
            exists = bool(self._run(q.GET_CHANGE_SET, id=change_set.id))
            if create:
                if exists:
                    raise DuplicateError(f"change set id {change_set.id!r} already exists")
                (seq,) = self._next_ids("change_set", 1)
                self._run(q.CREATE_CHANGE_SET, seq=seq, **params)
            else:
                if not exists:
                    raise NotFoundError("change set", change_set.id)
                self._run(q.UPDATE_CHANGE_SET, **params)
        return change_set

    @staticmethod
    def _change_set(row: Mapping[str, Any]) -> ChangeSet:
        return ChangeSet(
            id=row["id"],
            author=row["author"],
            reason=row["reason"],
            created_at=_parse_time(row["created_at"]),
            operations=tuple(Operation(**op) for op in json.loads(row["operations"] or "[]")),
            state=row["state"],
            base=tuple(json.loads(row["base"] or "[]")),
            graph_version=row["graph_version"],
            reviewer=row["reviewer"],
            review_note=row["review_note"] or "",
        )

    def get_change_set(self, change_set_id: str) -> ChangeSet:
        """Return one change set; NotFoundError if unknown."""
        rows = self._run(q.GET_CHANGE_SET, id=change_set_id)
        if not rows:
            raise NotFoundError("change set", change_set_id)
        return self._change_set(rows[0])

    def list_change_sets(
        self, state: ChangeSetState | str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[ChangeSet]:
        """Return change sets in creation order, optionally of one state."""
        st = None if state is None else ChangeSetState(state).value
        rows = self._run(q.LIST_CHANGE_SETS, state=st, offset=offset, limit=limit or NO_LIMIT)
        return [self._change_set(r) for r in rows]

    # -- vector cache -------------------------------------------------------------------------

    def get_vectors(self, keys: Iterable[str], model: str) -> dict[str, np.ndarray]:
        """Return cached float32 vectors of the keys stored for `model`."""
        wanted = {f"{model}\x1f{k}": k for k in keys}
        rows: list[dict[str, Any]] = []
        for chunk in chunks(sorted(wanted), 1 if self._server == FALKORDB else _LOOKUP_CHUNK):
            rows += self._run(q.GET_VECTORS, keys=chunk)
        return {
            wanted[r["key"]]: np.frombuffer(base64.b64decode(r["data"]), dtype=np.float32)
            for r in rows
        }

    def put_vectors(self, vectors: Mapping[str, np.ndarray], model: str) -> int:
        """Store float32 vectors by key for `model` (replacing old ones); return the count."""
        check_id(model, "model")
        rows = []
        for key, vector in vectors.items():
            check_id(key, "vector key")
            arr = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)  # (d,)
            data = base64.b64encode(arr.tobytes()).decode("ascii")
            rows.append({"key": f"{model}\x1f{key}", "data": data, "dim": int(arr.size)})
        with self.transaction():
            self._write(q.PUT_VECTORS, rows)
        return len(rows)
