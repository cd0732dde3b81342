"""TOFU's per-item measurements on a question-answer model (Maini et al., 2024).

For a question q and an answer y, P̄(y|q) = exp(mean log p(y_t | q, y_<t)) over y's tokens.

* probability: P̄(a|q) (author splits) or P̄(a|q) / (P̄(a|q) + Σ_pert P̄(ŷ|q)) (real authors,
  world facts);
* ROUGE-L recall of the greedy answer against the gold answer (`rouge_score`, stemming on, as
  TOFU), generation stopping at a newline or the end token;
* truth ratio R = geo-mean_pert P̄(ŷ|q) / P̄(ã|q), ã the paraphrased answer on author splits
  and the answer itself on real authors / world facts.

The aggregation into forget quality and model utility lives in `workers.tofu`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from contracts.types import QAItem
from editor.errors import EditorError
from editor.generation import generate
from editor.scoring import score_targets
from editor.tokens import target_ids


@dataclass
class ItemScores:
    """Per-item probability, ROUGE-L recall and truth ratio (lists in item order)."""

    probability: list[float]
    rouge_recall: list[float]
    truth_ratio: list[float]
    generations: list[str]


def _fit(tok: Any, prompt: str, answer: str, limit: int) -> str:
    """Return `answer` cut (by tokens) so that prompt and answer fit `limit` positions."""
    budget = limit - len(tok(prompt)["input_ids"])
    ids = target_ids(tok, answer)
    if len(ids) <= budget:
        return answer
    if budget < 1:
        raise EditorError(f"prompt alone exceeds the model's {limit} positions: {prompt[:60]!r}")
    return tok.decode(ids[:budget]).strip()


def _mean_logp(model: nn.Module, tok: Any, prompts: list[str], answers: list[str]) -> list[float]:
    """Return the length-normalised log-probability of each answer after its prompt."""
    if not prompts:
        return []
    limit = int(getattr(model.config, "n_positions", None) or model.config.max_position_embeddings)
    answers = [_fit(tok, p, a, limit) for p, a in zip(prompts, answers, strict=True)]
    return score_targets(model, tok, prompts, answers, batch_size=32).mean_logprob.tolist()


def rouge_l_recall(golds: Sequence[str], generations: Sequence[str]) -> list[float]:
    """Return ROUGE-L recall of each generation against its gold answer (stemming on)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return [scorer.score(g, p)["rougeL"].recall for g, p in zip(golds, generations, strict=True)]


def score_items(
    model: nn.Module,
    tokenizer: Any,
    items: Sequence[QAItem],
    prompt_of: Any,
    *,
    normalise_probability: bool,
    paraphrase_in_ratio: bool,
    max_new_tokens: int = 64,
) -> ItemScores:
    """Score items; `prompt_of(question)` builds the prompt the model was trained on."""
    prompts = [prompt_of(i.question) for i in items]
    gold = _mean_logp(model, tokenizer, prompts, [i.answer for i in items])
    pert_prompts, pert_answers, owner = [], [], []
    for k, item in enumerate(items):
        for p in item.perturbed_answers:
            pert_prompts.append(prompts[k])
            pert_answers.append(p)
            owner.append(k)
    pert = _mean_logp(model, tokenizer, pert_prompts, pert_answers)
    by_item: list[list[float]] = [[] for _ in items]
    for k, value in zip(owner, pert, strict=True):
        by_item[k].append(value)
    if paraphrase_in_ratio:
        base = _mean_logp(model, tokenizer, prompts, [i.paraphrased_answer for i in items])
    else:
        base = gold
    probability, ratio = [], []
    for k in range(len(items)):
        p_gold = math.exp(gold[k])
        if normalise_probability:
            denom = p_gold + sum(math.exp(v) for v in by_item[k])
            probability.append(p_gold / denom if denom > 0 else 0.0)
        else:
            probability.append(p_gold)
        if by_item[k]:
            ratio.append(math.exp(sum(by_item[k]) / len(by_item[k]) - base[k]))
        else:
            ratio.append(float("nan"))
    texts = generate(
        model, tokenizer, prompts, max_new_tokens, stop=lambda t: "\n" in t, batch_size=32
    )
    texts = [t.split("\n", 1)[0].strip() for t in texts]
    rouge = rouge_l_recall([i.answer for i in items], texts)
    return ItemScores(probability, rouge, ratio, texts)
