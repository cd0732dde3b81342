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
from dataclasses import replace

from contracts.forms import ANSWER, FALSE, LETTERS, TRUE, mc_prompt, tf_prompt
from contracts.types import EditRequest
from kg.types import Relation, fill

__all__ = [
    "ANSWER",
    "EDIT_FORMS",
    "FALSE",
    "LETTERS",
    "TRUE",
    "edit_forms",
    "multiple_choice",
    "question_prompt",
    "question_text",
    "request_with_forms",
    "true_false",
]


def question_text(relation: Relation, subject: str) -> str:
    """Return the relation's first question about the subject (a cloze plus "what?" if none)."""
    if relation.templates.question:
        return fill(relation.templates.question[0], subject)
    return fill(relation.templates.cloze[0], subject) + " what?"


# Cloze wordings an edit request carries as forms (besides the question form): few enough that
# most of a relation's other wordings stay held out for the paraphrase probes.
EDIT_FORMS = 3


def _before_subject(template: str) -> str:
    """Return a template's words before the subject, lower-cased."""
    return template.split("{}", 1)[0].strip().lower()


def edit_forms(relation: Relation, prompt: str, n_cloze: int = EDIT_FORMS) -> tuple[str, ...]:
    """Return the forms an edit of `prompt` optimises over: the relation's question form (its
    first question template, then the answer cue) and up to `n_cloze` of its other cloze
    templates, those with words before the subject that neither the prompt nor an earlier pick
    has taken first, then the rest in the graph's order. At most half of the other cloze
    templates become forms, so the rest stay held out for the paraphrase probes."""
    others = [t for t in relation.templates.cloze if t != prompt]
    n_cloze = min(n_cloze, len(others) // 2)
    seen = {_before_subject(prompt)}
    fresh: list[str] = []
    for template in others:
        if _before_subject(template) not in seen:
            seen.add(_before_subject(template))
            fresh.append(template)
    rest = [t for t in others if t not in fresh]
    cloze = (fresh + rest)[: max(0, n_cloze)]
    question = [q + ANSWER for q in relation.templates.question[:1]]
    return tuple(question + cloze)


def request_with_forms(request: EditRequest, relation: Relation) -> EditRequest:
    """Return the request carrying its relation's forms (`edit_forms`) where it has none."""
    if request.forms:
        return request
    return replace(request, forms=edit_forms(relation, request.prompt))


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
