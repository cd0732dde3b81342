"""Question forms of one fact (ORT's forms applied to edits): question, multiple choice, true/false.

Every prompt ends where a short answer begins, so the answers can be scored like cloze objects:

- question: ``"Where was Spike Hughes born? Answer:"`` -> ``"Philadelphia"``;
- multiple choice: ``"Question: Where was Spike Hughes born? Options: A. London B. Philadelphia
  C. Paris. Answer:"`` -> ``"B"`` (the rivals are the other letters);
- true/false: ``"True or false: Spike Hughes originates from Philadelphia. Answer:"`` -> ``"True"``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from contracts.forms import ANSWER, FALSE, LETTERS, TRUE, mc_prompt, tf_prompt
from kg.types import Relation, fill

__all__ = [
    "ANSWER",
    "FALSE",
    "LETTERS",
    "TRUE",
    "multiple_choice",
    "question_prompt",
    "question_text",
    "true_false",
]


def question_text(relation: Relation, subject: str) -> str:
    """Return the relation's first question about the subject (a cloze plus "what?" if none)."""
    if relation.templates.question:
        return fill(relation.templates.question[0], subject)
    return fill(relation.templates.cloze[0], subject) + " what?"


def question_prompt(relation: Relation, subject: str) -> str:
    """Return the question form of a fact's prompt."""
    return question_text(relation, subject) + ANSWER


def multiple_choice(
    relation: Relation, subject: str, options: Sequence[str], rng: random.Random
) -> tuple[str, dict[str, str]]:
    """Return (prompt, {option: letter}) with the options in an order drawn from `rng`."""
    if not 2 <= len(options) <= len(LETTERS):
        raise ValueError(f"multiple choice needs 2 to {len(LETTERS)} options, got {len(options)}")
    shuffled = list(options)
    rng.shuffle(shuffled)
    letters = {option: LETTERS[i] for i, option in enumerate(shuffled)}
    return mc_prompt(question_text(relation, subject), shuffled), letters


def true_false(relation: Relation, subject: str, obj: str) -> str:
    """Return the true/false prompt stating (subject, relation, obj) with the first cloze."""
    return tf_prompt(f"{fill(relation.templates.cloze[0], subject)} {obj}")
