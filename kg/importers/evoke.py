"""Import the EVOKE benchmark (CounterFact-style edit cases) into a graph, and read its cases.

What becomes a fact (the `source` of each fact says which rule made it):

- ``evoke:true``: the case subject with its true object.
- ``evoke:neighbour``: each neighbourhood prompt's subject with the case's true object; the
  subject is found by matching the prompt against the relation's cloze templates.
- ``evoke:attribute``: each attribute prompt's subject with the case's new object (CounterFact
  builds attribute prompts from subjects whose true object is the new object).
- ``evoke:same_subject``: subj_spec's `relation_specificity` prompt and answer.
- ``evoke:portability_new`` / ``evoke:portability_true``: the recalled second hop
  "(head, relation, tail)" and the portability answers, attached to the target the head
  names; ``evoke:portability_recalled`` when the head names neither target.

Prompts that match no template, or several templates with different subjects, are counted
in the summary and skipped, never guessed.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.types import EditRequest, Probe, ProbeKind
from kg.errors import ImportFormatError, ValidationError
from kg.store import GraphStore
from kg.types import (
    Entity,
    Fact,
    Relation,
    RelationTemplates,
    check_name,
    check_template,
    name_key,
    slug,
)

SOURCE_TRUE = "evoke:true"
SOURCE_NEIGHBOUR = "evoke:neighbour"
SOURCE_ATTRIBUTE = "evoke:attribute"
SOURCE_SAME_SUBJECT = "evoke:same_subject"
SOURCE_PORT_NEW = "evoke:portability_new"
SOURCE_PORT_TRUE = "evoke:portability_true"
SOURCE_PORT_RECALLED = "evoke:portability_recalled"

MAX_ANSWER_CHARS = 60  # longer portability answers are sentences, not entity names

# Wikidata relations of evoke_main: label, question template, functional (one object).
MAIN_RELATIONS: dict[str, tuple[str, str, bool]] = {
    "P101": ("field of work", "What is the field of work of {}?", False),
    "P103": ("native language", "What is the native language of {}?", True),
    "P106": ("occupation", "What is the occupation of {}?", False),
    "P108": ("employer", "Who is the employer of {}?", False),
    "P127": ("owned by", "Who owns {}?", False),
    "P1303": ("instrument", "What instrument does {} play?", False),
    "P131": ("located in the administrative entity", "Where is {} located?", True),
    "P136": ("genre", "What genre does {} play?", False),
    "P138": ("named after", "What is {} named after?", False),
    "P140": ("religion", "What is the religion of {}?", False),
    "P1412": ("languages spoken or written", "What language does {} speak?", False),
    "P159": ("headquarters location", "Where are the headquarters of {}?", True),
    "P17": ("country", "Which country is {} located in?", True),
    "P176": ("manufacturer", "Which company produces {}?", True),
    "P178": ("developer", "Which company developed {}?", False),
    "P19": ("place of birth", "Where was {} born?", True),
    "P190": ("twinned administrative body", "What is a twin city of {}?", False),
    "P20": ("place of death", "Where did {} die?", True),
    "P264": ("record label", "What is the record label of {}?", False),
    "P27": ("country of citizenship", "What is the country of citizenship of {}?", False),
    "P276": ("location", "Where is {} located?", True),
    "P30": ("continent", "Which continent is {} located in?", True),
    "P36": ("capital", "What is the capital of {}?", True),
    "P364": ("original language of work", "What is the original language of {}?", True),
    "P37": ("official language", "What is the official language of {}?", False),
    "P39": ("position held", "What position does {} hold?", False),
    "P407": ("language of work", "What language is {} written in?", True),
    "P413": ("position played", "What position does {} play?", False),
    "P449": ("original broadcaster", "On which network did {} first air?", True),
    "P463": ("member of", "What organisation is {} a member of?", False),
    "P495": ("country of origin", "What is the country of origin of {}?", True),
    "P641": ("sport", "What sport does {} play?", True),
    "P740": ("location of formation", "Where was {} founded?", True),
    "P937": ("work location", "Where did {} work?", False),
}

# Question templates of relations known by a noun label (subj_spec labels, prompt labels).
LABEL_QUESTIONS: dict[str, str] = {
    "award received": "What award did {} receive?",
    "sibling": "Who is a sibling of {}?",
    "composer": "Who composed {}?",
    "spouse": "Who is the spouse of {}?",
    "cast member": "Who is a cast member of {}?",
    "child": "Who is a child of {}?",
    "member of sports team": "Which sports team is {} a member of?",
    "director": "Who directed {}?",
    "screenwriter": "Who wrote the screenplay of {}?",
    "league": "Which league does {} play in?",
    "position held": "What position does {} hold?",
    "ethnic group": "Which ethnic group is {} associated with?",
    "employer": "Who is the employer of {}?",
    "author": "Who is the author of {}?",
    "head of government": "Who is the head of government of {}?",
    "head of state": "Who is the head of state of {}?",
    "currency": "What is the currency of {}?",
    "mother": "Who is the mother of {}?",
    "father": "Who is the father of {}?",
    "founder": "Who founded {}?",
    "siblings": "Who is a sibling of {}?",
    "cast members": "Who is a cast member of {}?",
}

# Labels (subj_spec relations and those read off prompts) naming a single-valued relation.
FUNCTIONAL_LABELS = frozenset(
    {"mother", "father", "gender", "sexual orientation", "head of state", "head of government"}
)

_NOUN_PROMPT = re.compile(r"^The (?:names? of (?:the )?)?(?P<label>.+?) of \{\} (?:is|are)$")


@dataclass
class EvokeImportSummary:
    """Counts of an EVOKE import: what was built, what was added, what was skipped and why."""

    cases_main: int = 0
    cases_subj: int = 0
    entities: int = 0
    relations: int = 0
    facts_by_source: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    skipped_examples: dict[str, list[str]] = field(default_factory=dict)
    added: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def facts(self) -> int:
        """Return the number of distinct facts built."""
        return sum(self.facts_by_source.values())


def load_cases(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Read an EVOKE JSON file (a list of cases), keeping the first `limit` cases."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ImportFormatError(exc.lineno, f"{path}: invalid JSON: {exc.msg}") from None
    if not isinstance(data, list):
        raise ImportFormatError(1, f"{path}: expected a JSON list of cases")
    return data if limit is None else data[:limit]


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


class TemplateMatcher:
    """Recover the subject of a rendered prompt from a set of `{}` templates."""

    def __init__(self, templates: Iterable[str]) -> None:
        self._buckets: dict[str, list[tuple[str, str, int]]] = {}
        for template in _unique(templates):
            prefix, suffix = template.split("{}")
            weight = len(prefix) + len(suffix)
            self._buckets.setdefault(suffix[-3:], []).append((prefix, suffix, weight))

    def match(self, prompt: str) -> tuple[str | None, str]:
        """Return (subject, "") on a unique best match, else (None, reason)."""
        found: dict[str, int] = {}
        keys = {"", prompt[-1:], prompt[-2:], prompt[-3:]}  # buckets are suffix[-3:]
        for key in keys:
            for prefix, suffix, weight in self._buckets.get(key, ()):
                if len(prompt) <= weight or not prompt.startswith(prefix):
                    continue
                if not prompt.endswith(suffix):
                    continue
                subject = prompt[len(prefix) : len(prompt) - len(suffix)].strip()
                if subject:
                    found[subject] = max(found.get(subject, 0), weight)
        if not found:
            return None, "no_template"
        best = max(found.values())
        subjects = [s for s, w in found.items() if w == best]
        if len(subjects) > 1:
            return None, "ambiguous"
        return subjects[0], ""


def parse_recalled(text: str) -> tuple[str, str, str] | None:
    """Parse "(head, relation, tail)"; a tail may hold commas. None if it has no 3 parts."""
    inner = text.strip()
    if inner.startswith("(") and inner.endswith(")"):
        inner = inner[1:-1]
    parts = [p.strip() for p in inner.split(",")]
    if len(parts) < 3 or not all(parts[:2]):
        return None
    tail = ", ".join(parts[2:]).strip()
    return (parts[0], parts[1], tail) if tail else None


def label_relation_id(label: str) -> str:
    """Return the stable relation id of a relation known only by its label."""
    return f"label:{slug(label)}"


def _template_relation(template: str) -> tuple[str, str]:
    """Return (relation id, label) of a relation known only by one prompt template."""
    noun = _NOUN_PROMPT.match(template)
    if noun:
        label = noun.group("label").lower()
        return label_relation_id(label), label
    return f"tmpl:{slug(template.replace('{}', ' '))}", template


def subj_relation_ids(
    main_cases: Sequence[dict[str, Any]], subj_cases: Sequence[dict[str, Any]]
) -> dict[str, str]:
    """Map each subj_spec label to a main P-id (same case prompt, else same label) or a label id."""
    owners: dict[str, set[str]] = {}
    pid_by_label: dict[str, str] = {}
    for case in main_cases:
        rw = case["requested_rewrite"]
        pid = rw["relation_id"]
        owners.setdefault(rw["prompt"], set()).add(pid)
        if pid in MAIN_RELATIONS:
            pid_by_label[MAIN_RELATIONS[pid][0]] = pid
    out: dict[str, str] = {}
    for case in subj_cases:
        rw = case["requested_rewrite"]
        label = rw["relation_label"]
        if label in out:
            continue
        pids = owners.get(rw["prompt"], set())
        if len(pids) == 1:
            out[label] = next(iter(pids))
        else:
            out[label] = pid_by_label.get(label.lower(), label_relation_id(label))
    return out


class _Builder:
    """Accumulate entities, relations and facts in memory before one bulk write."""

    def __init__(self) -> None:
        self.entities: dict[str, dict[str, Any]] = {}
        self.qids_by_key: dict[str, set[str]] = {}
        self.name_ids: dict[str, str] = {}
        self.relations: dict[str, dict[str, Any]] = {}
        self.facts: dict[tuple[str, str, str], Fact] = {}
        self.label_ids: dict[str, str] = {}  # label of a known relation -> its id
        self.skipped: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def skip(self, reason: str, example: str) -> None:
        """Count a skipped item under `reason`, keeping a few examples."""
        self.skipped[reason] += 1
        bucket = self.examples.setdefault(reason, [])
        if len(bucket) < 5:
            bucket.append(example)

    # entities ---------------------------------------------------------------------------------

    def qid_entity(self, target: dict[str, str]) -> str:
        """Register a {"str", "id"} target as a Wikidata entity; return its id."""
        qid, name = target["id"], target["str"]
        entry = self.entities.get(qid)
        if entry is None:
            self.entities[qid] = {"name": name, "aliases": []}
            self.qids_by_key.setdefault(name_key(name), set()).add(qid)
        elif name != entry["name"] and name not in entry["aliases"]:
            entry["aliases"].append(name)
        return qid

    def named(self, name: str, aliases: Iterable[str] = ()) -> str:
        """Return the entity of a bare name: a unique Q-id of that name, else a `name:` slug."""
        name = name.strip()
        check_name(name, "entity name")
        key = name_key(name)
        entity_id = self.name_ids.get(key)
        if entity_id is None:
            qids = self.qids_by_key.get(key, set())
            if len(qids) == 1:
                entity_id = next(iter(qids))
            else:
                base = f"name:{slug(name)}"
                entity_id, n = base, 1
                while entity_id in self.entities:
                    n += 1
                    entity_id = f"{base}_{n}"
                self.entities[entity_id] = {"name": name, "aliases": []}
            self.name_ids[key] = entity_id
        entry = self.entities[entity_id]
        for alias in (name, *aliases):
            alias = alias.strip()
            if alias and alias != entry["name"] and alias not in entry["aliases"]:
                try:
                    entry["aliases"].append(check_name(alias, "alias"))
                except ValidationError:
                    self.skip("invalid_alias", alias[:80])
        return entity_id

    # relations --------------------------------------------------------------------------------

    def relation(
        self, rel_id: str, label: str, functional: bool = False, noun: bool = False
    ) -> dict[str, Any]:
        """Return the relation entry of `rel_id`, creating it if new."""
        entry = self.relations.get(rel_id)
        if entry is None:
            entry = {"label": label, "prompts": [], "para": [], "functional": False, "noun": noun}
            self.relations[rel_id] = entry
        entry["functional"] = entry["functional"] or functional
        return entry

    def add_templates(self, rel_id: str, key: str, templates: Iterable[str]) -> None:
        """Append valid, new templates to the relation's `prompts` or `para` list."""
        entry = self.relations[rel_id]
        for template in templates:
            try:
                check_template(template)
            except ValidationError:
                self.skip("invalid_template", template[:80])
                continue
            if template not in entry[key]:
                entry[key].append(template)

    def cloze(self, rel_id: str) -> list[str]:
        """Return the relation's cloze templates: case prompts first, then paraphrases."""
        entry = self.relations[rel_id]
        return _unique([*entry["prompts"], *entry["para"]])

    # facts ------------------------------------------------------------------------------------

    def fact(self, subject: str, rel_id: str, obj: str, source: str, **meta: str) -> None:
        """Record a fact once (the first source wins); self-loops are skipped."""
        if subject == obj:
            self.skip(f"self_loop_{source.split(':', 1)[-1]}", f"{subject} {rel_id} {obj}")
            return
        triple = (subject, rel_id, obj)
        if triple not in self.facts:
            self.facts[triple] = Fact(subject, rel_id, obj, source=source, meta=meta)


def _question(rel_id: str, entry: dict[str, Any], cloze: list[str]) -> str:
    """Question template: from the table, from a noun label, else the cloze plus "what?"."""
    if rel_id in MAIN_RELATIONS:
        return MAIN_RELATIONS[rel_id][1]
    if entry["noun"]:
        label = entry["label"]
        return LABEL_QUESTIONS.get(label, f"What is the {label} of {{}}?")
    return f"{cloze[0]} what?"


def _build_relations(
    b: _Builder,
    main: Sequence[dict[str, Any]],
    subj: Sequence[dict[str, Any]],
    subj_ids: dict[str, str],
) -> None:
    for case in main:
        rw = case["requested_rewrite"]
        pid = rw["relation_id"]
        label, _, functional = MAIN_RELATIONS.get(pid, (pid, "", False))
        b.relation(pid, label, functional)
        b.add_templates(pid, "prompts", [rw["prompt"]])
    for case in subj:
        rw = case["requested_rewrite"]
        label = rw["relation_label"].lower()
        rel_id = subj_ids[rw["relation_label"]]
        if rel_id in MAIN_RELATIONS:
            b.relation(rel_id, MAIN_RELATIONS[rel_id][0], MAIN_RELATIONS[rel_id][2])
        else:
            b.relation(rel_id, label, label in FUNCTIONAL_LABELS, noun=True)
        b.add_templates(rel_id, "prompts", [rw["prompt"]])
    for case in (*main, *subj):
        rw = case["requested_rewrite"]
        rel_id = rw.get("relation_id") or subj_ids[rw["relation_label"]]
        b.add_templates(rel_id, "para", rw.get("data_augmentation_prompt_para", ()))


def _case_probes(
    b: _Builder,
    matcher: TemplateMatcher,
    prompts: Iterable[str],
    rel_id: str,
    obj: str,
    source: str,
    case_ref: str,
) -> None:
    kind = source.split(":", 1)[1]
    for prompt in prompts:
        subject, reason = matcher.match(prompt)
        if subject is None:
            b.skip(f"{kind}_{reason}", prompt)
            continue
        try:
            subject_id = b.named(subject)
        except ValidationError:
            b.skip(f"{kind}_invalid_subject", prompt)
            continue
        b.fact(subject_id, rel_id, obj, source, case=case_ref, prompt=prompt)


def _portability(b: _Builder, case: dict[str, Any], case_ref: str) -> None:
    port = case.get("portability") or {}
    if not port.get("Recalled Relation"):
        return
    rw = case["requested_rewrite"]
    parsed = parse_recalled(port["Recalled Relation"])
    if parsed is None:
        b.skip("portability_unparsed", port["Recalled Relation"])
        return
    head, label, tail = parsed
    rel_id = b.label_ids.get(name_key(label)) or label_relation_id(label)
    if rel_id not in b.relations:
        b.relation(rel_id, label)
        b.add_templates(rel_id, "prompts", [f"{{}} {label}"])
    question = port.get("New Question", "")
    hops = {"new": rw["target_new"], "true": rw["target_true"]}
    answers = {"new": port.get("New Answer", ""), "true": port.get("Original Answer", "")}
    head_key = name_key(head)
    matched = [hop for hop, target in hops.items() if name_key(target["str"]) == head_key]
    meta = {"case": case_ref, "question": question, "recalled": port["Recalled Relation"]}
    if not matched:
        b.fact(b.named(head), rel_id, b.named(tail), SOURCE_PORT_RECALLED, **meta)
        b.skip("portability_head_not_a_target", port["Recalled Relation"])
        return
    hop = matched[0]
    other = "true" if hop == "new" else "new"
    source = {"new": SOURCE_PORT_NEW, "true": SOURCE_PORT_TRUE}
    head_id = b.qid_entity(hops[hop])
    b.fact(head_id, rel_id, b.named(tail), source[hop], answer=answers[hop], hop=hop, **meta)
    answer = answers[other].strip()
    if not _same_or_within(answers[hop], tail):
        b.skip("portability_question_not_about_tail", f"{answers[hop]!r} vs {tail!r}")
    elif not answer:
        b.skip(f"portability_{other}_answer_missing", case_ref)
    elif len(answer) > MAX_ANSWER_CHARS:
        b.skip("portability_answer_too_long", answer)
    else:
        other_id = b.qid_entity(hops[other])
        b.fact(other_id, rel_id, b.named(answer), source[other], answer=answer, hop=other, **meta)


def _same_or_within(answer: str, tail: str) -> bool:
    """Whether the answer names the recalled tail (equal, or one holds the other)."""
    a, t = (" ".join(w for w in slug(x).split("_") if w != "and") for x in (answer, tail))
    return bool(a and t) and (a == t or a in t or t in a)


def _same_subject(b: _Builder, case: dict[str, Any], template_ids: dict[str, str]) -> None:
    spec = case.get("relation_specificity") or {}
    prompt, answer = spec.get("prompt", ""), spec.get("answer") or {}
    subject = case["requested_rewrite"]["subject"]
    case_ref = f"evoke-subj-{case['case_id']}"
    at = prompt.find(subject)
    lowered = prompt.lower(), subject.lower()
    if at < 0 and tuple(map(len, lowered)) == (len(prompt), len(subject)):
        at = lowered[0].find(lowered[1])  # same lengths, so the offsets carry over
    if at < 0:
        b.skip("same_subject_subject_not_in_prompt", prompt)
        return
    template = prompt[:at] + "{}" + prompt[at + len(subject) :]
    value = (answer.get("value") or "").strip()
    if not value:
        b.skip("same_subject_answer_missing", prompt)
        return
    rel_id = template_ids.get(template)
    if rel_id is None:
        rel_id, label = _template_relation(template)
        rel_id = b.label_ids.get(name_key(label), rel_id)
        if rel_id not in b.relations:
            noun = rel_id.startswith("label:")
            b.relation(rel_id, label, label in FUNCTIONAL_LABELS, noun=noun)
        b.add_templates(rel_id, "prompts", [template])
    obj = b.named(value, answer.get("aliases") or ())
    b.fact(b.named(subject), rel_id, obj, SOURCE_SAME_SUBJECT, case=case_ref, prompt=prompt)


def _build(
    main: Sequence[dict[str, Any]], subj: Sequence[dict[str, Any]], subj_ids: dict[str, str]
) -> _Builder:
    b = _Builder()
    for case in (*main, *subj):
        rw = case["requested_rewrite"]
        b.qid_entity(rw["target_true"])
        b.qid_entity(rw["target_new"])
    _build_relations(b, main, subj, subj_ids)
    b.label_ids = {name_key(entry["label"]): rel_id for rel_id, entry in b.relations.items()}
    matchers = {rel_id: TemplateMatcher(b.cloze(rel_id)) for rel_id in b.relations}
    for case in main:
        rw = case["requested_rewrite"]
        rel_id, ref = rw["relation_id"], f"evoke-main-{case['case_id']}"
        true_id, new_id = b.qid_entity(rw["target_true"]), b.qid_entity(rw["target_new"])
        b.fact(b.named(rw["subject"]), rel_id, true_id, SOURCE_TRUE, case=ref)
        neighbours = case.get("neighborhood_prompts", ())
        _case_probes(b, matchers[rel_id], neighbours, rel_id, true_id, SOURCE_NEIGHBOUR, ref)
        attributes = case.get("attribute_prompts", ())
        _case_probes(b, matchers[rel_id], attributes, rel_id, new_id, SOURCE_ATTRIBUTE, ref)
        _portability(b, case, ref)
    template_ids = {
        template: rel_id
        for rel_id in sorted(set(subj_ids.values()) & set(b.relations))
        for template in b.relations[rel_id]["prompts"]
    }
    for case in subj:
        rw = case["requested_rewrite"]
        rel_id, ref = subj_ids[rw["relation_label"]], f"evoke-subj-{case['case_id']}"
        true_id = b.qid_entity(rw["target_true"])
        b.fact(b.named(rw["subject"]), rel_id, true_id, SOURCE_TRUE, case=ref)
        _same_subject(b, case, template_ids)
    return b


def _relations(b: _Builder) -> list[Relation]:
    out = []
    for rel_id, entry in sorted(b.relations.items()):
        cloze = b.cloze(rel_id)
        question = (_question(rel_id, entry, cloze),)
        templates = RelationTemplates(cloze=tuple(cloze), question=question)
        out.append(Relation(rel_id, entry["label"], templates, entry["functional"]))
    return out


def _load(
    main_path: str | Path, subj_spec_path: str | Path | None, limit: int | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
    """Load both files; relation ids of subj_spec come from the full files, so stay stable."""
    main = load_cases(main_path)
    subj = load_cases(subj_spec_path) if subj_spec_path is not None else []
    subj_ids = subj_relation_ids(main, subj)
    if limit is not None:
        main, subj = main[:limit], subj[:limit]
    return main, subj, subj_ids


def import_evoke(
    store: GraphStore,
    main_path: str | Path,
    subj_spec_path: str | Path | None = None,
    limit: int | None = None,
    who: str = "system",
    why: str = "import EVOKE",
) -> EvokeImportSummary:
    """Import EVOKE cases (the first `limit` of each file) into `store` in one transaction."""
    started = time.perf_counter()
    main, subj, subj_ids = _load(main_path, subj_spec_path, limit)
    b = _build(main, subj, subj_ids)
    relations = _relations(b)
    entities = [
        Entity(entity_id, entry["name"], tuple(entry["aliases"]))
        for entity_id, entry in sorted(b.entities.items())
    ]
    facts = list(b.facts.values())
    with store.transaction():
        added_relations = store.add_relations(relations, who, why, skip_existing=True)
        added_entities = store.add_entities(entities, who, why, skip_existing=True)
        added_facts = store.add_facts(facts, who, why, skip_duplicates=True)
        store.log(who, why, "import_evoke", {"main": len(main), "subj": len(subj)})
    return EvokeImportSummary(
        cases_main=len(main),
        cases_subj=len(subj),
        entities=len(entities),
        relations=len(relations),
        facts_by_source=dict(sorted(Counter(f.source for f in facts).items())),
        skipped=dict(sorted(b.skipped.items())),
        skipped_examples=b.examples,
        added={"entities": added_entities, "relations": added_relations, "facts": added_facts},
        seconds=time.perf_counter() - started,
    )


def evoke_cases(
    main_path: str | Path, subj_spec_path: str | Path | None = None, limit: int | None = None
) -> list[EditRequest]:
    """Return the EVOKE edit cases as `EditRequest`s (main cases first, then subj_spec)."""
    main, subj, subj_ids = _load(main_path, subj_spec_path, limit)
    out: list[EditRequest] = []
    for case in main:
        rw = case["requested_rewrite"]
        true = rw["target_true"]["str"]
        neighbours = tuple(
            Probe(prompt=p, expected=true, kind=ProbeKind.NEIGHBOUR)
            for p in case.get("neighborhood_prompts", ())
        )
        out.append(
            EditRequest(
                subject=rw["subject"],
                prompt=rw["prompt"],
                target_new=rw["target_new"]["str"],
                target_true=true,
                paraphrases=tuple(case.get("paraphrase_prompts", ())),
                neighbours=neighbours,
                relation=rw["relation_id"],
                request_id=f"evoke-main-{case['case_id']}",
            )
        )
    for case in subj:
        rw = case["requested_rewrite"]
        spec = case.get("relation_specificity") or {}
        answer = spec.get("answer") or {}
        probes: tuple[Probe, ...] = ()
        if spec.get("prompt") and answer.get("value"):
            aliases = json.dumps(answer.get("aliases") or [], ensure_ascii=False)
            probes = (
                Probe(
                    prompt=spec["prompt"],
                    expected=answer["value"],
                    kind=ProbeKind.SAME_SUBJECT,
                    meta={"aliases": aliases},
                ),
            )
        out.append(
            EditRequest(
                subject=rw["subject"],
                prompt=rw["prompt"],
                target_new=rw["target_new"]["str"],
                target_true=rw["target_true"]["str"],
                neighbours=probes,
                relation=subj_ids[rw["relation_label"]],
                request_id=f"evoke-subj-{case['case_id']}",
            )
        )
    return out
