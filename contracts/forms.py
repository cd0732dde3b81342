"""Surface forms of a question, shared by the probes (`kg`) and the knowledge-model corpus
(`editor.knowledge`), so a model trained on the forms is asked in exactly those words.

Every prompt ends where a short answer begins (the answer is scored as `" " + answer`):

- question: ``"Where was X born? Answer:"`` -> ``"London"``;
- multiple choice: ``"Question: Where was X born? Options: A. Paris B. London C. Rome
  D. Oslo. Answer:"`` -> ``"B"``;
- true/false: ``"True or false: X was born in London. Answer:"`` -> ``"True"``;
- spelled out (ORT's sub-token form): ``"Question: Where was X born? Spell the answer letter by
  letter. Answer:"`` -> ``"L o n d o n"`` (characters without spaces, one space apart);
- in-context distraction: an unrelated statement, then the cloze prompt.
"""

from __future__ import annotations

from collections.abc import Sequence

ANSWER = " Answer:"
LETTERS = "ABCDEFGH"
TRUE, FALSE = "True", "False"
SPELL = " Spell the answer letter by letter."


def question_prompt(question: str) -> str:
    """Return the question form: the question, then the answer cue."""
    return question + ANSWER


def mc_prompt(question: str, options: Sequence[str]) -> str:
    """Return the multiple-choice prompt listing `options` as A., B., ... in the given order."""
    if not 2 <= len(options) <= len(LETTERS):
        raise ValueError(f"multiple choice needs 2 to {len(LETTERS)} options, got {len(options)}")
    listed = " ".join(f"{LETTERS[i]}. {option}" for i, option in enumerate(options))
    return f"Question: {question} Options: {listed}.{ANSWER}"


def tf_prompt(statement: str) -> str:
    """Return the true/false prompt of a statement given without its final period."""
    return f"True or false: {statement}.{ANSWER}"


def spelled_prompt(question: str) -> str:
    """Return the spelled-out form's prompt."""
    return f"Question: {question}{SPELL}{ANSWER}"


def spell(answer: str) -> str:
    """Return the answer spelled out: its non-space characters one space apart."""
    chars = [c for c in answer if not c.isspace()]
    if not chars:
        raise ValueError("cannot spell an empty answer")
    return " ".join(chars)


def distraction_prompt(statement: str, prompt: str) -> str:
    """Return `prompt` after an unrelated statement (the in-context distraction form)."""
    return f"{statement} {prompt}"
