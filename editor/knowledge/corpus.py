"""Training text for the knowledge model: multi-statement passages per subject, plus cloze lines.

Facts reach storage at the subject (where subject-keyed ROME edits) only when the model must
recall them while reading about the subject. So the loss covers every token of passages that
state all of one subject's facts, each in several templates, in shuffled order (Allen-Zhu & Li,
"Physics of Language Models 3.1"), mixed with bare cloze lines in the form the prompts take.

One template of every fact is held out of training (chosen by a hash, never the fact's first
template, which is the edit prompt). Other facts of the same relation still train on it, so the
held-out accuracy measures whether the model knows the fact, not whether it has seen the wording.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from contracts.forms import (
    FALSE,
    TRUE,
    mc_prompt,
    question_prompt,
    spell,
    spelled_prompt,
    tf_prompt,
)
from contracts.types import FactText

FORM_ROWS = ("question", "mc", "tf", "spelled")


def heldout_template_index(fact: FactText) -> int | None:
    """Return the index of the template held out for this fact, or None with < 3 templates."""
    n = len(fact.templates)
    if n < 3:
        return None
    digest = hashlib.sha256(f"{fact.subject}\x1f{fact.relation}".encode()).digest()
    return 1 + int.from_bytes(digest[:8], "big") % (n - 1)


def training_templates(fact: FactText) -> tuple[str, ...]:
    """Return the templates the trainer may use for this fact (all but the held-out one)."""
    held = heldout_template_index(fact)
    return tuple(t for i, t in enumerate(fact.templates) if i != held)


def statement(template: str, subject: str, obj: str) -> str:
    """Return one sentence stating the fact with a template."""
    return f"{template.format(subject)} {obj}."


@dataclass
class PassageSampler:
    """Draws training rows (text) from a list of facts, deterministically from a seed."""

    facts: Sequence[FactText]
    statements_per_fact: int = 2
    cloze_share: float = 0.25
    seed: int = 0
    form_share: float = 0.0

    def __post_init__(self) -> None:
        by_subject: dict[str, list[FactText]] = defaultdict(list)
        objects: dict[str, set[str]] = defaultdict(set)
        for fact in self.facts:
            by_subject[fact.subject].append(fact)
            objects[fact.relation].add(fact.object)
        self.objects = {r: sorted(o) for r, o in objects.items()}
        self.subjects = sorted(by_subject)
        self.by_subject = {s: by_subject[s] for s in self.subjects}
        self.train_templates = {(f.subject, f.relation): training_templates(f) for f in self.facts}
        self.rng = random.Random(self.seed)

    def passage(self, subject: str) -> str:
        """Return one passage with every fact of the subject, several templates, shuffled."""
        sentences = []
        for fact in self.by_subject[subject]:
            templates = self.train_templates[(fact.subject, fact.relation)]
            k = min(self.statements_per_fact, len(templates))
            for template in self.rng.sample(templates, k):
                sentences.append(statement(template, fact.subject, fact.object))
        self.rng.shuffle(sentences)
        return " ".join(sentences)

    def cloze_line(self, subject: str) -> str:
        """Return one bare statement of one of the subject's facts."""
        fact = self.rng.choice(self.by_subject[subject])
        template = self.rng.choice(self.train_templates[(fact.subject, fact.relation)])
        return statement(template, fact.subject, fact.object)

    def form_row(self, subject: str) -> str:
        """Return one of the subject's facts asked in a non-cloze form, with its answer."""
        fact = self.rng.choice(self.by_subject[subject])
        cloze = fact.templates[0].format(fact.subject)
        question = fact.question.format(fact.subject) if fact.question else cloze + " what?"
        others = [o for o in self.objects[fact.relation] if o != fact.object]
        distractors = self.rng.sample(others, min(3, len(others)))
        form = self.rng.choice(FORM_ROWS if distractors else ("question", "spelled"))
        if form == "question":
            return f"{question_prompt(question)} {fact.object}"
        if form == "spelled":
            return f"{spelled_prompt(question)} {spell(fact.object)}"
        if form == "mc":
            options = [fact.object, *distractors]
            self.rng.shuffle(options)
            return f"{mc_prompt(question, options)} {'ABCDEFGH'[options.index(fact.object)]}"
        if self.rng.random() < 0.5:
            return f"{tf_prompt(f'{cloze} {fact.object}')} {TRUE}"
        return f"{tf_prompt(f'{cloze} {distractors[0]}')} {FALSE}"

    def batch(self, size: int) -> list[str]:
        """Return `size` training rows: passages, cloze lines and (with `form_share`) forms."""
        rows = []
        for _ in range(size):
            subject = self.rng.choice(self.subjects)
            if self.form_share and self.rng.random() < self.form_share:
                rows.append(self.form_row(subject))
            elif self.rng.random() < self.cloze_share:
                rows.append(self.cloze_line(subject))
            else:
                rows.append(self.passage(subject))
        return rows

    def tokenizer_corpus(self, passes: int = 2) -> list[str]:
        """Return text to train the tokenizer on: a few passages per subject."""
        return [self.passage(s) for _ in range(passes) for s in self.subjects]


def eval_pairs(facts: Sequence[FactText], heldout: bool) -> list[tuple[str, str]]:
    """Return (prompt, object) pairs: the first template, or the held-out template of each fact."""
    pairs = []
    for fact in facts:
        if heldout:
            idx = heldout_template_index(fact)
            if idx is None:
                continue
        else:
            idx = 0
        pairs.append((fact.templates[idx].format(fact.subject), fact.object))
    return pairs
