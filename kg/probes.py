"""Probes derived from the graph: what an edited model must say, and what it must keep saying.

One derivation serves every caller: the edit runner and the demo (`edit_probes`), and the
benchmarks, the planner and the audit (`audit_probes`). Both run the same `_EditDeriver` in
the same order, so `edit_probes` returns exactly the audit's probes of its kinds for the same
`ProbeConfig`. For an edit (s, r, o → o*):

- rewrite: the edit prompt, o* against o;
- paraphrase: r's other cloze templates and the request's own `{}` templates, o* against o
  (`n_paraphrases` of them drawn by the request's seeded generator; None: all), never the
  request's `forms` (the edit may be optimised on them: they are not held out);
- neighbour: other subjects of r, those whose object is o first (CounterFact's neighbourhood),
  one probe each, their object against o*;
- last-token neighbour (when the caller passes its tokenizer's `last_token`): other subjects
  of r whose name ends in the same token as s, the ones a key read at s's last token also
  reaches; their object against o*;
- same_subject: s's other facts (at most `n_same_subject`), their object against o*,
  bucketed easy/middle/hard by how similar their relation is to r; relations that state the
  same fact as r (declared `equivalent_to`, or the same objects on every shared subject, at
  least two of them) are not other facts and are left out;
- multi_hop / multi_hop_stepwise: chains s -r-> o* -> … of 2..`max_hops` hops, composed into
  one cloze where the relations allow it and asked hop by hop; chains through o that o* does
  not also complete must stop answering (bucket "old", role "forget");
- reverse: o* → s, and o → s where r is one-to-one in the graph (stale, must go);
- form_*: the edited fact as cloze, question, multiple choice and true/false;
- prefix_distraction (EVOKE): the edited statement followed by a neighbour's prompt;
- fluency: open prompts whose generations are scored for n-gram entropy.

Every locality probe (neighbours, same-subject, prefix distraction) avoids the subjects and
facts that any request of the same batch edits.

Two derivations grew apart before they were merged here; where they differed, this rule won:

- Neighbours come from the graph, never from `EditRequest.neighbours`. The graph is the source
  of truth and the model was trained on it; requests made by the planner or `graph_edits`
  carry no neighbours; and a request cannot know which other subjects its batch edits. EVOKE's
  neighbourhood prompts are imported as graph facts with the case's true object, so those
  subjects still come first.
- Same-subject facts are those of the one entity the name denotes in r (a namesake's facts say
  nothing about this edit), and they are compared against o*: EVOKE's subject-specificity
  measure of an edit that leaks o* into every prompt about s. The audit's scorer reports the
  greedy exact match beside it; `editor.probe_scoring.probe_success` uses the comparison.
- Last-token neighbours follow the neighbour rule: compared against o* (they were judged by
  greedy match before) and never a subject the batch edits.
- Paraphrases include the request's own `{}` templates besides the relation's.

`unlearn_probes` derives the forget and retain probes of unlearning requests, and
`sample_probes` the whole-graph sample of untouched facts.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from contracts.types import EditRequest, Probe, ProbeKind, Subgraph, SubgraphEdge, UnlearnRequest
from kg.chains import Chain, chains_from, composed_prompt, follow, reverse_template
from kg.errors import ValidationError
from kg.forms import FALSE, TRUE, multiple_choice, question_prompt, true_false
from kg.store import GraphStore
from kg.types import Fact, FactStatus, fill
from kg.view import GraphView

# Every probe carries `meta["change"]` (the change it audits, the bootstrap's cluster) and,
# where a kind has sub-groups, `meta["bucket"]`: same-subject easy/middle/hard, multi-hop
# "2-hop".."4-hop" or "old", reverse "new"/"stale", true/false "new"/"old", and for unlearning
# "forget"/"retain". `meta["role"] == "forget"` marks a probe whose answer must no longer come.

AUDIT_SUFFIX = " The answer to this question, most simply, is"  # EVOKE's multi-hop suffix
KIND_SAMPLE = "sample"
KIND_RETAIN = "retain"
KIND_LAST_TOKEN_NEIGHBOUR = "last_token_neighbour"
EDIT_KINDS = (ProbeKind.REWRITE, ProbeKind.PARAPHRASE, ProbeKind.NEIGHBOUR, ProbeKind.SAME_SUBJECT)

LastToken = Callable[[str], int]  # a name -> the id of its last token (the model's tokenizer)


@dataclass(frozen=True)
class ProbeConfig:
    """How many probes of each kind are derived per change."""

    n_paraphrases: int | None = None  # None: every other cloze template of the relation
    n_neighbours: int = 10  # also the cap of last-token neighbours
    n_prefix: int = 5
    max_hops: int = 4
    chains_per_length: int = 2
    n_rivals: int = 3
    n_same_subject: int = 12
    n_unlearn_facts: int = 10
    stepwise: bool = True
    fluency: bool = True


EDIT_RUN_PROBES = ProbeConfig(n_paraphrases=5, n_neighbours=10)


@dataclass
class ChangeProbes:
    """The probes of one change, with the subgraph around it (edges marked new/old/current)."""

    change_id: str
    kind: str  # "edit" or "unlearn"
    request: EditRequest | UnlearnRequest
    probes: list[Probe] = field(default_factory=list)
    subgraph: Subgraph | None = None
    edge_status: tuple[str, ...] = ()
    entities: dict[str, str] = field(default_factory=dict)  # role -> entity id
    note: str = ""  # why the change has no probes (e.g. its subject left the graph)


def _seeded(*parts: object) -> random.Random:
    """A generator seeded by the given parts (stable across runs and machines)."""
    key = "\x1f".join(str(p) for p in parts).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


def _probe(
    kind: ProbeKind | str,
    prompt: str,
    expected: str,
    unexpected: str | None = None,
    rivals: Sequence[str] = (),
    **meta: str,
) -> Probe:
    """Build a probe; a rival equal to the expected answer is dropped."""
    if unexpected == expected:
        unexpected = None
    kept = tuple(dict.fromkeys(r for r in rivals if r != expected and r != unexpected))
    return Probe(prompt, expected, kind, unexpected, dict(meta), kept)


@dataclass(frozen=True)
class _Batch:
    """What a batch of edits changes: (subject, relation) slots and the subjects."""

    edited: frozenset[tuple[str, str]]
    subjects: frozenset[str]

    @classmethod
    def of(cls, view: GraphView, requests: Iterable[EditRequest]) -> _Batch:
        """Resolve the batch's subjects in the graph."""
        edited, subjects = set(), set()
        for r in requests:
            s = view.pick(r.subject, r.relation, "subject")
            if s is not None and r.relation is not None:
                edited.add((s, r.relation))
                subjects.add(s)
        return cls(frozenset(edited), frozenset(subjects))


class _EditDeriver:
    """Derives every probe kind of one edit from the graph."""

    def __init__(
        self, view: GraphView, request: EditRequest, config: ProbeConfig, batch: _Batch
    ) -> None:
        if request.relation is None:
            raise ValidationError(f"edit {request.request_id!r} names no relation")
        self.view, self.r, self.cfg = view, request, config
        self.change = request.request_id or f"{request.subject}|{request.relation}"
        self.rel = view.relation(request.relation)
        self.s = view.pick(request.subject, request.relation, "subject")
        self.edited, self.edited_subjects = batch.edited, batch.subjects - {self.s}
        self.o = None
        if self.s is not None and request.target_true:
            names = view.names(f.object for f in view.facts_about(self.s))
            for fact in view.facts_about(self.s):
                if fact.relation == request.relation and names.get(fact.object) == (
                    request.target_true
                ):
                    self.o = fact.object
        if self.o is None:
            self.o = view.pick(request.target_true, request.relation, "object")
        self.new = view.pick(request.target_new, request.relation, "object")
        self.rng = _seeded(self.change, request.subject, request.prompt)

    def p(self, kind: ProbeKind | str, prompt: str, expected: str, *args, **meta) -> Probe:
        """Build a probe of this change."""
        return _probe(kind, prompt, expected, *args, change=self.change, **meta)

    # -- kinds -------------------------------------------------------------------------------

    def rewrite(self) -> list[Probe]:
        """The edit prompt: new object against the old one."""
        r = self.r
        return [self.p(ProbeKind.REWRITE, r.rendered(), r.target_new, r.target_true)]

    def paraphrases(self) -> list[Probe]:
        """Every other cloze template of the relation (or `n_paraphrases` of them), except the
        request's forms: an edit may be optimised on those, so they are not held out."""
        trained = {self.r.prompt, *self.r.forms}
        templates = [t for t in self.rel.templates.cloze if t not in trained]
        templates += [
            t for t in self.r.paraphrases if t not in templates and t not in trained and "{}" in t
        ]
        if self.cfg.n_paraphrases is not None:
            templates = self.rng.sample(templates, min(self.cfg.n_paraphrases, len(templates)))
        return [
            self.p(
                ProbeKind.PARAPHRASE,
                fill(t, self.r.subject),
                self.r.target_new,
                self.r.target_true,
                template=t,
            )
            for t in templates
        ]

    def _untouched(self, facts: Iterable[Fact]) -> list[Fact]:
        """Keep the facts of other subjects that no edit of the batch touches."""
        return [
            f
            for f in facts
            if f.subject != self.s
            and f.subject not in self.edited_subjects
            and (f.subject, f.relation) not in self.edited
        ]

    def _neighbour_facts(self, limit: int) -> list[Fact]:
        """Other subjects with the relation: same old object first (CounterFact), then others."""
        facts = self._untouched(self.view.facts_of_relation(self.rel.id))
        same = [f for f in facts if f.object == self.o]
        other = [f for f in facts if f.object != self.o]
        self.rng.shuffle(same)
        self.rng.shuffle(other)
        seen: set[str] = set()
        out: list[Fact] = []
        for f in same + other:
            if f.subject not in seen:
                seen.add(f.subject)
                out.append(f)
            if len(out) >= limit:
                break
        return out

    def neighbours(self) -> list[Probe]:
        """Other subjects of the relation keep their object against the new one."""
        facts = self._neighbour_facts(self.cfg.n_neighbours)
        names = self.view.names({f.subject for f in facts} | {f.object for f in facts})
        template = self.rel.templates.cloze[0]
        return [
            self.p(
                ProbeKind.NEIGHBOUR,
                fill(template, names[f.subject]),
                names[f.object],
                self.r.target_new,
                neighbour=f.subject,
            )
            for f in facts
        ]

    def prefix_distraction(self) -> list[Probe]:
        """EVOKE's overfit probe: the edited statement, then a neighbour's prompt."""
        facts = [
            f
            for f in self._neighbour_facts(self.cfg.n_prefix * 2)
            if f.object != self.new and f.object
        ][: self.cfg.n_prefix]
        names = self.view.names({f.subject for f in facts} | {f.object for f in facts})
        statement = f"{self.r.rendered()} {self.r.target_new}."
        template = self.rel.templates.cloze[0]
        return [
            self.p(
                ProbeKind.PREFIX_DISTRACTION,
                f"{statement} {fill(template, names[f.subject])}",
                names[f.object],
                self.r.target_new,
            )
            for f in facts
            if names[f.object] != self.r.target_new
        ]

    def last_token_neighbours(self, last_token: LastToken) -> list[Probe]:
        """Other subjects of the relation whose name ends in the subject's last token."""
        token = last_token(self.r.subject)
        facts = self._untouched(self.view.facts_of_relation(self.rel.id))
        names = self.view.names({f.subject for f in facts} | {f.object for f in facts})
        template = self.rel.templates.cloze[0]
        out: list[Probe] = []
        seen: set[str] = set()
        for f in facts:
            if len(out) >= self.cfg.n_neighbours:
                break
            if f.subject in seen or last_token(names[f.subject]) != token:
                continue
            seen.add(f.subject)
            out.append(
                self.p(
                    KIND_LAST_TOKEN_NEIGHBOUR,
                    fill(template, names[f.subject]),
                    names[f.object],
                    self.r.target_new,
                    neighbour=f.subject,
                )
            )
        return out

    def same_subject(self) -> list[Probe]:
        """The subject's other facts, bucketed easy/middle/hard by relation similarity.

        Relations that state the edited fact in other words (`GraphView.same_fact`) are left
        out: the edit is meant to move them.
        """
        if self.s is None:
            return []
        sim = self.view.similarity()
        same = self.view.same_fact(self.rel.id)
        facts = [
            f
            for f in self.view.facts_about(self.s)
            if f.relation != self.rel.id
            and f.relation not in same
            and (f.subject, f.relation) not in self.edited
        ][: self.cfg.n_same_subject]  # one subject's facts are distinct (relation, object)
        names = self.view.names(f.object for f in facts)
        return [
            self.p(
                ProbeKind.SAME_SUBJECT,
                fill(self.view.relation(fact.relation).templates.cloze[0], self.r.subject),
                names[fact.object],
                self.r.target_new,
                bucket=sim.bucket(self.rel.id, fact.relation),
                relation=fact.relation,
                similarity=f"{sim.similarity(self.rel.id, fact.relation):.4f}",
            )
            for fact in facts
        ]

    def _rival_subjects(self, exclude_object: str | None) -> list[str]:
        """Subjects of the relation not linked to `exclude_object`, as reverse distractors."""
        linked = {
            f.subject
            for f in self.view.facts_of_relation(self.rel.id)
            if f.object == exclude_object
        }
        subjects = sorted(
            {f.subject for f in self.view.facts_of_relation(self.rel.id)} - linked - {self.s}
        )
        chosen = self.rng.sample(subjects, min(self.cfg.n_rivals, len(subjects)))
        return list(self.view.names(chosen).values())

    def reverse(self) -> list[Probe]:
        """The reversal check: new object -> subject, and the stale old object -> subject."""
        template = reverse_template(self.rel)
        if template is None:
            return []
        rivals = self._rival_subjects(self.new)
        targets = [(self.r.target_new, {"bucket": "new"})]
        if self.o is not None and self.r.target_true:
            subjects = {f.subject for f in self.view.facts_of_relation(self.rel.id)}
            holders = {
                f.subject for f in self.view.facts_of_relation(self.rel.id) if f.object == self.o
            }
            if holders == {self.s} and len(subjects) > 1:  # one-to-one in this graph
                targets.append((self.r.target_true, {"bucket": "stale", "role": "forget"}))
        return [
            self.p(ProbeKind.REVERSE, fill(template, obj), self.r.subject, None, rivals, **meta)
            for obj, meta in targets
        ]

    def _distractor_objects(self, k: int) -> list[str]:
        """Other objects of the relation (names), neither the old nor the new one."""
        objects = sorted(
            {f.object for f in self.view.facts_of_relation(self.rel.id)} - {self.o, self.new}
        )
        names = self.view.names(self.rng.sample(objects, min(len(objects), 2 * k)))
        bad = {self.r.target_new, self.r.target_true}
        return [n for n in dict.fromkeys(names.values()) if n not in bad][:k]

    def forms(self) -> list[Probe]:
        """The edited fact as cloze, question, multiple choice and true/false."""
        r, rel = self.r, self.rel
        new, old = r.target_new, r.target_true
        out = [
            self.p(ProbeKind.FORM_CLOZE, fill(rel.templates.cloze[0], r.subject), new, old),
            self.p(ProbeKind.FORM_QUESTION, question_prompt(rel, r.subject), new, old),
        ]
        options = [new] + ([old] if old else []) + self._distractor_objects(2)
        if len(options) >= 2:
            prompt, letters = multiple_choice(rel, r.subject, options, self.rng)
            rivals = [letters[o] for o in options if o not in (new, old)]
            unexpected = letters[old] if old else None
            out.append(self.p(ProbeKind.FORM_MC, prompt, letters[new], unexpected, rivals))
        out.append(self.p(ProbeKind.FORM_TF, true_false(rel, r.subject, new), TRUE, FALSE))
        if old:
            out.append(
                self.p(
                    ProbeKind.FORM_TF, true_false(rel, r.subject, old), FALSE, TRUE, bucket="old"
                )
            )
        return out

    def _chain_groups(self, start: str | None) -> dict[int, list[Chain]]:
        """Chains from `start` grouped by hop count, `chains_per_length` each, drawn by rng."""
        if start is None:
            return {}
        avoid = {x for x in (self.s, self.o, self.new) if x and x != start}
        chains = chains_from(self.view, self.rel.id, start, self.cfg.max_hops, avoid)
        groups: dict[int, list[Chain]] = defaultdict(list)
        for chain in chains:
            groups[chain.hops].append(chain)
        for hops, group in groups.items():
            groups[hops] = self.rng.sample(group, min(self.cfg.chains_per_length, len(group)))
        return dict(sorted(groups.items()))

    def multi_hop(self) -> list[Probe]:
        """New chains (composed and stepwise) and old chains that must stop answering."""
        out: list[Probe] = []
        new_groups = self._chain_groups(self.new)
        new_paths = {c.relations: c.end for g in new_groups.values() for c in g}
        for hops, group in new_groups.items():
            for chain in group:
                out += self._chain_probes(chain, f"{hops}-hop")
        for group in self._chain_groups(self.o).values():
            for chain in group:
                if new_paths.get(chain.relations) == chain.end:
                    continue
                if follow(self.view, self.new, chain.relations[1:]) == chain.end:
                    continue
                out += self._chain_probes(chain, "old", forget=True)
        return out

    def _chain_probes(self, chain: Chain, bucket: str, forget: bool = False) -> list[Probe]:
        """The composed and the stepwise probe of one chain (EVOKE's question when stored)."""
        names = self.view.names(chain.entities)
        end = names[chain.end]
        meta: dict[str, str] = {"bucket": bucket, "path": "/".join(chain.relations)}
        if forget:
            meta["role"] = "forget"
            rival = None
        else:
            old_end = follow(self.view, self.o, chain.relations[1:]) if self.o else None
            rival = names.get(old_end) or (
                self.view.names([old_end]).get(old_end) if old_end else None
            )
        out = []
        prompt = composed_prompt(self.view, self.r.subject, chain.relations)
        if prompt is not None:
            out.append(self.p(ProbeKind.MULTI_HOP, prompt, end, rival, form="cloze", **meta))
        last = chain.facts[-1] if chain.facts else None
        if (
            not forget
            and chain.hops == 2
            and last is not None
            and last.meta.get("case") == self.r.request_id
            and last.meta.get("question")
        ):
            answer = str(last.meta.get("answer") or end)
            old_answer = self._stored_old_answer(last)
            question = str(last.meta["question"]) + AUDIT_SUFFIX
            out.append(
                self.p(ProbeKind.MULTI_HOP, question, answer, old_answer, form="question", **meta)
            )
        if self.cfg.stepwise:
            hops = [self.view.relation(rid).templates.cloze[0] for rid in chain.relations]
            graph_answers = [names[e] for e in chain.entities]
            out.append(
                self.p(
                    ProbeKind.MULTI_HOP_STEPWISE,
                    fill(hops[0], self.r.subject),
                    end,
                    rival,
                    hops=json.dumps(hops),
                    subject=self.r.subject,
                    graph_answers=json.dumps(graph_answers),
                    **meta,
                )
            )
        return out

    def _stored_old_answer(self, new_fact: Fact) -> str | None:
        """The old-object answer of the same EVOKE case, when the graph stores it."""
        if self.o is None:
            return None
        for fact in self.view.facts_about(self.o):
            if fact.relation == new_fact.relation and fact.meta.get("case") == self.r.request_id:
                return str(fact.meta.get("answer") or self.view.name(fact.object))
        return None

    def fluency(self) -> list[Probe]:
        """Open prompts whose generations are scored for n-gram entropy."""
        prompts = [self.r.subject, self.r.rendered()]
        return [self.p(ProbeKind.FLUENCY, prompt, "") for prompt in prompts]

    def subgraph(self) -> tuple[Subgraph, tuple[str, ...]]:
        """The edit's neighbourhood: old and new edges, the subject's facts, chains, neighbours."""
        nodes: list[str] = []
        index: dict[str, int] = {}
        edges: list[SubgraphEdge] = []
        status: list[str] = []

        def node(entity_id: str, name: str | None = None) -> int:
            """Return the index of an entity's node, adding it if new."""
            if entity_id not in index:
                index[entity_id] = len(nodes)
                nodes.append(name or self.view.names([entity_id]).get(entity_id, entity_id))
            return index[entity_id]

        def edge(head: str, relation: str, tail: str, state: str) -> None:
            """Add a labelled edge with its status."""
            label = self.view.relations().get(relation)
            edges.append(SubgraphEdge(node(head), label.label if label else relation, node(tail)))
            status.append(state)

        subject = self.s or f"subject:{self.r.subject}"
        node(subject, self.r.subject)
        new = self.new or f"new:{self.r.target_new}"
        node(new, self.r.target_new)
        edge(subject, self.rel.id, new, "new")
        if self.o is not None:
            edge(subject, self.rel.id, self.o, "old")
        if self.s is not None:
            for fact in self.view.facts_about(self.s)[:6]:
                if fact.relation != self.rel.id:
                    edge(self.s, fact.relation, fact.object, "current")
        for group in self._chain_groups(self.new).values():
            for chain in group[:1]:
                for fact in chain.facts:
                    edge(fact.subject, fact.relation, fact.object, "current")
        for fact in self._neighbour_facts(3):
            edge(fact.subject, fact.relation, fact.object, "current")
        return Subgraph(tuple(nodes), tuple(edges), center=0), tuple(status)

    def edit_kinds(self, last_token: LastToken | None = None) -> list[Probe]:
        """Rewrite, paraphrase, neighbour and same-subject probes (and last-token neighbours)."""
        probes = self.rewrite() + self.paraphrases() + self.neighbours() + self.same_subject()
        if last_token is not None:
            probes += self.last_token_neighbours(last_token)
        return probes

    def derive(self, last_token: LastToken | None = None) -> ChangeProbes:
        """Return every probe of the edit and its subgraph."""
        probes = self.edit_kinds(last_token)
        probes += self.multi_hop() + self.reverse() + self.forms() + self.prefix_distraction()
        if self.cfg.fluency:
            probes += self.fluency()
        subgraph, status = self.subgraph()
        entities = {k: v for k, v in (("subject", self.s), ("old", self.o), ("new", self.new)) if v}
        return ChangeProbes(self.change, "edit", self.r, probes, subgraph, status, entities)


def edit_probes(
    graph: GraphStore | GraphView,
    request: EditRequest,
    config: ProbeConfig = EDIT_RUN_PROBES,
    *,
    batch: Sequence[EditRequest] = (),
    last_token: LastToken | None = None,
) -> list[Probe]:
    """Return one edit's rewrite, paraphrase, neighbour and same-subject probes.

    The audit's probes of these kinds for the same config. `batch`: the edits applied with
    this one, whose subjects and facts the locality probes avoid. `last_token` adds the
    last-token neighbours.
    """
    view = GraphView.of(graph)
    context = _Batch.of(view, [request, *batch])
    return _EditDeriver(view, request, config, context).edit_kinds(last_token)


def audit_probes(
    graph: GraphStore | GraphView,
    requests: Sequence[EditRequest],
    config: ProbeConfig | None = None,
    *,
    last_token: LastToken | None = None,
) -> list[ChangeProbes]:
    """Return the audit probes of a batch of edits; locality probes avoid every edited fact."""
    view = GraphView.of(graph)
    config = config or ProbeConfig()
    batch = _Batch.of(view, requests)
    return [_EditDeriver(view, r, config, batch).derive(last_token) for r in requests]


def _unlearn_change(
    view: GraphView, request: UnlearnRequest, config: ProbeConfig, forgotten: set[str]
) -> ChangeProbes:
    """Forget probes in every form (and in reverse), retain probes, fluency, subgraph."""
    change = request.request_id or request.concept
    rng = _seeded(change, request.concept)
    ids = list(
        dict.fromkeys(i for n in (request.concept, *request.aliases) for i in view.resolve(n))
    )
    probes: list[Probe] = []

    def add(kind: ProbeKind | str, prompt: str, expected: str, *args, **meta: str) -> None:
        """Append a probe of this change."""
        probes.append(_probe(kind, prompt, expected, *args, change=change, **meta))

    facts = [f for entity in ids for f in view.facts_about(entity)][: config.n_unlearn_facts]
    names = view.names({f.object for f in facts} | set(ids))
    for fact in facts:
        rel = view.relation(fact.relation)
        obj = names[fact.object]
        forget = {"bucket": "forget", "role": "forget", "relation": fact.relation}
        add(ProbeKind.FORM_CLOZE, fill(rel.templates.cloze[0], request.concept), obj, **forget)
        for alias in request.aliases[:2]:
            add(
                ProbeKind.FORM_CLOZE,
                fill(rel.templates.cloze[0], alias),
                obj,
                alias=alias,
                **forget,
            )
        add(ProbeKind.FORM_QUESTION, question_prompt(rel, request.concept), obj, **forget)
        others = sorted({f.object for f in view.facts_of_relation(rel.id)} - {fact.object})
        distractors = list(view.names(rng.sample(others, min(3, len(others)))).values())
        options = list(dict.fromkeys([obj, *distractors]))
        if len(options) >= 2:
            prompt, letters = multiple_choice(rel, request.concept, options, rng)
            rivals = [letters[o] for o in options if o != obj]
            add(ProbeKind.FORM_MC, prompt, letters[obj], None, rivals, **forget)
        add(ProbeKind.FORM_TF, true_false(rel, request.concept, obj), TRUE, FALSE, **forget)
    inbound = [f for entity in ids for f in view.facts_with_object(entity)][
        : config.n_unlearn_facts
    ]
    subject_names = view.names(f.subject for f in inbound)
    for fact in inbound:
        if fact.subject in forgotten:
            continue
        template = view.relation(fact.relation).templates.cloze[0]
        add(
            ProbeKind.REVERSE,
            fill(template, subject_names[fact.subject]),
            request.concept,
            bucket="forget",
            role="forget",
            relation=fact.relation,
        )
    for probe in request.forms:
        meta = {**probe.meta, "change": change, "bucket": "forget", "role": "forget"}
        probes.append(Probe(probe.prompt, probe.expected, probe.kind, probe.unexpected, meta))
    relations = sorted({f.relation for f in facts})
    for relation_id in relations:
        pool = [f for f in view.facts_of_relation(relation_id) if f.subject not in forgotten]
        chosen = rng.sample(pool, min(len(pool), max(1, config.n_neighbours // len(relations))))
        chosen_names = view.names({f.subject for f in chosen} | {f.object for f in chosen})
        template = view.relation(relation_id).templates.cloze[0]
        for f in chosen:
            add(
                KIND_RETAIN,
                fill(template, chosen_names[f.subject]),
                chosen_names[f.object],
                bucket="neighbour",
                relation=relation_id,
            )
    linked = [g for f in facts for g in view.facts_about(f.object) if g.subject not in forgotten]
    linked_names = view.names({g.subject for g in linked} | {g.object for g in linked})
    for g in linked[: config.n_neighbours]:
        template = view.relation(g.relation).templates.cloze[0]
        add(
            KIND_RETAIN,
            fill(template, linked_names[g.subject]),
            linked_names[g.object],
            bucket="linked",
            relation=g.relation,
        )
    if config.fluency:
        add(ProbeKind.FLUENCY, request.concept, "")
    nodes = [request.concept]
    edges: list[SubgraphEdge] = []
    status: list[str] = []
    for fact in facts[:8]:
        nodes.append(names[fact.object])
        label = view.relation(fact.relation).label
        edges.append(SubgraphEdge(0, label, len(nodes) - 1))
        status.append("forget")
    subgraph = Subgraph(tuple(nodes), tuple(edges), 0)
    entities = {"concept": ids[0]} if ids else {}
    return ChangeProbes(change, "unlearn", request, probes, subgraph, tuple(status), entities)


def unlearn_probes(
    graph: GraphStore | GraphView,
    requests: Sequence[UnlearnRequest],
    config: ProbeConfig | None = None,
) -> list[ChangeProbes]:
    """Return forget probes (cloze, question, choice, true/false, reverse) and retain probes."""
    view = GraphView.of(graph)
    config = config or ProbeConfig()
    forgotten = {i for r in requests for n in (r.concept, *r.aliases) for i in view.resolve(n)}
    return [_unlearn_change(view, r, config, forgotten) for r in requests]


def sample_probes(
    graph: GraphStore | GraphView,
    n: int = 1000,
    seed: int = 0,
    exclude_subjects: Iterable[str] = (),
    exclude_names: Iterable[str] = (),
    exclude_objects: Iterable[str] = (),
) -> list[Probe]:
    """Return `n` random current facts (cloze) no change touches (by subject or listed object)."""
    view = GraphView.of(graph)
    excluded, objects = set(exclude_subjects), set(exclude_objects)
    for name in exclude_names:
        excluded.update(view.resolve(name))
    facts = [
        f
        for f in view.store.list_facts(FactStatus.CURRENT)
        if f.subject not in excluded and f.object not in objects
    ]
    chosen = random.Random(seed).sample(facts, min(n, len(facts)))
    names = view.names({f.subject for f in chosen} | {f.object for f in chosen})
    return [
        Probe(
            prompt=fill(view.relation(f.relation).templates.cloze[0], names[f.subject]),
            expected=names[f.object],
            kind=KIND_SAMPLE,
            meta={"fact": f"{f.subject}|{f.relation}|{f.object}", "relation": f.relation},
        )
        for f in chosen
    ]
