"""Batched teacher-forced scoring of target continuations (one padded forward per batch).

Prompts are plain strings; targets are encoded as `" " + target` (see `editor.tokens`).
All results are CPU tensors with one entry per (prompt, target) pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from editor.errors import EditorError
from editor.tokens import encode_prompt_targets, target_logprobs_from_logits


@dataclass
class TargetScores:
    """Per-pair scores from one teacher-forced pass."""

    sum_logprob: torch.Tensor  # (N,) Σ_t log P(o_t | prompt, o_<t)
    n_tokens: torch.Tensor  # (N,)
    all_argmax: torch.Tensor  # (N,) bool: every target token is the argmax
    first_argmax: torch.Tensor  # (N,) bool: the first target token is the argmax

    @property
    def mean_logprob(self) -> torch.Tensor:
        """Return the length-normalised log-probability (N,)."""
        return self.sum_logprob / self.n_tokens.clamp(min=1)


@torch.no_grad()
def score_targets(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    targets: Sequence[str],
    batch_size: int = 64,
) -> TargetScores:
    """Score each `target` after its `prompt` (teacher forcing), `batch_size` pairs a forward."""
    if len(prompts) != len(targets):
        raise EditorError(f"{len(prompts)} prompts but {len(targets)} targets")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums, counts, alls, firsts = [], [], [], []
    try:
        for start in range(0, len(prompts), batch_size):
            stop = start + batch_size
            batch = encode_prompt_targets(tokenizer, prompts[start:stop], targets[start:stop])
            batch = batch.to(device)
            logits = model(**batch.model_inputs(), use_cache=False).logits  # (B, L, V)
            token_lp = target_logprobs_from_logits(logits, batch)  # (B, T)
            rows = torch.arange(logits.shape[0], device=device).unsqueeze(1)  # (B, 1)
            argmax = logits[rows, batch.pred_positions].argmax(-1)  # (B, T)
            hit = (argmax == batch.target_ids) | ~batch.target_mask  # (B, T)
            sums.append(token_lp.sum(1).cpu())
            counts.append(batch.target_mask.sum(1).cpu())
            alls.append(hit.all(1).cpu())
            firsts.append(hit[:, 0].cpu())
    finally:
        model.train(was_training)
    if not sums:
        empty = torch.zeros(0)
        return TargetScores(empty, empty.long(), empty.bool(), empty.bool())
    return TargetScores(torch.cat(sums), torch.cat(counts), torch.cat(alls), torch.cat(firsts))


def target_logprobs(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    targets: Sequence[str],
    batch_size: int = 64,
) -> torch.Tensor:
    """Return Σ log P(target tokens | prompt) per pair, shape (N,)."""
    return score_targets(model, tokenizer, prompts, targets, batch_size).sum_logprob


def compare_targets(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    new: Sequence[str],
    old: Sequence[str],
    batch_size: int = 64,
) -> torch.Tensor:
    """Return P(new) > P(old) per prompt (length-normalised, as the CounterFact code), (N,)."""
    n = len(prompts)
    if len(new) != n or len(old) != n:
        raise EditorError("prompts, new and old must have the same length")
    pairs = score_targets(model, tokenizer, list(prompts) * 2, list(new) + list(old), batch_size)
    scores = pairs.mean_logprob  # (2N,)
    return scores[:n] > scores[n:]
