"""JSON Lines export and import of a graph.

One JSON object per line. Fact lines (``"type": "fact"``, the default when `type` is absent)
hold ``subject``/``subject_id``, ``relation`` (the relation id), ``object``/``object_id``,
``status``, ``source`` and optionally ``version`` and ``meta``. An export starts with
``"type": "relation"`` and ``"type": "entity"`` lines (every relation and entity, so nothing
is lost) so that it imports into an empty store.

An import reads and checks the whole file first, then writes it in one transaction: a bad
line raises `ImportFormatError` naming its line number and nothing is committed.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kg.errors import ImportFormatError, KGError
from kg.store import GraphStore
from kg.types import Entity, Fact, FactStatus, Relation, RelationTemplates, slug

MAX_LINE_BYTES = 64 * 1024

Source = str | os.PathLike[str] | IO[bytes] | IO[str]
Dest = str | os.PathLike[str] | IO[str]


def _id_list(line_no: int, value: Any) -> tuple[str, ...]:
    """Return a relation line's `equivalent_to` ids; ImportFormatError unless a list of strings."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ImportFormatError(line_no, "'equivalent_to' must be a list of relation ids")
    return tuple(value)


@dataclass
class JsonlImportSummary:
    """What an import added, and what it skipped as already present."""

    relations: int = 0
    entities: int = 0
    facts: int = 0
    skipped_duplicates: int = 0
    fact_lines: int = 0
    by_source: dict[str, int] = field(default_factory=dict)


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=False) + "\n"


def export_jsonl(
    store: GraphStore,
    dest: Dest,
    *,
    status: FactStatus | str | None = None,
    definitions: bool = True,
) -> int:
    """Write the facts (of one status, or all) as JSONL; return the number of fact lines."""
    if isinstance(dest, str | os.PathLike):
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        with open(dest, "w", encoding="utf-8", newline="\n") as handle:
            return export_jsonl(store, handle, status=status, definitions=definitions)
    facts = store.list_facts(status=status)
    entities = {e.id: e for e in store.list_entities()}
    if definitions:
        for relation in store.list_relations():
            line = {
                "type": "relation",
                "id": relation.id,
                "label": relation.label,
                "templates": relation.templates.to_dict(),
                "functional": relation.functional,
                "equivalent_to": list(relation.equivalent_to),
            }
            dest.write(_dump(line))
        for entity in entities.values():
            line = {
                "type": "entity",
                "id": entity.id,
                "name": entity.name,
                "aliases": list(entity.aliases),
                "kind": entity.kind,
            }
            dest.write(_dump(line))
    for fact in facts:
        line = {
            "type": "fact",
            "subject": entities[fact.subject].name,
            "subject_id": fact.subject,
            "relation": fact.relation,
            "object": entities[fact.object].name,
            "object_id": fact.object,
            "status": FactStatus(fact.status).value,
            "source": fact.source,
            "version": fact.version,
        }
        if fact.meta:
            line["meta"] = fact.meta
        dest.write(_dump(line))
    return len(facts)


def _lines(source: IO[bytes] | IO[str], max_bytes: int) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, line without its end) and refuse lines over `max_bytes`."""
    line_no = 0
    text_mode = isinstance(source, io.TextIOBase)
    while True:
        raw = source.readline(max_bytes + 2)
        if not raw:
            return
        line_no += 1
        data = raw.encode("utf-8") if text_mode else raw
        if data.endswith(b"\n"):
            data = data[:-1]
        if data.endswith(b"\r"):
            data = data[:-1]
        if len(data) > max_bytes:
            raise ImportFormatError(line_no, f"line is longer than {max_bytes} bytes")
        yield line_no, data


class _Reader:
    """Parse lines into relations, entities and facts, resolving names against the store."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store
        self.relations: dict[str, Relation] = {}
        self.entities: dict[str, Entity] = {}
        self.facts: list[Fact] = []
        self._known_relations = {r.id for r in store.list_relations()}
        self._store_ids: dict[str, bool] = {}

    def _in_store(self, entity_id: str) -> bool:
        if entity_id not in self._store_ids:
            self._store_ids[entity_id] = bool(self.store.entity_names([entity_id]))
        return self._store_ids[entity_id]

    def read(self, line_no: int, obj: dict[str, Any]) -> None:
        """Parse one decoded line into a relation, an entity or a fact."""
        kind = obj.get("type", "fact")
        if kind == "relation":
            templates = obj.get("templates")
            if not isinstance(templates, dict):
                raise ImportFormatError(line_no, "relation line needs a 'templates' object")
            relation = Relation(
                id=obj.get("id"),
                label=obj.get("label", obj.get("id")),
                templates=RelationTemplates.from_dict(templates),
                functional=bool(obj.get("functional", False)),
                equivalent_to=_id_list(line_no, obj.get("equivalent_to", [])),
            )
            self.relations.setdefault(relation.id, relation)
        elif kind == "entity":
            entity = Entity(
                id=obj.get("id"),
                name=obj.get("name"),
                aliases=tuple(obj.get("aliases") or ()),
                kind=obj.get("kind", "entity"),
            )
            self.entities.setdefault(entity.id, entity)
        elif kind == "fact":
            self.facts.append(self._fact(line_no, obj))
        else:
            raise ImportFormatError(line_no, f"unknown line type {kind!r}")

    def _entity_id(self, line_no: int, obj: dict[str, Any], role: str) -> str:
        ident, name = obj.get(f"{role}_id"), obj.get(role)
        if ident is None and name is None:
            raise ImportFormatError(line_no, f"fact needs '{role}' or '{role}_id'")
        if ident is not None:
            if not isinstance(ident, str):
                raise ImportFormatError(line_no, f"'{role}_id' must be a string")
            if ident in self.entities or self._in_store(ident):
                return ident
            if name is None:
                raise ImportFormatError(line_no, f"unknown {role} id {ident!r} and no name")
            self.entities[ident] = Entity(id=ident, name=name)
            return ident
        if not isinstance(name, str):
            raise ImportFormatError(line_no, f"'{role}' must be a string")
        found = [e.id for e in self.entities.values() if e.name == name]
        found += [e.id for e in self.store.find_entities(name) if e.name == name]
        found = sorted(set(found))
        if len(found) > 1:
            raise ImportFormatError(line_no, f"{role} name {name!r} is ambiguous: {found}")
        if found:
            return found[0]
        entity = Entity(id=f"name:{slug(name)}", name=name)
        self.entities.setdefault(entity.id, entity)
        return entity.id

    def _fact(self, line_no: int, obj: dict[str, Any]) -> Fact:
        relation = obj.get("relation")
        if not isinstance(relation, str):
            raise ImportFormatError(line_no, "fact needs a 'relation' id string")
        if relation not in self.relations and relation not in self._known_relations:
            raise ImportFormatError(line_no, f"unknown relation {relation!r}")
        meta = obj.get("meta") or {}
        if not isinstance(meta, dict):
            raise ImportFormatError(line_no, "'meta' must be an object")
        return Fact(
            subject=self._entity_id(line_no, obj, "subject"),
            relation=relation,
            object=self._entity_id(line_no, obj, "object"),
            status=obj.get("status", FactStatus.CURRENT.value),
            source=obj.get("source", ""),
            version=obj.get("version", 1),
            meta=meta,
        )


def _parse(store: GraphStore, source: IO[bytes] | IO[str], max_bytes: int) -> _Reader:
    reader = _Reader(store)
    for line_no, data in _lines(source, max_bytes):
        if not data.strip():
            continue
        try:
            obj = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ImportFormatError(line_no, f"not UTF-8: {exc.reason}") from None
        except json.JSONDecodeError as exc:
            message = f"invalid JSON: {exc.msg} (column {exc.colno})"
            raise ImportFormatError(line_no, message) from None
        if not isinstance(obj, dict):
            raise ImportFormatError(line_no, f"expected a JSON object, got {type(obj).__name__}")
        try:
            reader.read(line_no, obj)
        except ImportFormatError:
            raise
        except (KGError, TypeError, ValueError) as exc:
            raise ImportFormatError(line_no, str(exc)) from None
    return reader


def import_jsonl(
    store: GraphStore,
    source: Source,
    who: str = "system",
    why: str = "import",
    *,
    skip_duplicates: bool = True,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> JsonlImportSummary:
    """Import a JSONL file (path or stream) in one transaction; all or nothing."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as handle:
            return import_jsonl(
                store,
                handle,
                who,
                why,
                skip_duplicates=skip_duplicates,
                max_line_bytes=max_line_bytes,
            )
    reader = _parse(store, source, max_line_bytes)
    summary = JsonlImportSummary(fact_lines=len(reader.facts))
    with store.transaction():
        summary.relations = store.add_relations(
            reader.relations.values(), who, why, skip_existing=True
        )
        summary.entities = store.add_entities(
            reader.entities.values(), who, why, skip_existing=True
        )
        summary.facts = store.add_facts(reader.facts, who, why, skip_duplicates=skip_duplicates)
    summary.skipped_duplicates = len(reader.facts) - summary.facts
    for fact in reader.facts:
        summary.by_source[fact.source] = summary.by_source.get(fact.source, 0) + 1
    return summary
