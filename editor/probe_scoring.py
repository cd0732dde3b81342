"""Score `Probe`s on a model: a probability comparison where the probe names a rival answer,
else an exact greedy match of every expected token. All probes go through one batched pass.

`probe_success` is the edit runner's quick check; `score_probes` is the audit's scorer: both
metrics for every probe (packed teacher forcing, `editor.packed`), MeLLo-style stepwise
multi-hop chains fed with the model's own hop answers, and n-gram entropy for fluency.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from contracts.types import Probe
from editor.generation import ends_answer, first_answer, generate, ngram_entropy
from editor.packed import score_candidates
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


# -- the audit's scorer ------------------------------------------------------------------------

FLUENCY = "fluency"
STEPWISE = "multi_hop_stepwise"


@dataclass
class ProbeScore:
    """How a model does on one probe.

    `compared`: P(expected) > P(best of unexpected and rivals), length-normalised (None when
    the probe names no rival). `exact_match`: greedy decoding yields exactly the expected
    answer as a word. `success` is `compared` where defined, else `exact_match`, inverted for
    forget probes; None for fluency probes, which have an `entropy` instead.
    """

    success: bool | None
    exact_match: bool
    logp_expected: float  # mean log-prob per expected token
    logp_rival: float | None = None  # the same for the most likely rival
    compared: bool | None = None
    answer: str | None = None  # generated answer (stepwise) or text (fluency)
    hop_answers: tuple[str, ...] = ()  # stepwise: the model's own answer after each hop
    hop_prompts: tuple[str, ...] = ()  # stepwise: the prompt actually asked at each hop
    entropy: float | None = None  # fluency: n-gram entropy of the generation

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (NaN log-probs become None)."""
        out = asdict(self)
        for key in ("logp_expected", "logp_rival"):
            value = out[key]
            if value is not None and not math.isfinite(value):
                out[key] = None
        out["hop_answers"] = list(self.hop_answers)
        out["hop_prompts"] = list(self.hop_prompts)
        return out


@dataclass(frozen=True)
class ScoringConfig:
    """Batching and generation settings of `score_probes`."""

    batch_tokens: int = 2048
    row_tokens: int = 64
    hop_tokens: int = 12  # new tokens per stepwise hop answer
    fluency_tokens: int = 40
    fluency_top_k: int = 5
    seed: int = 0
    dtype: str = "float32"  # or "bfloat16" (autocast), see bench/audit_throughput.py


def _decide(probe: Probe, compared: bool | None, exact: bool) -> bool:
    """Success of a probe from its comparison and exact match (inverted for forget probes)."""
    ok = compared if compared is not None else exact
    return not ok if probe.meta.get("role") == "forget" else ok


def _autocast(config: ScoringConfig, model: nn.Module) -> Any:
    """Return the autocast context of the configured dtype (a no-op for float32)."""
    if config.dtype == "float32":
        return contextlib.nullcontext()
    if config.dtype != "bfloat16":
        raise ValueError(f"dtype must be 'float32' or 'bfloat16', not {config.dtype!r}")
    device = next(model.parameters()).device.type
    return torch.autocast(device, dtype=torch.bfloat16)


def _teacher_forced(
    model: nn.Module,
    tokenizer: Any,
    probes: Sequence[Probe],
    prompts: Sequence[str],
    config: ScoringConfig,
) -> list[tuple[bool, float, float | None, bool | None]]:
    """Return (exact match, logp expected, best rival logp, compared) per probe, one pass."""
    candidates, boundary = [], []
    for probe in probes:
        rivals = [r for r in (probe.unexpected, *probe.rivals) if r]
        candidates.append([probe.expected, *rivals])
        boundary.append([True] + [False] * len(rivals))
    with _autocast(config, model):
        scores = score_candidates(
            model,
            tokenizer,
            prompts,
            candidates,
            boundary,
            batch_tokens=config.batch_tokens,
            row_tokens=config.row_tokens,
        )
    mean, exact = scores.mean_logprob.tolist(), scores.exact_match.tolist()
    out, at = [], 0
    for cands in candidates:
        rival = max(mean[at + 1 : at + len(cands)]) if len(cands) > 1 else None
        compared = None if rival is None else mean[at] > rival
        out.append((bool(exact[at]), mean[at], rival, compared))
        at += len(cands)
    return out


def score_stepwise(
    model: nn.Module, tokenizer: Any, probes: Sequence[Probe], config: ScoringConfig | None = None
) -> list[ProbeScore]:
    """MeLLo-style chains: each hop's prompt is filled with the model's own previous answer.

    A probe's `meta["hops"]` is a JSON list of `{}` templates and `meta["subject"]` the start.
    The last hop is scored teacher-forced (comparison and exact match), like any probe.
    """
    config = config or ScoringConfig()
    hops = [json.loads(p.meta["hops"]) for p in probes]
    current = [p.meta["subject"] for p in probes]
    asked: list[list[str]] = [[] for _ in probes]
    answers: list[list[str]] = [[] for _ in probes]
    broken = [False] * len(probes)
    cache: dict[str, str] = {}
    for h in range(max((len(x) for x in hops), default=0)):
        active = [i for i, x in enumerate(hops) if h < len(x) and not broken[i]]
        for i in active:
            asked[i].append(hops[i][h].replace("{}", current[i], 1))
        todo = [q for q in dict.fromkeys(asked[i][-1] for i in active) if q not in cache]
        texts = generate(model, tokenizer, todo, config.hop_tokens, stop=ends_answer, batch_size=64)
        cache.update({p: first_answer(t) for p, t in zip(todo, texts, strict=True)})
        for i in active:
            answer = cache[asked[i][-1]]
            answers[i].append(answer)
            if h < len(hops[i]) - 1:
                current[i] = answer
                broken[i] = not answer
    finals = [asked[i][-1] for i in range(len(probes))]
    scored = _teacher_forced(model, tokenizer, probes, finals, config)
    out = []
    for i, probe in enumerate(probes):
        exact, lp, rival, compared = scored[i]
        if broken[i]:
            exact, compared = False, (False if compared is not None else None)
        out.append(
            ProbeScore(
                success=_decide(probe, compared, exact),
                exact_match=exact,
                logp_expected=lp,
                logp_rival=rival,
                compared=compared,
                answer=answers[i][-1] if answers[i] else "",
                hop_answers=tuple(answers[i]),
                hop_prompts=tuple(asked[i]),
            )
        )
    return out


def score_fluency(
    model: nn.Module, tokenizer: Any, probes: Sequence[Probe], config: ScoringConfig | None = None
) -> list[ProbeScore]:
    """Generate from each prompt (seeded top-k sampling) and score its n-gram entropy."""
    config = config or ScoringConfig()
    texts = generate(
        model,
        tokenizer,
        [p.prompt for p in probes],
        config.fluency_tokens,
        sample=True,
        top_k=config.fluency_top_k,
        seed=config.seed,
    )
    return [
        ProbeScore(
            success=None,
            exact_match=False,
            logp_expected=float("nan"),
            answer=text,
            entropy=ngram_entropy(text),
        )
        for text in texts
    ]


def score_probes(
    model: nn.Module, tokenizer: Any, probes: Sequence[Probe], config: ScoringConfig | None = None
) -> list[ProbeScore]:
    """Score every probe: one packed teacher-forced pass, plus generation where a kind needs it."""
    config = config or ScoringConfig()
    out: list[ProbeScore | None] = [None] * len(probes)
    groups: dict[str, list[int]] = {"plain": [], STEPWISE: [], FLUENCY: []}
    for i, probe in enumerate(probes):
        kind = str(probe.kind)
        groups[kind if kind in (STEPWISE, FLUENCY) else "plain"].append(i)
    plain = [probes[i] for i in groups["plain"]]
    if plain:
        scored = _teacher_forced(model, tokenizer, plain, [p.prompt for p in plain], config)
        for i, probe, (exact, lp, rival, compared) in zip(
            groups["plain"], plain, scored, strict=True
        ):
            out[i] = ProbeScore(_decide(probe, compared, exact), exact, lp, rival, compared)
    for kind, scorer in ((STEPWISE, score_stepwise), (FLUENCY, score_fluency)):
        if groups[kind]:
            results = scorer(model, tokenizer, [probes[i] for i in groups[kind]], config)
            for i, result in zip(groups[kind], results, strict=True):
                out[i] = result
    return [s for s in out if s is not None]
