"""Planner: approved change sets become ordered batches of `EditRequest` / `UnlearnRequest`.

1. **Intents.** Operations are read in approval order (graph version, then position):
   replace object → edit (o → o*); add fact → edit (a retract of the same slot earlier in
   the same change set becomes its old object); retract fact alone → forget that fact;
   mark concept to forget → unlearn the concept. Add concept / add alias change only the
   graph: they are listed in `Plan.skipped` with that reason.
2. **Dedupe.** The same edit, fact forget or concept forget from several change sets is
   planned once; `PlannedRequest.change_sets` lists every change set that asked for it.
3. **Dependencies.** A request depends on every earlier request on the same (subject,
   relation) slot, on an earlier edit or unlearn request of the other kind on the same
   subject, and on earlier edits it chains with (its subject is their old or new object, or
   theirs is its). Dependent requests go to later batches, in graph order.
4. **Conflicts** are reported, never dropped: two targets for one (subject, relation), and
   an edit and a forget on the same subject. Conflicting requests never share a batch.
5. **Batches** hold one kind of request each and at most `batch_size` of them.
6. **Probes.** Every edit carries rewrite, paraphrase (every other cloze template),
   neighbour, same-subject, multi-hop, reverse and form probes (`kg.probes`, the audit's
   derivation), and its GLAME subgraph (`kg.expand`) goes into `EditRequest.subgraph`.
   Every unlearn request carries forget probes in every form and retain probes; a concept's
   forget texts include the related facts UIPE-style discovery (`kg.related`) finds, and
   its anchor is the curator's redirect, else the suggested one (`kg.concepts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from contracts.types import EditRequest, Probe, ProbeKind, UnlearnRequest
from kg.concepts import suggest_anchor
from kg.errors import StateError, ValidationError
from kg.expand import ExpansionConfig, expand_edit
from kg.forms import edit_forms
from kg.probes import ProbeConfig, audit_probes, unlearn_probes
from kg.related import Embedder, RelatedConfig, RelatedFact, related_in_store, target_entities
from kg.store.base import GraphStore
from kg.types import ChangeSet, ChangeSetState, Fact, OperationKind, fill
from kg.verbalise import statement
from kg.view import GraphView

EDIT, UNLEARN = "edit", "unlearn"
TWO_TARGETS, EDIT_AND_FORGET = "two_targets", "edit_and_forget"
_AUDIT_KINDS = {
    ProbeKind.REWRITE,
    ProbeKind.PARAPHRASE,
    ProbeKind.NEIGHBOUR,
    ProbeKind.SAME_SUBJECT,
    ProbeKind.MULTI_HOP,
    ProbeKind.MULTI_HOP_STEPWISE,
    ProbeKind.REVERSE,
    ProbeKind.FORM_CLOZE,
    ProbeKind.FORM_QUESTION,
    ProbeKind.FORM_MC,
    ProbeKind.FORM_TF,
    ProbeKind.PREFIX_DISTRACTION,
}


@dataclass(frozen=True)
class PlannerConfig:
    """Batch size and the settings of expansion, related discovery and probes."""

    batch_size: int = 16
    expansion: ExpansionConfig = field(default_factory=ExpansionConfig)
    related: RelatedConfig = field(default_factory=lambda: RelatedConfig(threshold=0.35, cap=20))
    probes: ProbeConfig = field(default_factory=lambda: ProbeConfig(fluency=False))
    n_retain: int = 20

    def __post_init__(self) -> None:
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValidationError(f"batch_size must be a positive integer, got {self.batch_size!r}")


@dataclass(frozen=True)
class Intent:
    """What one operation (or a retract + add pair) asks of the model."""

    kind: str  # "edit", "forget_fact" or "forget"
    change_set: str
    position: int
    subject: str | None = None
    relation: str | None = None
    old: str | None = None
    new: str | None = None
    concept: str | None = None

    @property
    def key(self) -> tuple:
        """Return what makes two intents the same request."""
        return (self.kind, self.subject, self.relation, self.old, self.new, self.concept)


@dataclass(frozen=True)
class PlannedRequest:
    """One request of the plan, with its probes, provenance and dependencies."""

    request_id: str
    kind: str  # "edit" or "unlearn"
    request: EditRequest | UnlearnRequest
    probes: tuple[Probe, ...]
    change_sets: tuple[str, ...]
    subject_ids: tuple[str, ...]
    relation: str | None = None
    old_object: str | None = None
    new_object: str | None = None
    depends_on: tuple[str, ...] = ()
    related: tuple[RelatedFact, ...] = ()


@dataclass(frozen=True)
class PlanConflict:
    """Two requests that must not run together; how the plan resolved it."""

    kind: str  # "two_targets" or "edit_and_forget"
    request_ids: tuple[str, str]
    subject: str
    relation: str | None
    detail: str


@dataclass(frozen=True)
class Batch:
    """Requests of one kind that a worker can run together."""

    index: int
    kind: str
    requests: tuple[PlannedRequest, ...]


@dataclass(frozen=True)
class Plan:
    """The batches in run order, the conflicts found, and operations with no model change."""

    batches: tuple[Batch, ...]
    conflicts: tuple[PlanConflict, ...]
    skipped: tuple[dict[str, Any], ...]
    change_sets: tuple[str, ...]
    graph_version: int

    def requests(self) -> list[PlannedRequest]:
        """Return every planned request in run order."""
        return [r for batch in self.batches for r in batch.requests]

    def to_dict(self) -> dict[str, Any]:
        """Return the plan as JSON-ready nested dicts."""
        return asdict(self)


def _ordered(store: GraphStore, change_sets: Iterable[ChangeSet | str]) -> list[ChangeSet]:
    """Return approved change sets in approval (graph version) order; StateError otherwise."""
    out = []
    for item in change_sets:
        cs = store.get_change_set(item) if isinstance(item, str) else item
        if cs.state is not ChangeSetState.APPROVED:
            raise StateError(f"change set {cs.id!r} is {cs.state.value}; only approved ones plan")
        out.append(cs)
    return sorted(out, key=lambda c: (c.graph_version or 0, c.id))


def intents(change_sets: Sequence[ChangeSet]) -> tuple[list[Intent], list[dict[str, Any]]]:
    """Return (intents in order, skipped operations with reasons)."""
    out: list[Intent] = []
    skipped: list[dict[str, Any]] = []
    for cs in change_sets:
        pending: dict[tuple[str, str], Intent] = {}  # retracts that an add may turn into an edit
        for pos, op in enumerate(cs.operations):
            p = op.payload
            if op.kind is OperationKind.REPLACE_OBJECT:
                out.append(
                    Intent(
                        EDIT, cs.id, pos, p["subject"], p["relation"], p["object"], p["new_object"]
                    )
                )
            elif op.kind is OperationKind.RETRACT_FACT:
                intent = Intent("forget_fact", cs.id, pos, p["subject"], p["relation"], p["object"])
                pending[(p["subject"], p["relation"])] = intent
                out.append(intent)
            elif op.kind is OperationKind.ADD_FACT:
                slot = (p["subject"], p["relation"])
                retract = pending.pop(slot, None)
                if retract is not None:
                    out.remove(retract)
                old = retract.old if retract else None
                out.append(Intent(EDIT, cs.id, pos, slot[0], slot[1], old, p["object"]))
            elif op.kind is OperationKind.MARK_FORGET:
                out.append(Intent("forget", cs.id, pos, concept=p["concept"]))
            else:
                reason = "graph-only operation: the model needs no change"
                skipped.append(
                    {"change_set": cs.id, "position": pos, "kind": op.kind.value, "reason": reason}
                )
    return out, skipped


def _dedupe(items: Sequence[Intent]) -> list[tuple[Intent, list[str]]]:
    """Return unique intents (first occurrence) with every change set that asked for each."""
    first: dict[tuple, tuple[Intent, list[str]]] = {}
    for intent in items:
        if intent.key in first:
            sources = first[intent.key][1]
            if intent.change_set not in sources:
                sources.append(intent.change_set)
        else:
            first[intent.key] = (intent, [intent.change_set])
    return list(first.values())


class _Builder:
    """Turns deduplicated intents into requests with probes."""

    def __init__(self, store: GraphStore, config: PlannerConfig, embed: Embedder | None) -> None:
        self.store, self.config, self.embed = store, config, embed
        self.view = GraphView(store)

    def name(self, entity_id: str) -> str:
        """Return an entity's name."""
        return self.view.name(entity_id)

    def edit(self, intent: Intent, request_id: str) -> EditRequest:
        """Return the edit request with its GLAME subgraph (`_attach_audit_probes` adds probes)."""
        assert intent.subject and intent.relation and intent.new
        relation = self.view.relation(intent.relation)
        expansion = expand_edit(
            self.store,
            intent.subject,
            intent.relation,
            intent.new,
            self.config.expansion,
            view=self.view,
        )
        request = EditRequest(
            subject=self.name(intent.subject),
            prompt=relation.templates.cloze[0],
            target_new=self.name(intent.new),
            target_true=self.name(intent.old) if intent.old else None,
            paraphrases=tuple(relation.templates.cloze[1:]),
            subgraph=expansion.subgraph,
            relation=intent.relation,
            request_id=request_id,
            forms=edit_forms(relation, relation.templates.cloze[0]),
        )
        return request

    def forget_fact(
        self, intent: Intent, request_id: str
    ) -> tuple[UnlearnRequest, tuple[Probe, ...]]:
        """Return an unlearn request for one retracted fact (and probes of it)."""
        assert intent.subject and intent.relation and intent.old
        fact = Fact(intent.subject, intent.relation, intent.old)
        relation = self.view.relation(intent.relation)
        subject, obj = self.name(intent.subject), self.name(intent.old)
        change = {"change": request_id}
        forget = {**change, "bucket": "forget", "role": "forget", "relation": intent.relation}
        probes = [
            Probe(fill(t, subject), obj, ProbeKind.FORM_CLOZE, None, forget)
            for t in relation.templates.cloze
        ]
        others = [f for f in self.view.facts_about(intent.subject) if f.triple != fact.triple]
        retain = [statement(f, self.view.store) for f in others[: self.config.n_retain]]
        for f in others[: self.config.n_retain]:
            template = self.view.relation(f.relation).templates.cloze[0]
            meta = {**change, "bucket": "same_subject", "relation": f.relation}
            probes.append(Probe(fill(template, subject), self.name(f.object), "retain", None, meta))
        request = UnlearnRequest(
            concept=subject,
            forms=tuple(p for p in probes if p.meta.get("role") == "forget"),
            forget_texts=(f"{fill(relation.templates.cloze[0], subject)} {obj}",),
            retain_texts=tuple(retain),
            request_id=request_id,
        )
        return request, tuple(probes)

    def forget(
        self, intent: Intent, request_id: str
    ) -> tuple[UnlearnRequest, tuple[Probe, ...], tuple[RelatedFact, ...], tuple[str, ...]]:
        """Return a concept's unlearn request: forms, related forget texts, retain texts."""
        assert intent.concept
        concept = self.store.get_concept(intent.concept)
        targets = tuple(target_entities(self.store, intent.concept))
        related: list[RelatedFact] = []
        if targets:
            related = related_in_store(
                self.store, targets, config=self.config.related, embed=self.embed
            )
        anchor = None
        if concept.redirect_to:
            found = self.view.names([concept.redirect_to])
            anchor = found.get(concept.redirect_to) or concept.redirect_to
        else:  # no curator's choice: the suggested harmless anchor, so redirecting methods run
            suggestion = suggest_anchor(self.view, concept, embed=self.embed)
            anchor = suggestion.name if suggestion is not None else None
        forget_texts = [statement(r.fact, self.view.store) for r in related]
        kept = {r.fact.triple for r in related}
        ring = min(self.config.related.hops + 1, 6)
        fanout = self.config.related.fanout
        nearby = (
            self.store.neighbourhood(targets, hops=ring, limit_per_entity=fanout) if targets else []
        )
        retain = [
            statement(f, self.view.store)
            for f in nearby
            if f.triple not in kept and f.subject not in targets and f.object not in targets
        ][: self.config.n_retain]
        request = UnlearnRequest(
            concept=concept.name,
            aliases=concept.aliases,
            anchor=anchor,
            forget_texts=tuple(dict.fromkeys(forget_texts)),
            retain_texts=tuple(dict.fromkeys(retain)),
            request_id=request_id,
        )
        (change,) = unlearn_probes(self.view, [request], self.config.probes)
        forms = tuple(p for p in change.probes if p.meta.get("role") == "forget")
        request = UnlearnRequest(
            request.concept,
            request.aliases,
            request.anchor,
            forms,
            request.forget_texts,
            request.retain_texts,
            request_id,
        )
        return request, tuple(change.probes), tuple(related), targets


def _depends(b: PlannedRequest, a: PlannedRequest) -> bool:
    """Return True when `b` must run after `a` (same slot, same subject across edit and
    unlearn, or chained through an object)."""
    if a.relation is not None and (b.subject_ids, b.relation) == (a.subject_ids, a.relation):
        return True
    if a.kind != b.kind and set(a.subject_ids) & set(b.subject_ids):
        return True
    a_objects = {a.old_object, a.new_object} - {None}
    b_objects = {b.old_object, b.new_object} - {None}
    if a.kind == EDIT and set(b.subject_ids) & a_objects:
        return True
    return b.kind == EDIT and bool(set(a.subject_ids) & b_objects)


def _conflict(a: PlannedRequest, b: PlannedRequest) -> PlanConflict | None:
    """Return the conflict between two requests, if any."""
    if (
        a.kind == b.kind == EDIT
        and (a.subject_ids, a.relation) == (b.subject_ids, b.relation)
        and a.new_object != b.new_object
    ):
        return PlanConflict(
            TWO_TARGETS,
            (a.request_id, b.request_id),
            a.subject_ids[0],
            a.relation,
            f"({a.subject_ids[0]}, {a.relation}) gets two targets, {a.new_object} then "
            f"{b.new_object}; they run in graph order, in separate batches",
        )
    kinds = {a.kind, b.kind}
    shared = set(a.subject_ids) & set(b.subject_ids)
    if kinds == {EDIT, UNLEARN} and shared:
        edit = a if a.kind == EDIT else b
        return PlanConflict(
            EDIT_AND_FORGET,
            (a.request_id, b.request_id),
            sorted(shared)[0],
            edit.relation,
            f"{sorted(shared)[0]} is edited and forgotten; they run in graph order, in "
            "separate batches",
        )
    return None


def plan(
    store: GraphStore,
    change_sets: Iterable[ChangeSet | str],
    config: PlannerConfig | None = None,
    *,
    embed: Embedder | None = None,
) -> Plan:
    """Return the batches of model requests for approved change sets (see module doc)."""
    config = config or PlannerConfig()
    ordered = _ordered(store, change_sets)
    items, skipped = intents(ordered)
    builder = _Builder(store, config, embed)
    planned: list[PlannedRequest] = []
    for intent, sources in _dedupe(items):
        request_id = f"{intent.change_set}:{intent.position}"
        if intent.kind == EDIT:
            request = builder.edit(intent, request_id)
            planned.append(
                PlannedRequest(
                    request_id, EDIT, request, (), tuple(sources), (intent.subject,),
                    intent.relation, intent.old, intent.new,
                )
            )  # fmt: skip
        elif intent.kind == "forget_fact":
            request, probes = builder.forget_fact(intent, request_id)
            planned.append(
                PlannedRequest(
                    request_id, UNLEARN, request, probes, tuple(sources), (intent.subject,),
                    intent.relation, intent.old, None,
                )
            )  # fmt: skip
        else:
            request, probes, related, targets = builder.forget(intent, request_id)
            subjects = targets or (str(intent.concept),)
            planned.append(
                PlannedRequest(
                    request_id, UNLEARN, request, probes, tuple(sources), subjects, related=related
                )
            )
    planned = _attach_audit_probes(builder.view, planned, config)
    return _batch(planned, config, skipped, ordered, store.graph_version())


def _attach_audit_probes(
    view: GraphView, planned: list[PlannedRequest], config: PlannerConfig
) -> list[PlannedRequest]:
    """Add the audit's probes (every kind but fluency) to every edit."""
    edits = [p for p in planned if p.kind == EDIT]
    if not edits:
        return planned
    derived = audit_probes(view, [p.request for p in edits], config.probes)  # type: ignore[misc]
    by_id = {}
    for item, change in zip(edits, derived, strict=True):
        keep = tuple(p for p in change.probes if p.kind in _AUDIT_KINDS)
        neighbours = tuple(p for p in keep if p.kind == ProbeKind.NEIGHBOUR)
        request = item.request
        assert isinstance(request, EditRequest)
        request = replace(request, neighbours=neighbours)
        by_id[item.request_id] = PlannedRequest(
            item.request_id, EDIT, request, keep + item.probes, item.change_sets,
            item.subject_ids, item.relation, item.old_object, item.new_object,
        )  # fmt: skip
    return [by_id.get(p.request_id, p) for p in planned]


def _batch(
    planned: list[PlannedRequest],
    config: PlannerConfig,
    skipped: list[dict[str, Any]],
    ordered: Sequence[ChangeSet],
    graph_version: int,
) -> Plan:
    """Place requests in batches: after their dependencies, apart from their conflicts."""
    batches: list[tuple[str, list[PlannedRequest]]] = []
    where: dict[str, int] = {}
    conflicts: list[PlanConflict] = []
    final: list[PlannedRequest] = []
    for i, item in enumerate(planned):
        earlier = planned[:i]
        deps = tuple(a.request_id for a in earlier if _depends(item, a))
        clashes = [c for a in earlier if (c := _conflict(a, item)) is not None]
        conflicts += clashes
        clash_ids = {c.request_ids[0] for c in clashes}
        item = PlannedRequest(**{**item.__dict__, "depends_on": deps})
        start = max((where[d] + 1 for d in deps), default=0)
        slot = None
        for index in range(start, len(batches)):
            kind, members = batches[index]
            if kind != item.kind or len(members) >= config.batch_size:
                continue
            if any(m.request_id in clash_ids for m in members):
                continue
            slot = index
            break
        if slot is None:
            batches.append((item.kind, []))
            slot = len(batches) - 1
        batches[slot][1].append(item)
        where[item.request_id] = slot
        final.append(item)
    return Plan(
        batches=tuple(Batch(i, kind, tuple(members)) for i, (kind, members) in enumerate(batches)),
        conflicts=tuple(conflicts),
        skipped=tuple(skipped),
        change_sets=tuple(c.id for c in ordered),
        graph_version=graph_version,
    )
