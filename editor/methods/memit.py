"""MEMIT: mass-editing memory in a transformer (Meng et al., 2023), as the released code runs
it (docs/methods/memit.md).

1. targets: for each request z_i = h_i + δ_i, from the v*/δ optimisation with δ added to the
   *block output* of the last critical layer l_L (clamp 0.75·‖h‖), all on the unedited model;
2. spreading: for each critical layer l_k in ascending order, on the model as edited so far,
   K = keys at the subject token (½·[bare-prompt key + mean of the prefixed keys]),
   R = (Z − H) / (L − k + 1) with H the current block outputs of l_L on the bare prompts,
   Δ_k = R Kᵀ (λ·C_k + K Kᵀ)⁻¹, solved as a linear system in float64, applied at once.

C_k = E[k kᵀ] is the normalised second moment, so λ (`mom2_update_weight`) carries the
statistics' weight against the n new keys. With one request and one layer the update is
ridge ROME: Δ = r (C⁻¹k)ᵀ / (λ + kᵀC⁻¹k) (Sherman–Morrison); λ → 0 interpolates r exactly.

Decisions:
* λ is scale-dependent (the statistics' weight against the new keys; E[kᵀC⁻¹k] = m). The
  released values stay in the defaults table for HF families; for the knowledge models it
  was chosen on EVOKE edits of the `small` model (`editor.methods.defaults`,
  docs/results/editing-dev.md).
* The update of each layer is stored as factors U = R (d×n) and V = (λC + KKᵀ)⁻¹K (m×n),
  or dense when n(d + m) ≥ dm; one `Delta` holds every layer of a batch.
* Knowledge models: only layer 0's MLP stores facts (docs/knowledge-model.md), and z must sit
  below the attention layers that read the subject, so the critical layers there are the
  traced layer and the next one, (0, 1): z is the output of block 1, half the residual goes
  to layer 0's MLP and the rest to layer 1's (measured against layers (0,); docs/methods/memit.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from contracts.types import EditRequest
from editor.arch import ArchSpec
from editor.delta import Delta
from editor.errors import EditorError
from editor.methods.common import (
    HParams,
    StatsSource,
    apply_entry,
    bare_outputs,
    batch_delta,
    check_width,
    checked_spec,
    factor_entry,
    hparams_context_templates,
    moment_for,
    request_forms,
    request_keys,
    subject_position,
    templates_or_default,
    timed,
    vstar_options,
)
from editor.methods.defaults import KNOWLEDGE, KNOWLEDGE_FORMS, KNOWLEDGE_Z, Row, llama_like
from editor.methods.entries import EditCall, whole_batch
from editor.methods.registry import EditMethod, register
from editor.tokens import SUBJECT_POSITIONS
from editor.vstar import ESSENCE_PROMPTS, LossTerm, VStarProblem, optimize_v_batch

MEMIT_SEEDS: tuple[str, ...] = ("The", "Therefore", "Because", "I", "You")


@dataclass(frozen=True)
class SpreadHyperParams(HParams):
    """The fields of every method that spreads its targets over `layers` as MEMIT does
    (`targets_then_spread`): v* settings, templates and statistics size (GPT-2 XL values)."""

    layers: tuple[int, ...]
    v_num_grad_steps: int = 20
    v_lr: float = 0.5
    v_weight_decay: float = 0.5
    clamp_norm_factor: float = 0.75
    kl_factor: float = 0.0625
    v_loss_stop: float = 0.05
    v_cache: bool = True  # exact savings of the z loop (editor.vstar_forward); False: plain
    # requests' z optimised together up to this many padded tokens (0: one at a time); off by
    # default: on one CPU thread it slowed `small` 0.63x (docs/results/batch-edit.md)
    v_batch_tokens: int = 0
    context_template_length_params: tuple[tuple[int, int], ...] = ((10, 5),)
    context_seeds: tuple[str, ...] = MEMIT_SEEDS
    context_seed: int = 0
    essence_prompts: tuple[str, ...] = ESSENCE_PROMPTS
    mom2_n_samples: int = 100_000
    fact_token: str = "subject_last"  # or subject_first / subject_all (a calibration's choice)
    forms: int = 0  # the form option: how many of the request's forms v* and k average over


@dataclass(frozen=True)
class MemitHyperParams(SpreadHyperParams):
    """MEMIT hyper-parameters; defaults are the released GPT-2 XL JSON values."""

    mom2_update_weight: float = 20000.0


# the tiny-configuration test settings of every spreading method: one layer, few v* steps, and
# ROME's clamp (tiny random models have small MLP outputs)
SPREAD_TINY: dict[str, Any] = {"layers": (0,), "v_num_grad_steps": 12, "clamp_norm_factor": 4.0}

# MEMIT's templates: "{}" plus prefixes continued from the seed words (`context_seeds`)
memit_context_templates = hparams_context_templates


def memit_update(
    keys: torch.Tensor, resid: torch.Tensor, mom2: torch.Tensor, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return factors (U (d, n), V (m, n)) of Δ = R Kᵀ (λC + K Kᵀ)⁻¹ = U Vᵀ, in float64.

    keys: K (m, n); resid: R (d, n); mom2: C (m, m).
    """
    K = keys.double()  # (m, n)
    A = lam * mom2.double().to(K.device) + K @ K.T  # (m, m)
    V = torch.linalg.solve(A, K)  # (m, n): A symmetric, so R Kᵀ A⁻¹ = R (A⁻¹K)ᵀ
    return resid.double(), V


def compute_targets(
    model: nn.Module,
    tokenizer: Any,
    requests: Sequence[EditRequest],
    hparams: Any,
    context_templates: Sequence[str],
    spec: ArchSpec,
    *,
    extra_losses_for: Callable[[EditRequest], Sequence[LossTerm]] | None = None,
    kl_factor: float | None = None,
    nll_factor: float = 1.0,
) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Return z (n, d) at the block output of the last layer and per-request loss info.

    The requests' optimisations run stacked, `hparams.v_batch_tokens` padded tokens at a
    time (0: one request at a time); each result equals its own optimisation.
    """
    overrides = {} if kl_factor is None else {"kl_factor": kl_factor}
    problems = [
        VStarProblem(
            r.subject,
            r.prompt,
            r.target_new,
            extra_losses=tuple(extra_losses_for(r)) if extra_losses_for is not None else (),
            forms=request_forms(r, hparams),
        )
        for r in requests
    ]
    results = optimize_v_batch(
        model,
        tokenizer,
        problems,
        context_templates,
        **{**vstar_options(hparams), **overrides},
        layer=hparams.layers[-1],
        spec=spec,
        insert_template=spec.layer,
        nll_factor=nll_factor,
        batch_tokens=hparams.v_batch_tokens,
    )
    infos = [
        {"losses": r.losses, "delta": r.delta.cpu(), "delta_norm": float(r.delta.norm())}
        for r in results
    ]
    return torch.stack([r.v_star for r in results]), infos  # (n, d)


def spread_over_layers(
    model: nn.Module,
    tokenizer: Any,
    requests: Sequence[EditRequest],
    zs: torch.Tensor,
    layers: Sequence[int],
    context_templates: Sequence[str],
    spec: ArchSpec,
    solve: Callable[[int, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    hparams: Any = None,
) -> tuple[list, dict[str, Any]]:
    """Edit each layer in turn with `solve(layer, K (m, n), R_k (d, n)) -> (U, V)`;
    keys and outputs are read at the subject tokens `hparams.fact_token` names (default last).

    Returns the applied delta entries (in layer order) and per-layer diagnostics.
    """
    z_name = spec.layer_name(layers[-1])
    entries, diag = [], {"residual_norm": [], "update_norm": []}
    at = subject_position(hparams) if hparams is not None else "last"
    for i, layer in enumerate(layers):
        keys = request_keys(
            model, tokenizer, spec, layer, requests, context_templates, at, hparams
        )  # (n, m)
        cur = bare_outputs(model, tokenizer, z_name, requests, position=at)  # (n, d)
        resid = (zs - cur).T / (len(layers) - i)  # (d, n)
        U, V = solve(layer, keys.T, resid)  # (d, n), (m, n)
        entry = factor_entry(model, spec, layer, U, V)
        apply_entry(model, entry)
        entries.append(entry)
        diag["residual_norm"].append(float((zs - cur).norm(dim=1).mean()))
        diag["update_norm"].append(entry.norm())
    final = bare_outputs(model, tokenizer, z_name, requests, position=at)  # (n, d)
    diag["final_residual_norm"] = float((zs - final).norm(dim=1).mean())
    return entries, diag


def targets_then_spread(
    model: nn.Module,
    tokenizer: Any,
    requests: Sequence[EditRequest],
    hparams: Any,
    context_templates: Sequence[str],
    spec: ArchSpec,
    solve: Callable[[int, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    timings: dict[str, float],
    *,
    extra_losses_for: Callable[[EditRequest], Sequence[LossTerm]] | None = None,
    z_kwargs: dict[str, Any] | None = None,
) -> tuple[torch.Tensor, list[dict[str, Any]], list, dict[str, Any]]:
    """Run MEMIT's two timed steps on a batch: the targets z (n, d) (`v_star`), then the
    update spread over `hparams.layers` with `solve` (`solve`).

    Returns z, the per-request target info, the applied entries and the spread's diagnostics.
    """
    with timed(timings, "v_star"):
        zs, z_infos = compute_targets(
            model,
            tokenizer,
            requests,
            hparams,
            context_templates,
            spec,
            extra_losses_for=extra_losses_for,
            **(z_kwargs or {}),
        )  # (n, d)
    with timed(timings, "solve"):
        entries, diag = spread_over_layers(
            model, tokenizer, requests, zs, tuple(hparams.layers), context_templates, spec, solve,
            hparams,
        )  # fmt: skip
    return zs, z_infos, entries, diag


def apply_memit(
    model: nn.Module,
    tokenizer: Any,
    requests: Sequence[EditRequest],
    hparams: MemitHyperParams,
    second_moment: StatsSource | None,
    *,
    context_templates: Sequence[str] | None = None,
    spec: ArchSpec | None = None,
    model_key: str | None = None,
    extra_losses_for: Callable[[EditRequest], Sequence[LossTerm]] | None = None,
    z_kwargs: dict[str, Any] | None = None,
    method_name: str = "memit",
) -> tuple[Delta, dict[str, Any]]:
    """Edit `model` in place for a batch of requests; return one `Delta` and an info dict."""
    if not requests:
        raise EditorError("MEMIT needs at least one request")
    layers = tuple(hparams.layers)
    spec = checked_spec(model, layers, spec)
    timings: dict[str, float] = {}
    context_templates = templates_or_default(
        model, tokenizer, hparams, context_templates, model_key, timings
    )

    def solve(layer: int, K: torch.Tensor, R: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mom2 = moment_for(second_moment, layer).mom2  # (m, m)
        check_width(mom2.shape[0], K.shape[0])
        return memit_update(K, R, mom2, hparams.mom2_update_weight)

    zs, z_infos, entries, diag = targets_then_spread(
        model, tokenizer, requests, hparams, context_templates, spec, solve, timings,
        extra_losses_for=extra_losses_for, z_kwargs=z_kwargs,
    )  # fmt: skip
    delta = batch_delta(
        method_name, entries, requests, hparams, timings, {"layers": list(layers)}, **diag
    )
    info = {"timings": timings, "z": zs.cpu(), "targets": z_infos, **diag}
    return delta, info


def _memit_batch(call: EditCall, requests: Sequence[EditRequest]) -> tuple[Delta, dict[str, Any]]:
    """Apply MEMIT to the batch with the call's resources."""
    return apply_memit(
        call.model, call.tokenizer, requests, call.hparams, call.second_moment,
        context_templates=call.context_templates, spec=call.spec, model_key=call.model_key,
    )  # fmt: skip


apply_memit_to_model = whole_batch(
    _memit_batch, """Registry entry: edit all requests as one batch (one delta)."""
)


# Default rows per family (`editor.methods.defaults`). Dev check of the knowledge row
# (2026-11-21, `bench/editing_dev.py`, 40 EVOKE edits of `small` outside the quality bench;
# efficacy / paraphrase / neighbourhood): 97.5 / 73.5 / 96.8 (74 v* steps on average);
# v_loss_stop 0.01: 97.5 / 73.5 / 96.5 (every edit ran all 100 steps; the KL term keeps the
# total above 0.01, final NLL median 0.034 → 0.021); λ = 10: 97.5 / 74.5 / 96.5. None moved
# paraphrase by more than 2 of 200 probes, so the values stay (docs/results/editing-dev.md).
_MEMIT = "MEMIT release (Meng et al., 2023; kmeng01/memit) hparams/MEMIT/"
_EASY = "EasyEdit (zjunlp/EasyEdit) hparams/MEMIT/"
_XL = Row((13, 14, 15, 16, 17), 48, source=_MEMIT + "gpt2-xl.json")
_GPTJ = Row(
    (3, 4, 5, 6, 7, 8),
    28,
    {"v_num_grad_steps": 25, "mom2_update_weight": 15000},
    source=_MEMIT + "EleutherAI_gpt-j-6B.json",
)
_NEOX = Row(
    (3, 4, 5, 6, 7, 8),
    44,
    {"mom2_update_weight": 15000},
    source="no NeoX release: the GPT-J release's layers and λ, unscaled",
)
# Llama 3 8B as the AlphaEdit release runs MEMIT; EasyEdit's Llama 2, Mistral and Qwen2 files
# use a larger v* step, a lighter decay and ROME's clamp.
_LLAMA3 = {"v_num_grad_steps": 25, "v_lr": 0.1, "mom2_update_weight": 15000}
_LLAMA3_SOURCE = "AlphaEdit release (jianghoucheng/AlphaEdit) hparams/MEMIT/Llama3-8B.json"
_EASY_7B = {
    "v_num_grad_steps": 25,
    "v_lr": 0.5,
    "v_weight_decay": 1e-3,
    "clamp_norm_factor": 4.0,
    "mom2_update_weight": 15000,
}
DEFAULTS = {
    "gpt2": _XL,
    "gpt2-xl": _XL,
    "gptj": _GPTJ,
    "gpt-j-6b": _GPTJ,
    "gpt_neox": _NEOX,
    "gpt-neox-20b": _NEOX,
    **llama_like(Row((4, 5, 6, 7, 8), 32, _LLAMA3, source=_LLAMA3_SOURCE + ", scaled")),
    "llama-3-8b": Row((4, 5, 6, 7, 8), 32, _LLAMA3, source=_LLAMA3_SOURCE),
    "llama-2-7b": Row((4, 5, 6, 7, 8), 32, _EASY_7B, source=_EASY + "llama-7b.yaml (Llama-2-7b)"),
    "mistral-7b": Row((4, 5, 6, 7, 8), 32, _EASY_7B, source=_EASY + "mistral-7b.yaml"),
    "qwen2-7b": Row((4, 5, 6, 7, 8), 28, _EASY_7B, source=_EASY + "qwen2-7b.yaml"),
    KNOWLEDGE: Row((0, 1), None, {**KNOWLEDGE_Z, **KNOWLEDGE_FORMS, "mom2_update_weight": 50.0},
                   source="kgedit: EVOKE edits of the small knowledge model"),
}  # fmt: skip

METHOD = register(
    EditMethod(
        name="memit",
        subject_positions=SUBJECT_POSITIONS,
        tune={"mom2_update_weight": (50.0, 5000.0, 20000.0)},  # λ: knowledge row, ×100, released
        hparams_cls=MemitHyperParams,
        apply=apply_memit_to_model,
        needs_second_moment=True,
        description="Mass editing spread over several MLP layers (Meng et al., 2023)",
        batched=True,
        context=memit_context_templates,
        defaults=DEFAULTS,
        tiny={**SPREAD_TINY, "mom2_update_weight": 1.0},
        easyedit="MEMIT",
    )
)
