"""What a model answers to many prompts, checked against an expected answer each.

`observe_answers` is the sync check's scorer. One packed teacher-forced pass
(`editor.packed.score_candidates`) decides, for every (prompt, expected) pair, whether greedy
decoding yields exactly the expected answer as a word, and its probability. Only the prompts
that miss go through greedy generation, to read off what the model says instead; that answer
is scored in a second packed pass for its own probability. On a model that mostly agrees with
its graph, nearly all the work is the first pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from editor.errors import EditorError
from editor.generation import ends_answer, first_answer, generate
from editor.packed import score_candidates


@dataclass(frozen=True)
class Answer:
    """The model's answer to one prompt: whether it is the expected one, and its probability.

    `text` is what greedy decoding says (the expected answer when `exact`); `probability` is
    the product of the token probabilities of `text` after the prompt (None when empty).
    """

    exact: bool
    text: str
    probability: float | None


def _probability(sum_logprob: float, n_tokens: int) -> float | None:
    """Return exp(Σ log p) rounded for storage, or None for an empty answer."""
    return round(math.exp(sum_logprob), 6) if n_tokens > 0 else None


@torch.no_grad()
def observe_answers(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    expected: Sequence[str],
    *,
    max_new_tokens: int = 12,
    batch_tokens: int = 4096,
) -> list[Answer]:
    """Return the model's answer to each prompt, compared with the expected answer."""
    if len(prompts) != len(expected):
        raise EditorError(f"{len(prompts)} prompts but {len(expected)} expected answers")
    if not prompts:
        return []
    first = score_candidates(
        model,
        tokenizer,
        prompts,
        [[e] for e in expected],
        boundary=[[True]] * len(prompts),
        batch_tokens=batch_tokens,
    )
    exact = (first.all_argmax & first.stops).tolist()  # (N,)
    out: list[Answer | None] = [
        Answer(True, e, _probability(float(s), int(n))) if ok else None
        for e, ok, s, n in zip(expected, exact, first.sum_logprob, first.n_tokens, strict=True)
    ]
    missing = [i for i, a in enumerate(out) if a is None]
    if missing:
        texts = generate(
            model,
            tokenizer,
            [prompts[i] for i in missing],
            max_new_tokens=max_new_tokens,
            stop=ends_answer,
        )
        said = [first_answer(t) for t in texts]
        spoken = [j for j, text in enumerate(said) if text]
        probs: dict[int, float | None] = {}
        if spoken:
            second = score_candidates(
                model,
                tokenizer,
                [prompts[missing[j]] for j in spoken],
                [[said[j]] for j in spoken],
                batch_tokens=batch_tokens,
            )
            for k, j in enumerate(spoken):
                probs[j] = _probability(float(second.sum_logprob[k]), int(second.n_tokens[k]))
        for j, i in enumerate(missing):
            out[i] = Answer(False, said[j], probs.get(j))
    return [a for a in out if a is not None]
