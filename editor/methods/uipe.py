"""UIPE: unlearning improvement via parameter extrapolation (Wang et al., Findings of EMNLP
2025), on top of GA, GradDiff or NPO (docs/methods/uipe.md).

What is implemented, and why (the paper's exact update rule could not be verified):

* θ_UIPE = θ₀ + (1 + α)(θ_u − θ₀), applied once, post hoc, to every parameter the base run
  changed (all trainable floating-point parameters; buffers are never touched). This is the
  task-arithmetic reading both independent summaries of the paper give: the update on the
  forget targets also projects onto the update directions of related knowledge, so scaling it
  pushes that related knowledge further down with no extra data. α = 0 is the base method;
* the extrapolated update is another `Delta` (the base delta's dense differences times
  1 + α), so it reverts bit for bit;
* the forget set is first grown by related-knowledge discovery in the graph (the worker
  builds it from `kg.related`); this module only sees the grown texts;
* α is chosen by a sweep, not here: `workers.unlearn_run.choose_alpha` keeps the largest
  forgetting whose retain accuracy stays ≥ 90 % of the base model's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from contracts.types import UnlearnRequest
from editor.delta import Delta, scaled
from editor.errors import EditorError
from editor.methods.common import request_ids
from editor.methods.entries import OnRequest, one_batch
from editor.methods.gradient_unlearning import (
    OBJECTIVES,
    TINY,
    GradUnlearnHyperParams,
    missing_texts,
    request_examples,
    unlearn_examples,
)
from editor.methods.registry import EditMethod, register


@dataclass(frozen=True)
class UipeHyperParams(GradUnlearnHyperParams):
    """The base method's hyper-parameters plus the base objective and the coefficient α."""

    base: str = "npo"
    extrapolation: float = 0.5  # α


def extrapolate(delta: Delta, alpha: float) -> Delta:
    """Return the delta of θ₀ + (1 + α)Δ for a base delta Δ (its entries scaled by 1 + α)."""
    if not isinstance(alpha, int | float) or alpha != alpha:
        raise EditorError(f"alpha must be a number, not {alpha!r}")
    meta = {"uipe_alpha": float(alpha), "uipe_base": delta.method}
    return scaled(delta, 1.0 + float(alpha), "uipe", meta)


def apply_uipe(
    model: nn.Module,
    tokenizer: Any,
    requests: Sequence[UnlearnRequest],
    hparams: UipeHyperParams,
    *,
    on_request: OnRequest | None = None,
) -> tuple[list[Delta], list[dict[str, Any]]]:
    """Registry entry: run the base objective, then apply the extrapolated delta instead."""
    if hparams.base not in OBJECTIVES:
        raise EditorError(f"UIPE base must be one of {OBJECTIVES}, not {hparams.base!r}")
    forget, retain = request_examples(requests)
    ids = request_ids(requests)
    base = GradUnlearnHyperParams.from_dict(
        {k: v for k, v in hparams.to_dict().items() if k not in ("base", "extrapolation")}
    )
    delta, info = unlearn_examples(
        model, tokenizer, hparams.base, forget, retain, base, request_ids=ids
    )
    delta.revert(model)
    out = extrapolate(delta, hparams.extrapolation)
    with torch.no_grad():
        out.apply(model)
    return one_batch(
        (out, {**info, "uipe_alpha": hparams.extrapolation}), len(requests), on_request
    )


def missing_base_texts(request: UnlearnRequest, overrides: Mapping[str, Any]) -> str | None:
    """Return which texts a request lacks for the base objective it runs on, or None."""
    return missing_texts(str(overrides.get("base", UipeHyperParams.base)), request)


METHOD = register(
    EditMethod(
        name="uipe",
        hparams_cls=UipeHyperParams,
        apply=apply_uipe,
        description="Parameter extrapolation θ₀ + (1+α)(θ_u − θ₀) on top of GA, GradDiff or NPO",
        batched=True,
        kind="unlearn",
        tiny={**TINY, "base": "ga"},
        check=missing_base_texts,
    )
)
