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
from torch import nn

from editor.arch import ArchSpec, arch_spec, get_module
from editor.cancel import checkpoint, report_progress
from editor.errors import EditorError
from editor.hooks import Captured, add_to_output, capture_output
from editor.tokens import TargetBatch, compose, encode_prompt_targets, fill, subject_token_indices
from editor.vstar_forward import body_or_full, cached_lower, head_at, lower_output, reads_below

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


def rewriting_templates(
    context_templates: Sequence[str], prompt: str, forms: Sequence[str] = ()
) -> list[str]:
    """Return each context template with the request prompt put into its `{}`, then the same
    for each of the request's further `forms` (the form option): row j holds context template
    j mod len(context_templates)."""
    return [compose(ctx, text) for text in (prompt, *forms) for ctx in context_templates]


@dataclass
class VStarProblem:
    """One request's optimisation: the fact to write and its own loss terms or δ shape."""

    subject: str
    prompt: str
    target: str
    extra_losses: Sequence[LossTerm | Callable[[LossContext], torch.Tensor]] = ()
    delta_param: Callable[[torch.Tensor], DeltaParam] | None = None
    forms: tuple[str, ...] = ()  # the form option: further templates of the fact


def optimize_v(
    model: nn.Module,
    tokenizer: Any,
    subject: str,
    prompt: str,
    target: str,
    context_templates: Sequence[str],
    *,
    extra_losses: Sequence[LossTerm | Callable[[LossContext], torch.Tensor]] = (),
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    delta_param: Callable[[torch.Tensor], DeltaParam] | None = None,
    forms: Sequence[str] = (),
    **options: Any,
) -> VStarResult:
    """Optimise δ added to `insert_template.format(layer)` (default: the MLP) and return v*.

    `delta_param(m0)` builds the parametrisation of δ (default `FreeDelta`); `options` are
    those of `optimize_v_batch`.
    """
    problem = VStarProblem(subject, prompt, target, tuple(extra_losses), delta_param, tuple(forms))
    step_cb = None if on_step is None else (lambda _i, step, rec: on_step(step, rec))
    return optimize_v_batch(
        model, tokenizer, [problem], context_templates, on_step=step_cb, **options
    )[0]


def optimize_v_batch(
    model: nn.Module,
    tokenizer: Any,
    problems: Sequence[VStarProblem],
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
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
    cache_lower: bool = True,
    targets_only: bool = True,
    batch_tokens: int = 0,
    subject_position: str = "last",
) -> list[VStarResult]:
    """Optimise every problem's δ, several problems per forward pass; return their results.

    Problems are stacked in chunks of at most `batch_tokens` padded tokens (0: one problem
    per chunk). Each has its own δ, optimiser and stop; a problem that stops leaves the
    forward passes. The losses of different problems share no term, so the sum's gradient
    with respect to δ_i is problem i's own and every result equals its optimisation alone.
    `cache_lower` and `targets_only` are the exact savings of `editor.vstar_forward`.
    `on_step(index, step, record)` is called per problem and step; `checkpoint()` and
    `report_progress(done, total)` (problems finished) once per step.
    `subject_position` ("first", "last", "all"): the subject tokens δ is added at; m0 is the
    module's output there (averaged over the tokens for "all").
    """
    if not problems:
        raise EditorError("no requests to optimise")
    spec = spec or arch_spec(model)
    insert = (insert_template or spec.mlp).format(layer)
    module = get_module(model, insert)
    settings = _Settings(
        num_steps, lr, weight_decay, clamp_norm_factor, kl_factor, nll_factor, loss_stop,
        subject_position,
    )  # fmt: skip
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    was_training = model.training
    model.eval()
    model.requires_grad_(False)
    try:
        runs = [
            _Run.build(model, tokenizer, module, p, context_templates, essence_prompts, settings)
            for p in problems
        ]
        progress = _Progress(len(runs))
        for chunk in _chunks(runs, batch_tokens):
            _optimise_chunk(
                model, tokenizer, spec, layer, module, chunk, settings, progress, on_step,
                cache_lower=cache_lower, targets_only=targets_only,
            )  # fmt: skip
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(flags[name])
        model.train(was_training)
    return [r.result() for r in runs]


@dataclass(frozen=True)
class _Settings:
    """The optimisation settings every problem shares."""

    num_steps: int
    lr: float
    weight_decay: float
    clamp_norm_factor: float
    kl_factor: float
    nll_factor: float
    loss_stop: float
    subject_position: str


@dataclass
class _Progress:
    """Problems finished across chunks, reported once per step."""

    total: int
    done: int = 0


@dataclass
class _Run:
    """One problem's prompts, parametrisation, optimiser and running state."""

    index: int
    problem: VStarProblem
    texts: list[str]
    targets: list[str | None]
    lookup: list[int]  # per prompt: the subject token the KL term reads
    at: list[list[int]]  # per prompt: the subject tokens δ is added at
    n_rewrite: int
    m0: torch.Tensor  # (d,)
    param: DeltaParam
    opt: torch.optim.Optimizer
    max_norm: torch.Tensor  # ()
    captures: dict[str, nn.Module]
    history: list[dict[str, float]] = field(default_factory=list)
    last: torch.Tensor | None = None  # (d,)
    best: torch.Tensor | None = None  # (d,)
    best_loss: float = float("inf")
    kl_init: torch.Tensor | None = None  # (n_e, V)
    n_tokens: int = 0  # the longest prompt, in tokens
    active: bool = True

    @classmethod
    def build(
        cls,
        model: nn.Module,
        tokenizer: Any,
        module: nn.Module,
        problem: VStarProblem,
        context_templates: Sequence[str],
        essence_prompts: Sequence[str],
        settings: _Settings,
    ) -> _Run:
        """Encode the problem's prompts, read m0 and set up δ and its optimiser."""
        device = next(model.parameters()).device
        r_templates = rewriting_templates(context_templates, problem.prompt, problem.forms)
        templates = r_templates + list(essence_prompts)
        n_rewrite = len(r_templates)
        texts = [fill(t, problem.subject)[0] for t in templates]
        targets: list[str | None] = [problem.target] * n_rewrite
        targets += [None] * len(essence_prompts)
        where = settings.subject_position
        at = [subject_token_indices(tokenizer, t, problem.subject, where) for t in templates]
        lookup = [cols[0] if where == "first" else cols[-1] for cols in at]
        batch = encode_prompt_targets(tokenizer, texts, targets).to(device)
        m0 = _bare_output(
            model, tokenizer, module, problem.subject, problem.prompt, context_templates,
            batch, at, where,
        )  # fmt: skip
        param = (problem.delta_param or FreeDelta)(m0)
        captures = {
            name: get_module(model, name) for t in problem.extra_losses for name in _captures(t)
        }
        return cls(
            index=-1, problem=problem, texts=texts, targets=targets, lookup=lookup, at=at,
            n_rewrite=n_rewrite, m0=m0, param=param, opt=param.optimizer(settings.lr),
            max_norm=settings.clamp_norm_factor * m0.norm(), captures=captures,
            n_tokens=int(batch.attention_mask.sum(1).max()),
        )  # fmt: skip

    def result(self) -> VStarResult:
        """Return the problem's outcome."""
        last = self.last if self.last is not None else torch.zeros_like(self.m0)  # (d,)
        return VStarResult(
            v_star=self.m0 + last,
            delta=last,
            m0=self.m0,
            losses=self.history,
            prompts=self.texts,
            best_delta=self.best if self.best is not None else last,
            best_loss=self.best_loss,
        )


def _chunks(runs: list[_Run], batch_tokens: int) -> list[list[_Run]]:
    """Group runs, shortest prompts first (less padding), into chunks whose padded size
    (rows x longest) fits the budget."""
    for i, run in enumerate(runs):
        run.index = i
    chunks: list[list[_Run]] = []
    rows = longest = 0
    for run in sorted(runs, key=lambda r: r.n_tokens):
        n, size = len(run.texts), run.n_tokens
        fits = chunks and (rows + n) * max(longest, size) <= batch_tokens
        if not fits:
            chunks.append([])
            rows = longest = 0
        chunks[-1].append(run)
        rows, longest = rows + n, max(longest, size)
    return chunks


def _optimise_chunk(
    model: nn.Module,
    tokenizer: Any,
    spec: ArchSpec,
    layer: int,
    module: nn.Module,
    chunk: list[_Run],
    s: _Settings,
    progress: _Progress,
    on_step: Callable[[int, int, dict[str, float]], None] | None,
    *,
    cache_lower: bool,
    targets_only: bool,
) -> None:
    """Run the optimisation loop of one chunk of problems until each has stopped."""
    device = next(model.parameters()).device
    texts = [t for r in chunk for t in r.texts]
    batch = encode_prompt_targets(tokenizer, texts, [t for r in chunk for t in r.targets])
    batch = batch.to(device)
    lookup = torch.tensor([i for r in chunk for i in r.lookup], device=device)  # (R,)
    at_rows = [cols for r in chunk for cols in r.at]  # per row: the subject tokens δ goes to
    starts = [0]
    for r in chunk:
        starts.append(starts[-1] + len(r.texts))
    captures = {name: mod for r in chunk for name, mod in r.captures.items()}
    n_lower = layer if cache_lower and not reads_below(spec, layer, captures) else 0
    cached = lower_output(model, spec, n_lower, batch)
    hidden = targets_only and not any(r.problem.extra_losses for r in chunk)
    for step in range(s.num_steps):
        checkpoint()
        live = [(k, r) for k, r in enumerate(chunk) if r.active]
        spans = [(starts[k], starts[k + 1]) for k, _ in live]
        rows = torch.cat([torch.arange(a, b, device=device) for a, b in spans])  # (R_a,)
        length = int(batch.attention_mask[rows].sum(1).max())
        sub = _take(batch, rows, length)
        sub_lookup = lookup[rows]  # (R_a,)
        local = [0]
        for a, b in spans:
            local.append(local[-1] + b - a)
        deltas = [r.param() for _, r in live]  # each (d,)
        owner = torch.cat(
            [torch.full((b - a,), j, device=device) for j, (a, b) in enumerate(spans)]
        )  # (R_a,)
        row_deltas = torch.stack(deltas)[owner]  # (R_a, d)
        picked = [(i, c) for i, g in enumerate(rows.tolist()) for c in at_rows[g]]
        ins_rows = torch.tensor([i for i, _ in picked], device=device)  # (P,)
        ins_cols = torch.tensor([c for _, c in picked], device=device)  # (P,)
        for _, r in live:
            r.opt.zero_grad()
        with ExitStack() as stack:
            caps: dict[str, Captured] = {
                name: stack.enter_context(capture_output(mod, detach=False))
                for name, mod in captures.items()
            }
            stack.enter_context(cached_lower(model, spec, n_lower, cached, rows, length))
            at = torch.arange(len(rows), device=device)  # (R_a,)
            stack.enter_context(add_to_output(module, ins_rows, ins_cols, row_deltas[ins_rows]))
            out = body_or_full(model, sub.model_inputs(), hidden)  # (R_a, L, d or V)
        outputs = {name: c.value for name, c in caps.items() if c.value is not None}
        runs = [r for _, r in live]
        terms = _base_terms(model, runs, s, out, hidden, sub, local, torch.stack(deltas))
        for j, r in enumerate(runs):
            if r.problem.extra_losses:
                a, b = local[j], local[j + 1]
                ctx = LossContext(
                    model=model, tokenizer=tokenizer, step=step, logits=out[a:b],
                    batch=_take(sub, at[a:b], length), lookup=sub_lookup[a:b],
                    n_rewrite=r.n_rewrite, delta=deltas[j], m0=r.m0,
                    outputs={n: v[a:b] for n, v in outputs.items()},
                )  # fmt: skip
                for i, term in enumerate(r.problem.extra_losses):
                    name = getattr(term, "name", f"extra{i}")
                    value = term(ctx).float().reshape(1)  # (1,)
                    terms.setdefault(name, torch.zeros(len(runs), device=device))
                    terms[name] = terms[name].index_put((torch.tensor([j]),), value)
        totals = torch.stack(list(terms.values())).sum(0)  # (n_a,)
        values = torch.cat([torch.stack(list(terms.values())), totals[None]]).detach().tolist()
        keep = []
        for j, r in enumerate(runs):
            record = {k: v[j] for k, v in zip([*terms, "total"], values, strict=True)}
            r.history.append(record)
            r.last = deltas[j].detach().clone()  # (d,)
            if record["total"] < r.best_loss:
                r.best, r.best_loss = r.last, record["total"]
            if on_step is not None:
                on_step(r.index, step, record)
            if record["total"] < s.loss_stop or step == s.num_steps - 1:
                r.active = False
                progress.done += 1
            else:
                keep.append(j)
        report_progress(progress.done, progress.total)
        if not keep:
            break
        totals[torch.tensor(keep, device=device)].sum().backward()
        for j in keep:
            runs[j].opt.step()
            runs[j].param.project(runs[j].max_norm)


def _take(batch: TargetBatch, rows: torch.Tensor, length: int) -> TargetBatch:
    """Return the batch's `rows`, cut to the first `length` columns."""
    return TargetBatch(
        batch.input_ids[rows, :length],
        batch.attention_mask[rows, :length],
        batch.pred_positions[rows],
        batch.target_ids[rows],
        batch.target_mask[rows],
        batch.prompt_lengths[rows],
    )


def _base_terms(
    model: nn.Module,
    runs: list[_Run],
    s: _Settings,
    out: torch.Tensor,
    hidden: bool,
    sub: TargetBatch,
    local: list[int],
    deltas: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Return the weighted NLL, KL and decay terms of every live problem, each (n_a,).

    `out` holds the live rows' final hidden states (`hidden`) or logits; problem j owns rows
    [local[j], local[j+1]) of `out` and `sub`, its rewriting prompts first. deltas: (n_a, d).
    """
    device = out.device
    n_a = len(runs)
    spans = [(local[j], local[j] + r.n_rewrite, local[j + 1]) for j, r in enumerate(runs)]
    r_idx = torch.cat([torch.arange(a, m, device=device) for a, m, _ in spans])  # (N_r,)
    r_own = torch.cat([torch.full((m - a,), j, device=device) for j, (a, m, _) in enumerate(spans)])
    at_targets = out[r_idx[:, None], sub.pred_positions[r_idx]]  # (N_r, T, d or V)
    logits = head_at(model, at_targets) if hidden else at_targets  # (N_r, T, V)
    logp = torch.log_softmax(logits.float(), dim=-1)  # (N_r, T, V)
    token_lp = torch.gather(logp, 2, sub.target_ids[r_idx].unsqueeze(-1)).squeeze(-1)
    mask = sub.target_mask[r_idx]  # (N_r, T)
    row_nll = -(token_lp * mask).sum(1) / mask.sum(1).clamp(min=1)  # (N_r,)
    n_rw = torch.tensor([r.n_rewrite for r in runs], device=device)  # (n_a,)
    nll = torch.zeros(n_a, device=device).index_add(0, r_own, row_nll) / n_rw  # (n_a,)
    terms = {"nll": s.nll_factor * nll}
    n_e = len(runs[0].texts) - runs[0].n_rewrite
    if n_e and s.kl_factor:
        e_idx = torch.cat([torch.arange(m, b, device=device) for _, m, b in spans])  # (N_e,)
        at_subject = out[e_idx, _lookup(runs, device)[e_idx]]  # (N_e, d or V)
        e_logits = head_at(model, at_subject) if hidden else at_subject  # (N_e, V)
        kl_lp = torch.log_softmax(e_logits.float(), dim=-1)  # (N_e, V)
        for j, r in enumerate(runs):
            if r.kl_init is None:
                r.kl_init = kl_lp[j * n_e : (j + 1) * n_e].detach().clone()  # (n_e, V)
        init = torch.cat([r.kl_init for r in runs if r.kl_init is not None])  # (N_e, V)
        row_kl = (kl_lp.exp() * (kl_lp - init)).sum(-1)  # (N_e,)
        kl = row_kl.view(n_a, n_e).sum(1) / n_e  # (n_a,): KL(P_δ ‖ P_0), batch mean
        terms["kl"] = s.kl_factor * kl
    m0_sq = torch.stack([r.m0.norm() ** 2 for r in runs])  # (n_a,)
    terms["weight_decay"] = s.weight_decay * deltas.norm(dim=1) / m0_sq
    return terms


def _lookup(runs: list[_Run], device: torch.device) -> torch.Tensor:
    """Return the subject's last-token position of every live row (R_a,), in row order."""
    return torch.tensor([i for r in runs for i in r.lookup], device=device)


def _captures(term: Any) -> Sequence[str]:
    """Return the module names a loss term asks to capture (attribute `captures`)."""
    return tuple(getattr(term, "captures", ()))


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
