"""The shared v*/δ optimisation of the ROME family, with the released code's semantics.

A free vector δ (init 0) is *added* to the output of one module (ROME: the MLP of the edit
layer) at the subject's last token (or its first, or every subject token: `subject_position`,
from a calibration) of every prompt in one batch:

* rewriting prompts `context_j(prompt(s)) + o*[:-1]` for every context template j, and
* essence prompts (default `"{} is a"`).

Loss = nll_factor·NLL(o* | rewriting prompts) + kl_factor·KL(P_δ ‖ P_0) on the next-token
distribution at the subject's last token of the essence prompts + weight_decay·‖δ‖/‖m_0‖²
+ any extra terms. Adam on δ only (model frozen); after each step δ is clamped onto the ball
of radius clamp_norm_factor·‖m_0‖; stop when the loss is below `loss_stop` or after
`num_steps` evaluations (the last one only evaluates). Result: v* = m_0 + δ.

δ is a free vector by default. A method may parametrise it instead (`delta_param`): GLAME
produces δ with a graph network, DiKE moves only the knowledge-related latent part. The
parametrisation owns its parameters, its optimiser and its norm constraint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from editor.arch import ArchSpec, arch_spec, get_module
from editor.cancel import checkpoint
from editor.errors import EditorError
from editor.hooks import Captured, add_to_output, capture_output
from editor.tokens import (
    TargetBatch,
    compose,
    encode_prompt_targets,
    fill,
    subject_token_indices,
    target_logprobs_from_logits,
)

ESSENCE_PROMPTS: tuple[str, ...] = ("{} is a",)


@dataclass
class LossContext:
    """What an extra loss term sees at one optimisation step."""

    model: nn.Module
    tokenizer: Any
    step: int
    logits: torch.Tensor  # (B, L, V)
    batch: TargetBatch
    lookup: torch.Tensor  # (B,) subject token index per row (the first one for "first")
    n_rewrite: int  # rows [0, n_rewrite) are rewriting prompts, the rest essence prompts
    delta: torch.Tensor  # (d,)
    m0: torch.Tensor  # (d,)
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (B, L, d)


class LossTerm(Protocol):
    """An extra loss term: a callable returning a scalar; may name modules to capture."""

    name: str

    def __call__(self, ctx: LossContext) -> torch.Tensor:
        """Return the (already weighted) scalar loss for this step."""
        ...


class DeltaParam(Protocol):
    """How δ is produced from trainable parameters (default: δ itself, `FreeDelta`)."""

    def parameters(self) -> Sequence[torch.Tensor]:
        """Return the tensors the optimiser updates."""
        ...

    def __call__(self) -> torch.Tensor:
        """Return δ (d,), differentiable with respect to the parameters."""
        ...

    def optimizer(self, lr: float) -> torch.optim.Optimizer:
        """Return the optimiser over the parameters."""
        ...

    def project(self, max_norm: torch.Tensor) -> None:
        """Enforce ‖δ‖ ≤ max_norm after an optimiser step (no-op if `__call__` clamps)."""
        ...


class FreeDelta:
    """The reference parametrisation: δ is a free vector, Adam on it, rescaled onto the ball."""

    def __init__(self, m0: torch.Tensor) -> None:
        self.delta = torch.zeros_like(m0, requires_grad=True)  # (d,)

    def parameters(self) -> Sequence[torch.Tensor]:
        """Return [δ]."""
        return [self.delta]

    def __call__(self) -> torch.Tensor:
        """Return δ (d,)."""
        return self.delta

    def optimizer(self, lr: float) -> torch.optim.Optimizer:
        """Return Adam on δ."""
        return torch.optim.Adam([self.delta], lr=lr)

    @torch.no_grad()
    def project(self, max_norm: torch.Tensor) -> None:
        """Rescale δ onto the ball of radius `max_norm` when it lies outside."""
        if self.delta.norm() > max_norm:
            self.delta.mul_(max_norm / self.delta.norm())


@dataclass
class VStarResult:
    """Outcome of the optimisation: v* = m0 + δ and the per-step loss history.

    `delta` is the δ of the last evaluation; `best_delta` the δ of the lowest total loss.
    """

    v_star: torch.Tensor  # (d,)
    delta: torch.Tensor  # (d,)
    m0: torch.Tensor  # (d,)
    losses: list[dict[str, float]]
    prompts: list[str]
    best_delta: torch.Tensor | None = None  # (d,)
    best_loss: float = float("inf")


def rewriting_templates(context_templates: Sequence[str], prompt: str) -> list[str]:
    """Return each context template with the request prompt put into its `{}`."""
    return [compose(ctx, prompt) for ctx in context_templates]


def optimize_v(
    model: nn.Module,
    tokenizer: Any,
    subject: str,
    prompt: str,
    target: str,
    context_templates: Sequence[str],
    *,
    layer: int,
    spec: ArchSpec | None = None,
    insert_template: str | None = None,
    num_steps: int = 20,
    lr: float = 0.5,
    weight_decay: float = 0.5,
    clamp_norm_factor: float = 4.0,
    kl_factor: float = 0.0625,
    nll_factor: float = 1.0,
    loss_stop: float = 0.05,
    essence_prompts: Sequence[str] = ESSENCE_PROMPTS,
    extra_losses: Sequence[LossTerm | Callable[[LossContext], torch.Tensor]] = (),
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    delta_param: Callable[[torch.Tensor], DeltaParam] | None = None,
    subject_position: str = "last",
) -> VStarResult:
    """Optimise δ added to `insert_template.format(layer)` (default: the MLP) and return v*.

    `delta_param(m0)` builds the parametrisation of δ (default `FreeDelta`).
    `subject_position` ("first", "last", "all"): the subject tokens δ is added at; m0 is the
    module's output there (averaged over the tokens for "all").
    """
    spec = spec or arch_spec(model)
    module = get_module(model, (insert_template or spec.mlp).format(layer))
    device = next(model.parameters()).device
    r_templates = rewriting_templates(context_templates, prompt)
    templates = r_templates + list(essence_prompts)
    n_rewrite = len(r_templates)
    texts = [fill(t, subject)[0] for t in templates]
    batch = encode_prompt_targets(
        tokenizer, texts, [target] * n_rewrite + [None] * len(essence_prompts)
    ).to(device)
    at = [subject_token_indices(tokenizer, t, subject, subject_position) for t in templates]
    lookup = torch.tensor([cols[0] if subject_position == "first" else cols[-1] for cols in at])
    lookup = lookup.to(device)  # (B,)
    rows = torch.arange(len(templates), device=device)  # (B,)
    ins_rows = torch.tensor([b for b, cols in enumerate(at) for _ in cols], device=device)  # (P,)
    ins_cols = torch.tensor([c for cols in at for c in cols], device=device)  # (P,)
    n_targets = batch.target_mask[:n_rewrite].sum(1).clamp(min=1)  # (n_rewrite,)

    captures = {name: get_module(model, name) for t in extra_losses for name in _captures(t)}
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    was_training = model.training
    model.eval()
    model.requires_grad_(False)
    try:
        m0 = _bare_output(
            model, tokenizer, module, subject, prompt, context_templates, batch, at,
            subject_position,
        )  # fmt: skip
        param = (delta_param or FreeDelta)(m0)
        opt = param.optimizer(lr)
        max_norm = clamp_norm_factor * m0.norm()
        kl_init: torch.Tensor | None = None
        history: list[dict[str, float]] = []
        last = best = torch.zeros_like(m0)  # (d,)
        best_loss = float("inf")
        for step in range(num_steps):
            checkpoint()
            opt.zero_grad()
            delta = param()  # (d,)
            with ExitStack() as stack:
                caps: dict[str, Captured] = {
                    name: stack.enter_context(capture_output(mod, detach=False))
                    for name, mod in captures.items()
                }
                stack.enter_context(add_to_output(module, ins_rows, ins_cols, delta))
                logits = model(**batch.model_inputs(), use_cache=False).logits  # (B, L, V)
            token_lp = target_logprobs_from_logits(logits[:n_rewrite], _rows(batch, n_rewrite))
            nll = (-token_lp.sum(1) / n_targets).mean()  # ()
            terms: dict[str, torch.Tensor] = {"nll": nll_factor * nll}
            if essence_prompts and kl_factor:
                e_rows = rows[n_rewrite:]  # (n_e,)
                kl_lp = torch.log_softmax(logits[e_rows, lookup[n_rewrite:]].float(), dim=-1)
                if kl_init is None:
                    kl_init = kl_lp.detach().clone()  # (n_e, V)
                kl = F.kl_div(kl_init, kl_lp, log_target=True, reduction="batchmean")
                terms["kl"] = kl_factor * kl
            terms["weight_decay"] = weight_decay * delta.norm() / m0.norm() ** 2
            if extra_losses:
                ctx = LossContext(
                    model=model,
                    tokenizer=tokenizer,
                    step=step,
                    logits=logits,
                    batch=batch,
                    lookup=lookup,
                    n_rewrite=n_rewrite,
                    delta=delta,
                    m0=m0,
                    outputs={name: c.value for name, c in caps.items() if c.value is not None},
                )
                for i, term in enumerate(extra_losses):
                    terms[getattr(term, "name", f"extra{i}")] = term(ctx)
            loss = torch.stack([t.float() for t in terms.values()]).sum()
            record = {k: float(v.detach()) for k, v in terms.items()}
            record["total"] = float(loss.detach())
            history.append(record)
            last = delta.detach().clone()  # (d,)
            if record["total"] < best_loss:
                best, best_loss = last, record["total"]
            if on_step is not None:
                on_step(step, record)
            if record["total"] < loss_stop or step == num_steps - 1:
                break
            loss.backward()
            opt.step()
            param.project(max_norm)
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(flags[name])
        model.train(was_training)
    return VStarResult(
        v_star=m0 + last,
        delta=last,
        m0=m0,
        losses=history,
        prompts=texts,
        best_delta=best,
        best_loss=best_loss,
    )


def _captures(term: Any) -> Sequence[str]:
    """Return the module names a loss term asks to capture (attribute `captures`)."""
    return tuple(getattr(term, "captures", ()))


def _rows(batch: TargetBatch, n: int) -> TargetBatch:
    """Return the first n rows of a batch."""
    return TargetBatch(*(getattr(batch, f)[:n] for f in batch.__dataclass_fields__))


@torch.no_grad()
def _bare_output(
    model: nn.Module,
    tokenizer: Any,
    module: nn.Module,
    subject: str,
    prompt: str,
    context_templates: Sequence[str],
    batch: TargetBatch,
    at: Sequence[Sequence[int]],
    subject_position: str,
) -> torch.Tensor:
    """Return m0: `module`'s output at the subject token(s) of the bare prompt (mean)."""
    if "{}" in context_templates:
        row = list(context_templates).index("{}")
        inputs = {k: v[row : row + 1] for k, v in batch.model_inputs().items()}
        cols = list(at[row])
    else:
        device = next(model.parameters()).device
        text = fill(prompt, subject)[0]
        inputs = {k: v.to(device) for k, v in tokenizer(text, return_tensors="pt").items()}
        inputs = {k: inputs[k] for k in ("input_ids", "attention_mask") if k in inputs}
        cols = subject_token_indices(tokenizer, prompt, subject, subject_position)
    with capture_output(module, [0] * len(cols), cols, stop=True) as cap:
        model(**inputs, use_cache=False)
    if cap.value is None:
        raise EditorError("insert module did not run")
    return cap.value.float().mean(0)  # (d,)
