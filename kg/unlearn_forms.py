"""Form-independent unlearning probes (ORT style): every target fact asked in six forms.

For each fact the concept covers (its entities as subject, up to `n_facts`):

| form | prompt | answer | rivals |
|---|---|---|---|
| `cloze` | the relation's first cloze template | object | 3 other objects of the relation |
| `question` | its first question template + " Answer:" | object | the same 3 |
| `mc` | 4-way multiple choice, options shuffled by a seeded generator | letter | other letters |
| `tf` | "True or false: <statement>. Answer:" | True | False |
| `spelled` | the question, "Spell the answer letter by letter." | spelled object | spelled rivals |
| `distraction` | another subject's statement of the relation, then the cloze | object | the 3 |

Every probe names rivals, so "the model knows it" is one test in every form: the answer's
length-normalised log-probability beats every rival's. Forget probes carry
`meta["role"] = "forget"`; retain probes ask the same six forms about neighbour subjects
(other subjects of the target's relations, none of them forgotten) with `role = "retain"`.
`meta["form"]` names the form. The strings come from `contracts.forms`, the same the
knowledge-model corpus uses.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from contracts.forms import (
    FALSE,
    TRUE,
    distraction_prompt,
    mc_prompt,
    question_prompt,
    spell,
    spelled_prompt,
    tf_prompt,
)
from contracts.types import Probe, ProbeKind, UnlearnRequest
from kg.errors import ValidationError
from kg.forms import question_text
from kg.store import GraphStore
from kg.types import Fact, fill
from kg.view import GraphView

FORMS: tuple[str, ...] = ("cloze", "question", "mc", "tf", "spelled", "distraction")
# Spelled-out and distraction forms are unlearning-only kinds (plain strings, so the edit
# audit's ProbeKind list stays what it derives for edits).
FORM_KINDS: dict[str, ProbeKind | str] = {
    "cloze": ProbeKind.FORM_CLOZE,
    "question": ProbeKind.FORM_QUESTION,
    "mc": ProbeKind.FORM_MC,
    "tf": ProbeKind.FORM_TF,
    "spelled": "form_spelled",
    "distraction": "form_distraction",
}
FORGET, RETAIN = "forget", "retain"


@dataclass(frozen=True)
class FormConfig:
    """How many target facts, rivals and neighbour subjects the forms evaluation uses."""

    n_facts: int = 10
    n_rivals: int = 3
    n_neighbours: int = 4
    seed: int = 0


def _rng(*parts: object) -> random.Random:
    """A generator seeded by the parts (stable across runs and machines)."""
    key = "\x1f".join(str(p) for p in parts).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


class _Deriver:
    """Builds the six forms of facts of one graph view."""

    def __init__(self, view: GraphView, config: FormConfig, forgotten: set[str]) -> None:
        self.view, self.cfg, self.forgotten = view, config, forgotten

    def rivals(self, fact: Fact, rng: random.Random) -> list[str]:
        """Other objects of the relation (none the subject has), by name."""
        own = {f.object for f in self.view.facts_about(fact.subject) if f.relation == fact.relation}
        pool = sorted({f.object for f in self.view.facts_of_relation(fact.relation)} - own)
        names = self.view.names(rng.sample(pool, min(self.cfg.n_rivals, len(pool))))
        answer = self.view.name(fact.object)
        return [n for n in dict.fromkeys(names.values()) if n != answer]

    def distractor(self, fact: Fact, rng: random.Random) -> str | None:
        """A statement of the same relation about another, unforgotten subject."""
        pool = [
            f
            for f in self.view.facts_of_relation(fact.relation)
            if f.subject != fact.subject and f.subject not in self.forgotten
        ]
        if not pool:
            return None
        other = rng.choice(pool)
        names = self.view.names([other.subject, other.object])
        template = self.view.relation(other.relation).templates.cloze[0]
        return f"{fill(template, names[other.subject])} {names[other.object]}."

    def forms(self, fact: Fact, subject: str, role: str, change: str) -> list[Probe]:
        """The six probes of one fact asked about `subject` (a name or alias)."""
        rng = _rng(change, role, subject, fact.relation, fact.object, self.cfg.seed)
        rel = self.view.relation(fact.relation)
        answer = self.view.name(fact.object)
        rivals = self.rivals(fact, rng)
        if not rivals:
            return []
        meta = {
            "change": change,
            "role": role,
            "bucket": role,
            "relation": fact.relation,
            "fact": f"{fact.subject}|{fact.relation}|{fact.object}",
            "subject": subject,
        }

        def probe(form: str, prompt: str, expected: str, others: Sequence[str]) -> Probe:
            """Build one probe of this fact in `form`."""
            kind = FORM_KINDS[form]
            return Probe(prompt, expected, kind, meta={**meta, "form": form}, rivals=tuple(others))

        cloze = fill(rel.templates.cloze[0], subject)
        question = question_text(rel, subject)
        options = [answer, *rivals]
        rng.shuffle(options)
        letters = "ABCDEFGH"[: len(options)]
        right = letters[options.index(answer)]
        out = [
            probe("cloze", cloze, answer, rivals),
            probe("question", question_prompt(question), answer, rivals),
            probe("mc", mc_prompt(question, options), right, [c for c in letters if c != right]),
            probe("tf", tf_prompt(f"{cloze} {answer}"), TRUE, [FALSE]),
            probe("spelled", spelled_prompt(question), spell(answer), [spell(r) for r in rivals]),
        ]
        statement = self.distractor(fact, rng)
        if statement is not None:
            out.append(probe("distraction", distraction_prompt(statement, cloze), answer, rivals))
        return out


def form_probes(
    store: GraphStore | GraphView,
    requests: Sequence[UnlearnRequest],
    config: FormConfig | None = None,
) -> list[Probe]:
    """Return forget probes in six forms for every request's facts, and retain probes."""
    view = GraphView.of(store)
    config = config or FormConfig()
    ids_of = {}
    for r in requests:
        names = (r.concept, *r.aliases)
        ids_of[r.request_id or r.concept] = list(
            dict.fromkeys(i for n in names for i in view.resolve(n))
        )
    forgotten = {i for ids in ids_of.values() for i in ids}
    deriver = _Deriver(view, config, forgotten)
    out: list[Probe] = []
    for request in requests:
        change = request.request_id or request.concept
        ids = ids_of[change]
        if not ids:
            raise ValidationError(f"concept {request.concept!r} names no entity of the graph")
        facts = [f for e in ids for f in view.facts_about(e)][: config.n_facts]
        for fact in facts:
            out += deriver.forms(fact, request.concept, FORGET, change)
        rng = _rng(change, "neighbours", config.seed)
        for relation in sorted({f.relation for f in facts}):
            pool = sorted({f.subject for f in view.facts_of_relation(relation)} - forgotten)
            for subject in rng.sample(pool, min(config.n_neighbours, len(pool))):
                fact = next(f for f in view.facts_about(subject) if f.relation == relation)
                out += deriver.forms(fact, view.name(subject), RETAIN, change)
    return out
