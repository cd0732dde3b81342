"""FT-L: norm-constrained fine-tuning of one MLP down-projection, the baseline of the ROME
paper (Zhu et al., 2020 constraint; ROME's `FT-L`).

Adam on the weight of one layer's down-projection only (everything else frozen) minimises
the mean per-token NLL of each request's target after its prompt, all requests of a call
in one batch. After every step each weight is clipped to [w₀ − ε, w₀ + ε] (an L∞ ball of
radius ε = `norm_constraint` around the original weights). Stop when the loss falls below
`loss_stop` or after `num_steps` steps.

Decisions:
* The loss is teacher-forced over every target token (the released FT code scores all target
  tokens at the last prompt position, a known quirk EasyEdit fixed); `context_templates`
  (default: the bare prompt only, as the reference) can add prefixed prompts.
* The trained weight is turned into a dense `Delta` against the original, which is put back
  bit for bit before the delta is applied, so it reverts exactly like every other method.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from contracts.types import EditRequest
from editor.arch import ArchSpec, edited_weight, edited_weight_name
from editor.cancel import checkpoint
from editor.delta import Delta
from editor.errors import EditorError
from editor.methods.common import HParams, checked_spec, request_ids, request_meta
from editor.methods.defaults import KNOWLEDGE, Row, llama_like, sourced
from editor.methods.registry import EditMethod, register
from editor.tokens import encode_prompt_targets, fill, target_logprobs_from_logits
from editor.vstar import rewriting_templates


@dataclass(frozen=True)
class FtHyperParams(HParams):
    """FT-L hyper-parameters; defaults are the released GPT-2 XL `FT-L` values."""

    layer: int
    num_steps: int = 25
    lr: float = 5e-4
    weight_decay: float = 0.0
    norm_constraint: float = 5e-4
    loss_stop: float = 1e-2


def apply_ft(
    model: nn.Module,
    tokenizer: Any,
    requests: Sequence[EditRequest],
    hparams: FtHyperParams,
    *,
    context_templates: Sequence[str] | None = None,
    spec: ArchSpec | None = None,
) -> tuple[Delta, dict[str, Any]]:
    """Fine-tune one layer on the requests in place; return the dense `Delta` and info."""
    if not requests:
        raise EditorError("FT-L needs at least one request")
    spec = checked_spec(model, (hparams.layer,), spec)
    templates = list(context_templates or ["{}"])
    device = next(model.parameters()).device
    texts, targets = [], []
    for request in requests:
        for template in rewriting_templates(templates, request.prompt):
            texts.append(fill(template, request.subject)[0])
            targets.append(request.target_new)
    batch = encode_prompt_targets(tokenizer, texts, targets).to(device)
    n_tokens = batch.target_mask.sum(1).clamp(min=1)  # (B,)

    weight = edited_weight(model, spec, hparams.layer)
    original = weight.detach().clone()  # storage orientation
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    was_training = model.training
    model.eval()
    model.requires_grad_(False)
    weight.requires_grad_(True)
    opt = torch.optim.Adam([weight], lr=hparams.lr, weight_decay=hparams.weight_decay)
    eps = hparams.norm_constraint
    losses: list[float] = []
    t0 = time.perf_counter()
    try:
        for _ in range(hparams.num_steps):
            checkpoint()
            opt.zero_grad()
            logits = model(**batch.model_inputs(), use_cache=False).logits  # (B, L, V)
            token_lp = target_logprobs_from_logits(logits, batch)  # (B, T)
            loss = (-token_lp.sum(1) / n_tokens).mean()  # ()
            losses.append(float(loss.detach()))
            if losses[-1] < hparams.loss_stop:
                break
            loss.backward()
            opt.step()
            with torch.no_grad():
                weight.copy_(torch.clamp(weight, original - eps, original + eps))
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(flags[name])
        model.train(was_training)
    with torch.no_grad():
        diff = weight.detach().double() - original.double()  # storage orientation, float64
        weight.copy_(original)  # back to the exact original bits
    seconds = time.perf_counter() - t0
    name = edited_weight_name(spec, hparams.layer)
    delta = Delta.from_dense(
        "ft",
        {name: diff.to(original.dtype)},
        request_ids=request_ids(requests),
        meta={
            "layer": hparams.layer,
            "requests": request_meta(requests),
            "hparams": hparams.to_dict(),
            "steps": len(losses),
        },
    )
    delta.apply(model)
    info = {
        "timings": {"fine_tune": seconds},
        "losses": losses,
        "max_abs_change": float(diff.abs().max()),
    }
    return delta, info


def apply_ft_to_model(
    model: nn.Module,
    tokenizer: Any,
    requests: Sequence[EditRequest],
    hparams: FtHyperParams,
    *,
    spec: ArchSpec | None = None,
    on_request: Callable[[int, int], None] | None = None,
) -> tuple[list[Delta], list[dict[str, Any]]]:
    """Registry entry: fine-tune on all requests as one batch (one delta)."""
    delta, info = apply_ft(model, tokenizer, requests, hparams, spec=spec)
    if on_request is not None:
        on_request(len(requests), len(requests))
    return [delta], [info]


# Default rows per family (`editor.methods.defaults`): FT-L edits the layer ROME edits.
DEFAULTS = sourced(
    {
        "gpt2": Row((17,), 48),
        "gptj": Row((5,), 28),
        "gpt_neox": Row((15,), 44),
        **llama_like(Row((5,), 32)),
        KNOWLEDGE: Row((0,), None, {"lr": 5e-3, "norm_constraint": 5e-3}),
    },
    "kgedit: FT-L on the ROME release layer (docs/methods/ft.md)",
)

METHOD = register(
    EditMethod(
        name="ft",
        hparams_cls=FtHyperParams,
        apply=apply_ft_to_model,
        description="FT-L: fine-tuning of one down-projection inside an L∞ ball (baseline)",
        batched=True,
        defaults=DEFAULTS,
        tiny={"layer": 0, "num_steps": 12, "lr": 1e-2, "norm_constraint": 5e-2},
    )
)
