"""Gradient unlearning baselines: gradient ascent, gradient difference and NPO
(open-unlearning's definitions; docs/methods/gradient-unlearning.md), full-parameter on
small models.

Each step takes a batch of forget examples and a batch of retain examples (cycled). With NLL
the mean per-token cross-entropy of an example's completion, S its sum, and log π = −S:

* GA:       L = −γ · NLL_θ(x_f)
* GradDiff: L = −γ · NLL_θ(x_f) + α · R(x_r)
* NPO(β):   L = γ · (2/β) · E_f[ −log σ(−β (log π_θ(y|x) − log π_ref(y|x))) ] + α · R(x_r)

R is the retain NLL, or with `retain_loss="kl"` KL(π_ref ‖ π_θ) over the vocabulary, averaged
over completion tokens. π_ref is the model before unlearning: its log π of every forget
example is computed once up front; the KL retain term runs a frozen copy.

Examples are (prompt, completion) pairs; the loss covers the completion only (TOFU's answer
tokens). A request's `forget_texts` / `retain_texts` are plain texts: prompt "" and the loss
on every token but the BOS. Retain texts come from the graph's unrelated facts
(`kg.concepts.unlearn_request`).

Decisions:
* AdamW with linear warm-up over the first epoch, then constant, as the TOFU defaults; the
  knowledge models take a larger learning rate than 7B models (defaults table).
* LoRA is not implemented here: `peft` is not a dependency; the methods train every
  floating-point parameter.
* The trained weights become a dense `Delta` (θ_u − θ₀ per changed parameter) applied to the
  restored θ₀, so the result reverts bit for bit like every other method.
"""

from __future__ import annotations

import copy
import itertools
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from contracts.types import UnlearnRequest
from editor.cancel import checkpoint
from editor.delta import Delta
from editor.errors import EditorError
from editor.methods.common import HParams, request_ids
from editor.methods.entries import OnRequest, one_batch
from editor.methods.registry import EditMethod, register
from editor.tokens import target_ids

OBJECTIVES = ("ga", "graddiff", "npo")


@dataclass(frozen=True)
class Example:
    """A training example: the loss covers `completion` after `prompt` ("" = the whole text)."""

    prompt: str
    completion: str


@dataclass(frozen=True)
class GradUnlearnHyperParams(HParams):
    """Hyper-parameters of GA / GradDiff / NPO; defaults follow open-unlearning's TOFU run."""

    lr: float = 1e-5
    epochs: int = 10
    batch_size: int = 8
    weight_decay: float = 0.01
    warmup_epochs: float = 1.0
    max_grad_norm: float = 1.0
    beta: float = 0.1  # NPO
    gamma: float = 1.0  # forget-term weight
    alpha: float = 1.0  # retain-term weight (GradDiff, NPO)
    retain_loss: str = "nll"  # or "kl"
    max_length: int = 256
    seed: int = 0


def encode_examples(
    tokenizer: Any, examples: Sequence[Example], max_length: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return right-padded (input_ids (B, L), attention (B, L), labels (B, L), −100 = no loss)."""
    rows, labels = [], []
    bos = getattr(tokenizer, "bos_token_id", None)
    for ex in examples:
        if ex.prompt:
            p = list(tokenizer(ex.prompt)["input_ids"])
            c = target_ids(tokenizer, ex.completion)
            ids, lab = p + c, [-100] * len(p) + c
        else:
            ids = list(tokenizer(ex.completion)["input_ids"])
            lab = list(ids)
            if ids and bos is not None and ids[0] == bos:
                lab[0] = -100
        if len(ids) < 2:
            raise EditorError(f"example too short to train on: {ex.completion[:60]!r}")
        rows.append(ids[:max_length])
        labels.append(lab[:max_length])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)  # (B, L)
    attention = torch.zeros((len(rows), width), dtype=torch.long)  # (B, L)
    label_t = torch.full((len(rows), width), -100, dtype=torch.long)  # (B, L)
    for b, (ids, lab) in enumerate(zip(rows, labels, strict=True)):
        input_ids[b, : len(ids)] = torch.tensor(ids)
        attention[b, : len(ids)] = 1
        label_t[b, : len(lab)] = torch.tensor(lab)
    return input_ids, attention, label_t


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (summed NLL (B,), token count (B,)) of the labelled tokens; logits (B, L, V)."""
    shift_logits = logits[:, :-1].float()  # (B, L-1, V)
    shift_labels = labels[:, 1:]  # (B, L-1)
    mask = shift_labels != -100  # (B, L-1)
    token_nll = F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.shape[-1]),
        shift_labels.clamp(min=0).reshape(-1),
        reduction="none",
    ).reshape(shift_labels.shape)  # (B, L-1)
    token_nll = token_nll * mask
    return token_nll.sum(1), mask.sum(1)


def npo_loss(logp_theta: torch.Tensor, logp_ref: torch.Tensor, beta: float) -> torch.Tensor:
    """Return NPO's (2/β) · mean(−log σ(−β (log π_θ − log π_ref))) over examples (B,) -> ()."""
    if beta <= 0:
        raise EditorError(f"NPO needs beta > 0, not {beta}")
    return (2.0 / beta) * F.softplus(beta * (logp_theta - logp_ref)).mean()


def _kl_to_ref(
    logits: torch.Tensor, ref_logits: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Return KL(π_ref ‖ π_θ) summed over the vocabulary, meaned over labelled tokens."""
    mask = (labels[:, 1:] != -100).float()  # (B, L-1)
    logp = torch.log_softmax(logits[:, :-1].float(), -1)  # (B, L-1, V)
    logq = torch.log_softmax(ref_logits[:, :-1].float(), -1)  # (B, L-1, V)
    kl = (logq.exp() * (logq - logp)).sum(-1)  # (B, L-1)
    return (kl * mask).sum() / mask.sum().clamp(min=1)


def _trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    """Return the floating-point parameters by name (tied weights once)."""
    return {n: p for n, p in model.named_parameters() if p.dtype.is_floating_point}


def unlearn_examples(
    model: nn.Module,
    tokenizer: Any,
    objective: str,
    forget: Sequence[Example],
    retain: Sequence[Example],
    hparams: GradUnlearnHyperParams,
    *,
    request_ids: Sequence[str] = (),
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[Delta, dict[str, Any]]:
    """Run one objective on forget/retain examples; apply and return the dense `Delta`."""
    if objective not in OBJECTIVES:
        raise EditorError(f"objective must be one of {OBJECTIVES}, not {objective!r}")
    if not forget:
        raise EditorError("nothing to forget: no forget examples")
    if objective != "ga" and not retain:
        raise EditorError(f"{objective} needs retain examples")
    if hparams.retain_loss not in ("nll", "kl"):
        raise EditorError(f"retain_loss must be 'nll' or 'kl', not {hparams.retain_loss!r}")
    device = next(model.parameters()).device
    params = _trainable(model)
    original = {n: p.detach().clone() for n, p in params.items()}
    rng = random.Random(hparams.seed)
    was_training = model.training
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    bs = max(1, hparams.batch_size)
    steps_per_epoch = math.ceil(len(forget) / bs)
    total = steps_per_epoch * hparams.epochs
    warmup = max(1, round(hparams.warmup_epochs * steps_per_epoch))
    ref_logp: torch.Tensor | None = None
    if objective == "npo":
        ref_logp = torch.zeros(len(forget))
        model.eval()
        with torch.no_grad():
            for start in range(0, len(forget), bs):
                ids, att, lab = encode_examples(tokenizer, forget[start : start + bs], 10**9)
                ids, att, lab = ids.to(device), att.to(device), lab.to(device)
                s, _ = sequence_nll(model(input_ids=ids, attention_mask=att).logits, lab)
                ref_logp[start : start + bs] = -s.cpu()
    ref_model = copy.deepcopy(model).eval() if hparams.retain_loss == "kl" and retain else None
    losses: list[float] = []
    t0 = time.perf_counter()
    model.eval()  # dropout off; the knowledge models have none anyway
    for p in model.parameters():
        p.requires_grad_(p.dtype.is_floating_point)
    opt = torch.optim.AdamW(list(params.values()), lr=hparams.lr, weight_decay=hparams.weight_decay)
    retain_order = list(range(len(retain)))
    rng.shuffle(retain_order)
    retain_cycle = itertools.cycle(retain_order) if retain else None
    step = 0
    try:
        for _ in range(hparams.epochs):
            order = list(range(len(forget)))
            rng.shuffle(order)
            for start in range(0, len(order), bs):
                checkpoint()
                idx = order[start : start + bs]
                for group in opt.param_groups:
                    group["lr"] = hparams.lr * min(1.0, (step + 1) / warmup)
                ids, att, lab = (
                    t.to(device) for t in encode_examples(
                        tokenizer, [forget[i] for i in idx], hparams.max_length
                    )
                )  # fmt: skip
                s, n = sequence_nll(model(input_ids=ids, attention_mask=att).logits, lab)
                if objective == "npo":
                    assert ref_logp is not None
                    loss = hparams.gamma * npo_loss(-s, ref_logp[idx].to(device), hparams.beta)
                else:
                    loss = -hparams.gamma * (s / n.clamp(min=1)).mean()
                if objective != "ga" and retain_cycle is not None:
                    r_idx = [next(retain_cycle) for _ in range(bs)]
                    rid, ratt, rlab = (
                        t.to(device)
                        for t in encode_examples(
                            tokenizer, [retain[i] for i in r_idx], hparams.max_length
                        )
                    )
                    logits = model(input_ids=rid, attention_mask=ratt).logits  # (B, L, V)
                    if ref_model is not None:
                        with torch.no_grad():
                            ref_logits = ref_model(input_ids=rid, attention_mask=ratt).logits
                        retain_term = _kl_to_ref(logits, ref_logits, rlab)
                    else:
                        rs, rn = sequence_nll(logits, rlab)
                        retain_term = (rs / rn.clamp(min=1)).mean()
                    loss = loss + hparams.alpha * retain_term
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(list(params.values()), hparams.max_grad_norm)
                opt.step()
                losses.append(float(loss.detach()))
                step += 1
                if progress is not None:
                    progress(step, total, losses[-1])
    finally:
        for n, p in model.named_parameters():
            p.requires_grad_(flags[n])
        model.train(was_training)
    seconds = time.perf_counter() - t0
    diffs = {}
    with torch.no_grad():
        for name, p in params.items():
            diff = p.detach().double() - original[name].double()  # storage shape, float64
            p.copy_(original[name])  # back to θ₀ bit for bit
            if bool(diff.abs().max() > 0):
                diffs[name] = diff.to(p.dtype)
    delta = Delta.from_dense(
        objective,
        diffs,
        request_ids=request_ids,
        meta={"hparams": hparams.to_dict(), "steps": step, "objective": objective},
    )
    delta.apply(model)
    info = {"timings": {"train": seconds}, "losses": losses, "steps": step}
    return delta, info


def request_examples(requests: Sequence[UnlearnRequest]) -> tuple[list[Example], list[Example]]:
    """Return (forget, retain) examples of requests: whole texts, loss on every token."""
    forget = [Example("", t) for r in requests for t in r.forget_texts]
    retain = [Example("", t) for r in requests for t in r.retain_texts]
    return forget, list(dict.fromkeys(retain))


def missing_texts(objective: str, request: UnlearnRequest) -> str | None:
    """Return which texts a request lacks for `objective` (forget texts; retain texts beyond
    gradient ascent), or None."""
    if not any(t.strip() for t in request.forget_texts):
        return "needs forget_texts: the texts to unlearn"
    if objective != "ga" and not any(t.strip() for t in request.retain_texts):
        return "needs retain_texts: the texts to keep"
    return None


def _entry(objective: str) -> Callable[..., tuple[list[Delta], list[dict[str, Any]]]]:
    """Return the registry entry of one objective."""

    def apply(
        model: nn.Module,
        tokenizer: Any,
        requests: Sequence[UnlearnRequest],
        hparams: GradUnlearnHyperParams,
        *,
        on_request: OnRequest | None = None,
    ) -> tuple[list[Delta], list[dict[str, Any]]]:
        """Registry entry: unlearn every request's forget texts as one run (one delta)."""
        forget, retain = request_examples(requests)
        edited = unlearn_examples(
            model, tokenizer, objective, forget, retain, hparams, request_ids=request_ids(requests)
        )
        return one_batch(edited, len(requests), on_request)

    return apply


# Tiny-model settings for the tests: a few large steps, so three short epochs move the model.
TINY = {"lr": 1e-2, "epochs": 3, "batch_size": 2, "warmup_epochs": 0.0}

for _name, _text in (
    ("ga", "Gradient ascent on the forget texts (full parameters)"),
    ("graddiff", "Gradient difference: ascent on forget, descent on retain texts"),
    ("npo", "Negative preference optimisation against the starting model, plus retain NLL"),
):
    register(
        EditMethod(
            name=_name,
            hparams_cls=GradUnlearnHyperParams,
            apply=_entry(_name),
            description=_text,
            batched=True,
            kind="unlearn",
            tiny=TINY,
            check=lambda request, overrides, objective=_name: missing_texts(objective, request),
        )
    )
