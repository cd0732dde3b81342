"""DiKE: disentangling knowledge representations for editing (Zhang et al., ICLR 2026),
edit step (docs/methods/dike.md); the disentangler is `editor.methods.dike_krd`.

1. With the disentangler frozen, the target is found by perturbing only the related part:
   h_s* = Rec(z_r + δ, z_u), i.e. the subject state moves by W₅δ (Rec is linear), added to
   the MLP output of the edit layer at the subject token; δ (latent) is optimised with
   ROME's loss (NLL over prefixed prompts, KL on "{} is a", decay on ‖W₅δ‖/‖m₀‖², clamp
   ‖W₅δ‖ ≤ c‖m₀‖). So v* = m₀ + W₅δ is the target MLP output (h_s* minus the residual
   before the MLP).
2. Keys k* averaged as in MEMIT (bare prompt and N seeded prefixes); residual R = V* − W K₀
   (the layer's output on the bare prompts).
3. Closed form with the fine-grained invariance of the unrelated branch,
   Δ = (I + γ W₃ᵀW₃)⁻¹ Δ_MEMIT,  Δ_MEMIT = R Kᵀ (λC + K Kᵀ)⁻¹,
   the stationary point of ‖ΔK − R‖² + λ‖ΔK₀‖² + γ‖W₃ΔK‖² + γλ‖W₃ΔK₀‖² (with λC = K₀K₀ᵀ):
   (I + γA) Δ (KKᵀ + λC) = R Kᵀ, A = W₃ᵀW₃ (d×d, output side).

Decisions (the paper leaves these open): the W₃ penalty covers both the new and the preserved
keys (only then does the closed form factorise); γ = `invariance_weight` = 1 is
the paper's unweighted sum; ROME's KL and decay terms and MEMIT's prefix averaging are kept;
K₀K₀ᵀ is λ·E[kkᵀ] as in MEMIT. Requests of one call form one batch (one delta).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from contracts.types import EditRequest, FactText
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
    moment_for,
    request_keys,
    request_vstar,
    templates_or_default,
    timed,
)
from editor.methods.defaults import KNOWLEDGE, KNOWLEDGE_STEPS, Row, llama_like, sourced
from editor.methods.dike_krd import Disentangler, KrdConfig, load_or_train_krd
from editor.methods.entries import OnRequest, one_batch
from editor.methods.memit import MEMIT_SEEDS, memit_context_templates
from editor.methods.registry import EditMethod, ResourceContext, register
from editor.methods.rome import LayerVStarHyperParams
from editor.vstar import ESSENCE_PROMPTS


@dataclass(frozen=True)
class DikeHyperParams(LayerVStarHyperParams, HParams):
    """DiKE hyper-parameters: ROME's v* settings, MEMIT's λ and templates, the KRD's."""

    mom2_update_weight: float = 20000.0
    invariance_weight: float = 1.0
    context_template_length_params: tuple[tuple[int, int], ...] = ((10, 5),)
    context_seeds: tuple[str, ...] = MEMIT_SEEDS
    context_seed: int = 0
    essence_prompts: tuple[str, ...] = ESSENCE_PROMPTS
    mom2_n_samples: int = 100_000
    krd_steps: int = 300
    krd_batch_size: int = 32
    krd_lr: float = 1e-3
    krd_tau: float = 0.1
    krd_alpha: float = 1.0
    krd_beta: float = 1.0

    def krd_config(self) -> KrdConfig:
        """Return the disentangler's training settings: each `krd_X` field as `KrdConfig.X`."""
        prefix = "krd_"
        return KrdConfig(
            **{
                f.name.removeprefix(prefix): getattr(self, f.name)
                for f in fields(self)
                if f.name.startswith(prefix)
            }
        )


class LatentDelta:
    """δ in the disentangler's related latent space; the subject state moves by W₅δ."""

    def __init__(self, m0: torch.Tensor, W5: torch.Tensor) -> None:
        self.W5 = W5.detach().to(m0.device, m0.dtype)  # (d, p)
        self.z = torch.zeros(self.W5.shape[1], device=m0.device, requires_grad=True)  # (p,)

    def parameters(self) -> Sequence[torch.Tensor]:
        """Return [δ_latent]."""
        return [self.z]

    def __call__(self) -> torch.Tensor:
        """Return W₅δ (d,)."""
        return self.W5 @ self.z  # (d,)

    def optimizer(self, lr: float) -> torch.optim.Optimizer:
        """Return Adam on the latent δ."""
        return torch.optim.Adam([self.z], lr=lr)

    @torch.no_grad()
    def project(self, max_norm: torch.Tensor) -> None:
        """Rescale δ so that ‖W₅δ‖ ≤ max_norm."""
        norm = (self.W5 @ self.z).norm()
        if norm > max_norm:
            self.z.mul_(max_norm / norm)


def dike_update(
    keys: torch.Tensor,
    resid: torch.Tensor,
    mom2: torch.Tensor,
    lam: float,
    W3: torch.Tensor,
    gamma: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return factors (U (d, n), V (m, n)) of Δ = (I + γW₃ᵀW₃)⁻¹ R Kᵀ (λC + KKᵀ)⁻¹ = U Vᵀ.

    keys: K (m, n); resid: R (d, n); mom2: C (m, m); W3: (p, d).
    """
    K = keys.double()  # (m, n)
    V = torch.linalg.solve(lam * mom2.double().to(K.device) + K @ K.T, K)  # (m, n)
    W3 = W3.double().to(K.device)  # (p, d)
    A = torch.eye(W3.shape[1], dtype=torch.float64, device=K.device) + gamma * W3.T @ W3
    U = torch.linalg.solve(A, resid.double())  # (d, n)
    return U, V


def apply_dike(
    model: nn.Module,
    tokenizer: Any,
    requests: Sequence[EditRequest],
    hparams: DikeHyperParams,
    second_moment: StatsSource | None,
    krd: Disentangler,
    *,
    context_templates: Sequence[str] | None = None,
    spec: ArchSpec | None = None,
    model_key: str | None = None,
) -> tuple[Delta, dict[str, Any]]:
    """Edit `model` in place for a batch with a trained disentangler; return the `Delta`."""
    if not requests:
        raise EditorError("DiKE needs at least one request")
    layer = hparams.layer
    spec = checked_spec(model, (layer,), spec)
    if krd.layer != layer:
        raise EditorError(f"disentangler was trained at layer {krd.layer}, edit layer {layer}")
    timings: dict[str, float] = {}
    context_templates = templates_or_default(
        model, tokenizer, hparams, context_templates, model_key, timings
    )

    with timed(timings, "v_star"):
        v_stars, losses = [], []
        for request in requests:
            result = request_vstar(
                model,
                tokenizer,
                request,
                context_templates,
                hparams,
                layer=layer,
                spec=spec,
                delta_param=lambda m0: LatentDelta(m0, krd.W5.weight),
            )
            v_stars.append(result.v_star)
            losses.append(result.losses)
        V_star = torch.stack(v_stars)  # (n, d)

    with timed(timings, "solve"):
        K = request_keys(model, tokenizer, spec, layer, requests, context_templates)  # (n, m)
        W0 = bare_outputs(model, tokenizer, spec.down_proj_name(layer), requests)  # (n, d)
        mom2 = moment_for(second_moment, layer).mom2  # (m, m)
        check_width(mom2.shape[0], K.shape[1])
        U, V = dike_update(
            K.T,
            (V_star - W0).T,
            mom2,
            hparams.mom2_update_weight,
            krd.W3.weight,
            hparams.invariance_weight,
        )
        entry = factor_entry(model, spec, layer, U, V)
        apply_entry(model, entry)
    delta = batch_delta("dike", [entry], requests, hparams, timings, {"layer": layer})
    info = {"timings": timings, "v_star": V_star.cpu(), "losses": losses, "U": U, "V": V, "K": K}
    return delta, info


def apply_dike_to_model(
    model: nn.Module,
    tokenizer: Any,
    requests: Sequence[EditRequest],
    hparams: DikeHyperParams,
    *,
    second_moment: StatsSource | None = None,
    context_templates: Sequence[str] | None = None,
    model_key: str | None = None,
    spec: ArchSpec | None = None,
    krd: Disentangler | None = None,
    facts: Sequence[FactText] | None = None,
    cache_dir: str | Path | None = None,
    on_request: OnRequest | None = None,
) -> tuple[list[Delta], list[dict[str, Any]]]:
    """Registry entry: one batch; the disentangler is given, or trained (cached) on `facts`."""
    if krd is None:
        if not facts:
            raise EditorError("DiKE needs a trained disentangler (krd) or facts to train one")
        krd = load_or_train_krd(
            model,
            tokenizer,
            facts,
            hparams.layer,
            model_key or "unkeyed",
            hparams.krd_config(),
            cache_dir=cache_dir,
        )
    edited = apply_dike(
        model,
        tokenizer,
        requests,
        hparams,
        second_moment,
        krd,
        context_templates=context_templates,
        spec=spec,
        model_key=model_key,
    )
    return one_batch(edited, len(requests), on_request)


def dike_resources(ctx: ResourceContext) -> dict[str, Any]:
    """Return DiKE's resources: the graph's facts to train the disentangler on, and the
    directory its trained disentanglers are cached in."""
    return {"facts": list(ctx.facts), "cache_dir": ctx.cache_dir}


# Default rows per family (`editor.methods.defaults`): DiKE is single-layer, ROME's layer
# with MEMIT's λ.
DEFAULTS = sourced(
    {
        "gpt2": Row((17,), 48),
        "gptj": Row((5,), 28, {"mom2_update_weight": 15000}),
        "gpt_neox": Row((15,), 44, {"mom2_update_weight": 15000}),
        **llama_like(Row((5,), 32, {"mom2_update_weight": 15000, "v_weight_decay": 1e-3})),
        KNOWLEDGE: Row((0,), None, {**KNOWLEDGE_STEPS, "mom2_update_weight": 50.0}),
    },
    "kgedit: the ROME release layer with the MEMIT release λ (docs/methods/dike.md)",
)

METHOD = register(
    EditMethod(
        name="dike",
        hparams_cls=DikeHyperParams,
        apply=apply_dike_to_model,
        needs_second_moment=True,
        description="Edits only the fact-related part of the subject representation and keeps "
        "the unrelated part invariant (Zhang et al., 2026)",
        batched=True,
        context=memit_context_templates,
        defaults=DEFAULTS,
        resources=dike_resources,
        tiny={
            "layer": 0,
            "v_num_grad_steps": 12,
            "mom2_update_weight": 1.0,
            "krd_steps": 3,
            "krd_batch_size": 8,
        },
    )
)
