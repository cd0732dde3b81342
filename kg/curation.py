"""Curation: change sets of graph operations, their review, and applying them on approval.

A change set holds operations (add fact, retract fact, replace object, add concept, mark a
concept to forget, add alias), its author and reason, and a review state:

    draft ──propose──▶ proposed ──approve──▶ approved      (the graph version goes up by one)
                          └──────reject───▶ rejected

**Optimistic concurrency.** When a change set is created, it records the current facts of
every (subject, relation) slot its fact operations touch: object, version and fact id (its
`base`). Approval re-reads those slots under the graph-version lock; if any slot changed
since (a fact added, retracted or replaced by someone else), approval is refused with a
`ConflictError` naming each changed slot, what it was and what it is now. `rebase` takes
a fresh snapshot once the curator has looked at the new state.

**Constraints.** A functional relation (capital, birthplace, …) keeps one current object:
adding a second object to such a slot is refused (use replace object). Every operation is
simulated on the snapshot before the first write, so a bad change set writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from kg.errors import ConflictError, NotFoundError, StateError, ValidationError
from kg.names import resolve_names
from kg.store.base import GraphStore, check_actor
from kg.types import (
    ChangeSet,
    ChangeSetState,
    Concept,
    Fact,
    Operation,
    OperationKind,
    check_id,
    check_name,
)

MAX_OPERATIONS = 5_000
Slot = tuple[str, str]

# payload fields of each operation kind: (required, optional)
PAYLOAD_FIELDS: dict[OperationKind, tuple[tuple[str, ...], tuple[str, ...]]] = {
    OperationKind.ADD_FACT: (("subject", "relation", "object"), ("source",)),
    OperationKind.RETRACT_FACT: (("subject", "relation", "object"), ()),
    OperationKind.REPLACE_OBJECT: (("subject", "relation", "object", "new_object"), ()),
    OperationKind.ADD_CONCEPT: (("id", "name"), ("aliases", "redirect_to")),
    OperationKind.MARK_FORGET: (("concept",), ()),
    OperationKind.ADD_ALIAS: (("entity", "alias"), ()),
}
FACT_KINDS = (OperationKind.ADD_FACT, OperationKind.RETRACT_FACT, OperationKind.REPLACE_OBJECT)


def check_operation(op: Operation) -> Operation:
    """Return `op` if its payload has exactly the fields its kind needs, with valid values."""
    required, optional = PAYLOAD_FIELDS[OperationKind(op.kind)]
    payload = op.payload
    if not isinstance(payload, Mapping):
        raise ValidationError(f"{op.kind.value}: payload must be an object")
    missing = [k for k in required if k not in payload]
    unknown = sorted(set(payload) - set(required) - set(optional))
    if missing or unknown:
        raise ValidationError(
            f"{op.kind.value}: payload needs {list(required)}"
            + (f" (optional {list(optional)})" if optional else "")
            + (f"; missing {missing}" if missing else "")
            + (f"; unknown {unknown}" if unknown else "")
        )
    for key, value in payload.items():
        what = f"{op.kind.value} {key}"
        if key == "aliases":
            if isinstance(value, str) or not isinstance(value, list | tuple):
                raise ValidationError(f"{what} must be a list of names")
            for alias in value:
                check_name(alias, what)
        elif key in ("alias", "name", "source"):
            if key == "source" and value == "":
                continue
            check_name(value, what)
        elif key == "redirect_to" and value is None:
            continue
        else:
            check_id(value, what)
    if op.kind is OperationKind.REPLACE_OBJECT and payload["object"] == payload["new_object"]:
        raise ValidationError("replace_object: new_object equals object")
    return op


def _operations(operations: Iterable[Operation | Mapping[str, Any]]) -> tuple[Operation, ...]:
    """Return validated operations (dicts `{"kind", "payload"}` are accepted too)."""
    if isinstance(operations, str | Mapping):
        raise ValidationError("operations must be a list of operations")
    ops = tuple(op if isinstance(op, Operation) else Operation(**op) for op in operations)
    if not ops:
        raise ValidationError("a change set needs at least one operation")
    if len(ops) > MAX_OPERATIONS:
        raise ValidationError(f"a change set holds at most {MAX_OPERATIONS} operations")
    return tuple(check_operation(op) for op in ops)


def touched_slots(operations: Iterable[Operation]) -> list[Slot]:
    """Return the (subject, relation) slots the fact operations touch, sorted."""
    return sorted(
        {
            (op.payload["subject"], op.payload["relation"])
            for op in operations
            if op.kind in FACT_KINDS
        }
    )


def _snapshot(store: GraphStore, slots: Sequence[Slot]) -> dict[Slot, list[list[Any]]]:
    """Return {slot: [[object, version, fact id], ...]} of the current facts, sorted."""
    current = store.current_facts(slots)
    return {
        slot: sorted([f.object, f.version, f.id] for f in current.get(slot, ())) for slot in slots
    }


def _base(snapshot: Mapping[Slot, list[list[Any]]]) -> tuple[dict[str, Any], ...]:
    return tuple(
        {"subject": s, "relation": r, "facts": facts} for (s, r), facts in sorted(snapshot.items())
    )


def _base_map(change_set: ChangeSet) -> dict[Slot, list[list[Any]]]:
    return {
        (slot["subject"], slot["relation"]): [list(f) for f in slot["facts"]]
        for slot in change_set.base
    }


def _describe(facts: Sequence[Sequence[Any]]) -> str:
    return "[" + ", ".join(f"{o} (v{v}, #{i})" for o, v, i in facts) + "]" if facts else "[]"


def find_conflicts(store: GraphStore, change_set: ChangeSet) -> list[dict[str, Any]]:
    """Return the slots whose current facts differ from the change set's base ([] if none)."""
    base = _base_map(change_set)
    now = _snapshot(store, sorted(base))
    return [
        {
            "subject": s,
            "relation": r,
            "expected": [{"object": o, "version": v, "id": i} for o, v, i in base[(s, r)]],
            "current": [{"object": o, "version": v, "id": i} for o, v, i in now[(s, r)]],
            "summary": f"({s}, {r}): was {_describe(base[(s, r)])}, now {_describe(now[(s, r)])}",
        }
        for (s, r) in sorted(base)
        if base[(s, r)] != now[(s, r)]
    ]


def simulate(store: GraphStore, change_set: ChangeSet) -> None:
    """Check every operation against the graph as the earlier operations leave it.

    Raises NotFoundError for unknown ids and ValidationError for operations that cannot
    apply (retracting a fact that is not current, a second object on a functional slot, …).
    """
    ops = change_set.operations
    slots = touched_slots(ops)
    state = {slot: {o: v for o, v, _ in facts} for slot, facts in _snapshot(store, slots).items()}
    entity_ids: set[str] = set()
    relation_ids: set[str] = set()
    for op in ops:
        p = op.payload
        if op.kind in FACT_KINDS:
            entity_ids |= {p["subject"], p["object"], p.get("new_object", p["object"])}
            relation_ids.add(p["relation"])
        elif op.kind is OperationKind.ADD_ALIAS:
            entity_ids.add(p["entity"])
    known = store.entity_names(entity_ids)
    for entity_id in sorted(entity_ids):
        if entity_id not in known:
            raise NotFoundError("entity", entity_id)
    relations = {rid: store.get_relation(rid) for rid in sorted(relation_ids)}
    concepts = {c.id for c in store.list_concepts()}
    aliases: dict[str, set[str]] = {}
    for n, op in enumerate(ops, 1):
        p, where = op.payload, f"operation {n} ({op.kind.value})"
        if op.kind in FACT_KINDS:
            slot = (p["subject"], p["relation"])
            current = state[slot]
            if op.kind is OperationKind.ADD_FACT:
                if p["object"] in current:
                    raise ValidationError(f"{where}: fact {(*slot, p['object'])} already holds")
                if relations[p["relation"]].functional and current:
                    raise ValidationError(
                        f"{where}: relation {p['relation']!r} is functional and "
                        f"{p['subject']!r} already has {sorted(current)}; use replace_object"
                    )
                current[p["object"]] = 1
            else:
                if p["object"] not in current:
                    raise ValidationError(
                        f"{where}: fact {(*slot, p['object'])} is not current in the graph"
                    )
                version = current.pop(p["object"])
                if op.kind is OperationKind.REPLACE_OBJECT:
                    if p["new_object"] in current:
                        raise ValidationError(
                            f"{where}: fact {(*slot, p['new_object'])} already holds"
                        )
                    current[p["new_object"]] = version + 1
        elif op.kind is OperationKind.ADD_CONCEPT:
            if p["id"] in concepts:
                raise ValidationError(f"{where}: concept {p['id']!r} already exists")
            Concept(p["id"], p["name"], tuple(p.get("aliases", ())), p.get("redirect_to"))
            concepts.add(p["id"])
        elif op.kind is OperationKind.MARK_FORGET:
            if p["concept"] not in concepts:
                raise NotFoundError("concept", p["concept"])
        elif op.kind is OperationKind.ADD_ALIAS:
            entity = store.get_entity(p["entity"])
            taken = aliases.setdefault(entity.id, set(entity.names()))
            if p["alias"] in taken:
                raise ValidationError(f"{where}: {entity.id!r} already has the name {p['alias']!r}")
            taken.add(p["alias"])


def _apply(store: GraphStore, change_set: ChangeSet, reviewer: str) -> None:
    """Write the operations (inside the caller's transaction)."""
    who = change_set.author
    why = f"change set {change_set.id} (approved by {reviewer}): {change_set.reason}"[:1400]
    source = f"change_set:{change_set.id}"
    for op in change_set.operations:
        p = op.payload
        if op.kind is OperationKind.ADD_FACT:
            fact = Fact(p["subject"], p["relation"], p["object"], source=p.get("source") or source)
            store.add_fact(fact, who=who, why=why)
        elif op.kind is OperationKind.RETRACT_FACT:
            store.retract_fact(p["subject"], p["relation"], p["object"], who=who, why=why)
        elif op.kind is OperationKind.REPLACE_OBJECT:
            old = store.retract_fact(p["subject"], p["relation"], p["object"], who=who, why=why)
            new = Fact(
                p["subject"],
                p["relation"],
                p["new_object"],
                source=source,
                version=old.version,
                meta={"replaces": old.id, "old_object": p["object"]},
            )
            store.add_fact(new, who=who, why=why)
        elif op.kind is OperationKind.ADD_CONCEPT:
            concept = Concept(p["id"], p["name"], tuple(p.get("aliases", ())), p.get("redirect_to"))
            store.add_concept(concept, who=who, why=why)
        elif op.kind is OperationKind.MARK_FORGET:
            store.mark_forget(p["concept"], change_set.id, who=who, why=why)
        elif op.kind is OperationKind.ADD_ALIAS:
            store.add_alias(p["entity"], p["alias"], who=who, why=why)


def _require_state(change_set: ChangeSet, *allowed: ChangeSetState) -> None:
    if change_set.state not in allowed:
        wanted = " or ".join(s.value for s in allowed)
        raise StateError(
            f"change set {change_set.id!r} is {change_set.state.value}; it must be {wanted}"
        )


def create_change_set(
    store: GraphStore,
    author: str,
    reason: str,
    operations: Iterable[Operation | Mapping[str, Any]],
    *,
    change_set_id: str | None = None,
    now: datetime | None = None,
) -> ChangeSet:
    """Validate and store a new draft change set with the base versions of its slots.

    Operations may name entities, relations and concepts by a unique name (`kg.names`)."""
    check_actor(author, reason)
    ops = resolve_names(store, _operations(operations))
    change_set = ChangeSet(
        id=change_set_id or f"cs-{uuid.uuid4().hex[:16]}",
        author=author,
        reason=reason,
        created_at=now or datetime.now(UTC),
        operations=ops,
    )
    with store.transaction():
        change_set = replace(change_set, base=_base(_snapshot(store, touched_slots(ops))))
        simulate(store, change_set)
        store.save_change_set(change_set, create=True)
        store.log(author, reason, "create_change_set", {"id": change_set.id, "ops": len(ops)})
    return change_set


def update_draft(
    store: GraphStore,
    change_set_id: str,
    operations: Iterable[Operation | Mapping[str, Any]],
    who: str,
) -> ChangeSet:
    """Replace a draft's operations (names resolved as on creation); slots new to it get their
    base taken now."""
    ops = resolve_names(store, _operations(operations))
    with store.transaction():
        change_set = store.get_change_set(change_set_id)
        _require_state(change_set, ChangeSetState.DRAFT)
        base = _base_map(change_set)
        slots = touched_slots(ops)
        fresh = _snapshot(store, [s for s in slots if s not in base])
        merged = {slot: base.get(slot, fresh.get(slot, [])) for slot in slots}
        updated = replace(change_set, operations=ops, base=_base(merged))
        simulate(store, updated)
        store.save_change_set(updated)
        store.log(who, "draft edited", "update_change_set", {"id": change_set_id, "ops": len(ops)})
    return updated


def propose(store: GraphStore, change_set_id: str, who: str) -> ChangeSet:
    """Move a draft to review (draft → proposed)."""
    with store.transaction():
        change_set = store.get_change_set(change_set_id)
        _require_state(change_set, ChangeSetState.DRAFT)
        proposed = replace(change_set, state=ChangeSetState.PROPOSED)
        store.save_change_set(proposed)
        store.log(who, change_set.reason, "propose_change_set", {"id": change_set_id})
    return proposed


def rebase(store: GraphStore, change_set_id: str, who: str) -> ChangeSet:
    """Take a fresh base snapshot of a draft or proposed change set (after a conflict)."""
    with store.transaction():
        change_set = store.get_change_set(change_set_id)
        _require_state(change_set, ChangeSetState.DRAFT, ChangeSetState.PROPOSED)
        rebased = replace(
            change_set, base=_base(_snapshot(store, touched_slots(change_set.operations)))
        )
        simulate(store, rebased)
        store.save_change_set(rebased)
        store.log(who, "rebased on the current graph", "rebase_change_set", {"id": change_set_id})
    return rebased


def _raise_conflicts(change_set: ChangeSet, conflicts: list[dict[str, Any]]) -> None:
    if conflicts:
        lines = "; ".join(c["summary"] for c in conflicts)
        raise ConflictError(
            f"change set {change_set.id!r} is based on a stale graph: {lines}. "
            "Review the current facts and rebase it.",
            conflicts,
        )


def approve(store: GraphStore, change_set_id: str, reviewer: str, note: str = "") -> ChangeSet:
    """Apply a proposed change set and bump the graph version (proposed → approved).

    Conflicts and invalid operations are found before the first write; the version bump
    takes the store's write lock, so two approvals cannot interleave on SQL or Neo4j.
    """
    check_name(reviewer, "reviewer")
    change_set = store.get_change_set(change_set_id)
    _require_state(change_set, ChangeSetState.PROPOSED)
    _raise_conflicts(change_set, find_conflicts(store, change_set))
    simulate(store, change_set)
    with store.transaction():
        version = store.bump_graph_version()
        change_set = store.get_change_set(change_set_id)  # re-read under the lock
        _require_state(change_set, ChangeSetState.PROPOSED)
        _raise_conflicts(change_set, find_conflicts(store, change_set))
        _apply(store, change_set, reviewer)
        approved = replace(
            change_set,
            state=ChangeSetState.APPROVED,
            graph_version=version,
            reviewer=reviewer,
            review_note=note,
        )
        store.save_change_set(approved)
        payload = {"id": change_set_id, "graph_version": version}
        store.log(reviewer, note or "approved", "approve_change_set", payload)
    return approved


def reject(store: GraphStore, change_set_id: str, reviewer: str, note: str) -> ChangeSet:
    """Close a proposed change set without applying it (proposed → rejected)."""
    check_actor(reviewer, note)
    with store.transaction():
        change_set = store.get_change_set(change_set_id)
        _require_state(change_set, ChangeSetState.PROPOSED)
        rejected = replace(
            change_set, state=ChangeSetState.REJECTED, reviewer=reviewer, review_note=note
        )
        store.save_change_set(rejected)
        store.log(reviewer, note, "reject_change_set", {"id": change_set_id})
    return rejected
