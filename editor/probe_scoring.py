"""Score `Probe`s on a model: a probability comparison where the probe names a rival answer,
else an exact greedy match of every expected token. All probes go through one batched pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from contracts.types import Probe
from editor.scoring import score_targets


def probe_success(
    model: nn.Module, tokenizer: Any, probes: Sequence[Probe], batch_size: int = 64
) -> torch.Tensor:
    """Return one bool per probe: P(expected) > P(unexpected), or greedy match, shape (N,)."""
    if not probes:
        return torch.zeros(0, dtype=torch.bool)
    prompts = [p.prompt for p in probes]
    targets = [p.expected for p in probes]
    rival_idx = [i for i, p in enumerate(probes) if p.unexpected]
    prompts += [probes[i].prompt for i in rival_idx]
    targets += [str(probes[i].unexpected) for i in rival_idx]
    scores = score_targets(model, tokenizer, prompts, targets, batch_size)
    n = len(probes)
    ok = scores.all_argmax[:n].clone()  # (N,)
    mean = scores.mean_logprob  # (N + R,)
    for j, i in enumerate(rival_idx):
        ok[i] = bool(mean[i] > mean[n + j])
    return ok
