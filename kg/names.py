"""Names in change-set operations: an operation may name an entity, relation or concept by its
name where exactly one has it; `resolve_names` turns such names into ids before validation.

A value that is already an id is kept. A name that several objects share is refused with an
`AmbiguousNameError` listing the ids that match, so the caller can pick one. A value that
matches nothing is kept as it is: validation then reports the unknown id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from kg.errors import ValidationError
from kg.store.base import GraphStore
from kg.types import Operation, OperationKind, name_key

ENTITY_FIELDS: dict[OperationKind, tuple[str, ...]] = {
    OperationKind.ADD_FACT: ("subject", "object"),
    OperationKind.RETRACT_FACT: ("subject", "object"),
    OperationKind.REPLACE_OBJECT: ("subject", "object", "new_object"),
    OperationKind.ADD_CONCEPT: ("redirect_to",),
    OperationKind.ADD_ALIAS: ("entity",),
}
"""Payload fields of each kind that name an entity (by id, or by a unique name or alias)."""
RELATION_KINDS = (OperationKind.ADD_FACT, OperationKind.RETRACT_FACT, OperationKind.REPLACE_OBJECT)
"""Kinds whose `relation` field names a relation (by id, or by a unique label)."""
CONCEPT_FIELDS: dict[OperationKind, tuple[str, ...]] = {OperationKind.MARK_FORGET: ("concept",)}


class AmbiguousNameError(ValidationError):
    """A name in an operation matches several objects; `details` lists them per field."""

    def __init__(self, details: list[dict[str, Any]]) -> None:
        self.details = details
        parts = [
            f"operation {d['operation']} {d['field']} {d['name']!r} matches "
            + ", ".join(m["id"] for m in d["matches"])
            for d in details
        ]
        super().__init__("ambiguous names (give the id): " + "; ".join(parts))


def _by_label(items: Sequence[Any], label: Callable[[Any], Sequence[str]]) -> dict[str, list]:
    """Return {name key: [items]} over every label of the items."""
    out: dict[str, list] = {}
    for item in items:
        for text in label(item):
            out.setdefault(name_key(text), []).append(item)
    return out


def resolve_names(store: GraphStore, operations: Sequence[Operation]) -> tuple[Operation, ...]:
    """Return the operations with names replaced by ids where exactly one object has them."""
    relations = concepts = None
    ambiguous: list[dict[str, Any]] = []
    out = []
    for n, op in enumerate(operations, 1):
        payload = dict(op.payload)
        kind = OperationKind(op.kind)
        fields = {f: "entity" for f in ENTITY_FIELDS.get(kind, ())}
        if kind in RELATION_KINDS:
            fields["relation"] = "relation"
        fields.update({f: "concept" for f in CONCEPT_FIELDS.get(kind, ())})
        for field, what in fields.items():
            value = payload.get(field)
            if not isinstance(value, str) or not value:
                continue
            if what == "entity":
                if store.entity_names([value]):
                    continue
                matches = [(e.id, e.name) for e in store.find_entities(value)]
            elif what == "relation":
                relations = relations or store.list_relations()
                if any(r.id == value for r in relations):
                    continue
                by_label = _by_label(relations, lambda r: (r.label,))
                matches = [(r.id, r.label) for r in by_label.get(name_key(value), [])]
            else:
                concepts = concepts or store.list_concepts()
                if any(c.id == value for c in concepts):
                    continue
                by_name = _by_label(concepts, lambda c: (c.name, *c.aliases))
                matches = [(c.id, c.name) for c in by_name.get(name_key(value), [])]
            if len(matches) == 1:
                payload[field] = matches[0][0]
            elif len(matches) > 1:
                ambiguous.append(
                    {
                        "operation": n,
                        "field": field,
                        "name": value,
                        "matches": [{"id": i, "name": name} for i, name in matches],
                    }
                )
        out.append(replace(op, payload=payload))
    if ambiguous:
        raise AmbiguousNameError(ambiguous)
    return tuple(out)
