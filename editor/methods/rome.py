"""ROME: rank-one model editing (Meng et al., 2022), as in the released code (docs/methods/rome.md).

1. key: k̄ = mean over context templates of the down-projection input at the subject's last
   token; u = C⁻¹k̄ / ‖C⁻¹k̄‖ (u = k̄/‖k̄‖ without mom2 adjustment);
2. value: v* = m0 + δ from the v*/δ optimisation on the MLP output of the edit layer;
3. insert: on the bare prompt, k0 = input and w0 = output of the down-projection at the
   subject token; ρ = (v* − w0) / (uᵀk0); W ← W + ρuᵀ (math orientation, bias untouched),
   so the edited module maps k0 to v*.
Several requests are applied one after another, each on the already-edited model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from contracts.types import EditRequest
from editor.arch import ArchSpec, edited_weight, edited_weight_name, get_module
from editor.delta import Delta
from editor.errors import EditorError
from editor.hooks import capture_input, capture_output
from editor.methods.common import (
    StatsSource,
    check_width,
    checked_spec,
    hparams_context_templates,
    moment_for,
    request_vstar,
    templates_or_default,
    timed,
)
from editor.methods.defaults import KNOWLEDGE, KNOWLEDGE_STEPS, Row, llama_like
from editor.methods.entries import EditCall, request_by_request
from editor.methods.registry import EditMethod, register
from editor.tokens import encode_prompt_targets, fill, subject_last_token_index
from editor.vstar import (
    ESSENCE_PROMPTS,
    LossTerm,
    VStarResult,
    rewriting_templates,
)


@dataclass(frozen=True)
class LayerVStarHyperParams:
    """The edit layer and v* settings of every method that optimises v* at one layer as ROME
    does; defaults are the released GPT-2 XL / GPT-J JSON values."""

    layer: int
    v_num_grad_steps: int = 20
    v_lr: float = 0.5
    v_weight_decay: float = 0.5
    clamp_norm_factor: float = 4.0
    kl_factor: float = 0.0625
    v_loss_stop: float = 0.05
    v_cache: bool = True  # exact savings of the v* loop (editor.vstar_forward); False: plain


@dataclass(frozen=True)
class RomeHyperParams(LayerVStarHyperParams):
    """ROME hyper-parameters; defaults are the released GPT-2 XL / GPT-J JSON values."""

    mom2_adjustment: bool = True
    context_template_length_params: tuple[tuple[int, int], ...] = ((5, 10), (10, 10))
    context_seed: int = 0
    essence_prompts: tuple[str, ...] = ESSENCE_PROMPTS
    fact_token: str = "subject_last"
    mom2_dataset: str = "wikipedia"
    mom2_n_samples: int = 100_000
    mom2_dtype: str = "float32"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RomeHyperParams:
        """Build from a JSON-like dict (lists become tuples)."""
        data = dict(data)
        if "context_template_length_params" in data:
            data["context_template_length_params"] = tuple(
                (int(a), int(b)) for a, b in data["context_template_length_params"]
            )
        if "essence_prompts" in data:
            data["essence_prompts"] = tuple(data["essence_prompts"])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


PRESETS: dict[str, RomeHyperParams] = {
    "gpt2-xl": RomeHyperParams(layer=17),
    "gpt2-large": RomeHyperParams(layer=12),
    "gpt2-medium": RomeHyperParams(layer=8, clamp_norm_factor=3.0),
    "gpt-j-6b": RomeHyperParams(layer=5),
    "gpt-neox-20b": RomeHyperParams(layer=15),
    "llama-7b-8b": RomeHyperParams(
        layer=5, v_num_grad_steps=25, v_weight_decay=1e-3, mom2_adjustment=False
    ),
}


@torch.no_grad()
def subject_keys(
    model: nn.Module,
    tokenizer: Any,
    spec: ArchSpec,
    layer: int,
    templates: Sequence[str],
    subject: str,
) -> torch.Tensor:
    """Return the down-projection inputs (n, m) at the subject's last token of each template."""
    device = next(model.parameters()).device
    texts = [fill(t, subject)[0] for t in templates]
    batch = encode_prompt_targets(tokenizer, texts, [None] * len(texts)).to(device)
    cols = [subject_last_token_index(tokenizer, t, subject) for t in templates]
    module = get_module(model, spec.down_proj_name(layer))
    with capture_input(module, list(range(len(texts))), cols, stop=True) as cap:
        model(**batch.model_inputs(), use_cache=False)
    if cap.value is None:
        raise EditorError("edited module did not run")
    return cap.value.float()  # (n, m)


@torch.no_grad()
def key_and_output(
    model: nn.Module, tokenizer: Any, spec: ArchSpec, layer: int, prompt: str, subject: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (k0 (m,), w0 (d,)): input and output of the down-projection on the bare prompt."""
    device = next(model.parameters()).device
    text = fill(prompt, subject)[0]
    batch = encode_prompt_targets(tokenizer, [text], [None]).to(device)
    col = subject_last_token_index(tokenizer, prompt, subject)
    module = get_module(model, spec.down_proj_name(layer))
    with (
        capture_input(module, [0], [col]) as cap_in,
        capture_output(module, [0], [col], stop=True) as cap_out,
    ):
        model(**batch.model_inputs(), use_cache=False)
    if cap_in.value is None or cap_out.value is None:
        raise EditorError("edited module did not run")
    return cap_in.value[0].float(), cap_out.value[0].float()  # (m,), (d,)


# The context templates ROME averages over, as `hparams` describe them (default seed words)
rome_context_templates = hparams_context_templates


def apply_rome(
    model: nn.Module,
    tokenizer: Any,
    request: EditRequest,
    hparams: RomeHyperParams,
    second_moment: StatsSource | None,
    *,
    context_templates: Sequence[str] | None = None,
    spec: ArchSpec | None = None,
    model_key: str | None = None,
    extra_losses: Sequence[LossTerm] = (),
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    vstar_kwargs: dict[str, Any] | None = None,
    finish_v: Callable[[VStarResult], torch.Tensor] | None = None,
    method_name: str = "rome",
) -> tuple[Delta, dict[str, Any]]:
    """Edit `model` in place for one request; return the applied `Delta` and an info dict.

    `vstar_kwargs` override arguments of the v* optimisation (e.g. `kl_factor`,
    `nll_factor`, `delta_param`), for methods built on ROME (GLAME, LTI, DiKE);
    `finish_v(result)` may pick v* (d,) from the optimisation's outcome (GLAME).

    Info: `timings` (seconds for context, key, v_star, solve), the loss history, and the
    vectors u, k_bar, k0, w0, m0, v_star (CPU float32) used for the rank-one update.
    """
    if hparams.fact_token != "subject_last":
        raise EditorError(f"fact_token {hparams.fact_token!r} is not supported")
    if hparams.mom2_adjustment and second_moment is None:
        raise EditorError("ROME with mom2_adjustment needs a second moment (editor.stats)")
    layer = hparams.layer
    spec = checked_spec(model, (layer,), spec)
    timings: dict[str, float] = {}
    context_templates = templates_or_default(
        model, tokenizer, hparams, context_templates, model_key, timings
    )

    with timed(timings, "key"):
        templates = rewriting_templates(context_templates, request.prompt)
        keys = subject_keys(model, tokenizer, spec, layer, templates, request.subject)  # (n, m)
        k_bar = keys.mean(0)  # (m,)
        if hparams.mom2_adjustment:
            sm = moment_for(second_moment, layer)
            check_width(sm.dim, k_bar.shape[0])
            u = sm.solve(k_bar)  # (m,)
        else:
            u = k_bar.clone()  # (m,)
        u = u / u.norm()  # (m,)

    with timed(timings, "v_star"):
        options: dict[str, Any] = {
            "layer": layer,
            "spec": spec,
            "extra_losses": extra_losses,
            "on_step": on_step,
            **(vstar_kwargs or {}),
        }
        result = request_vstar(model, tokenizer, request, context_templates, hparams, **options)
        v_star = result.v_star if finish_v is None else finish_v(result)  # (d,)

    with timed(timings, "solve"):
        k0, w0 = key_and_output(model, tokenizer, spec, layer, request.prompt, request.subject)
        denom = torch.dot(u, k0)  # ()
        if float(denom.abs()) < 1e-12:
            raise EditorError("uᵀk0 is zero; the key direction cannot reach the bare-prompt key")
        rho = (v_star - w0) / denom  # (d,)
        weight = edited_weight(model, spec, layer)
        delta = Delta.low_rank(
            method_name,
            edited_weight_name(spec, layer),
            tuple(weight.shape),
            rho.unsqueeze(1),  # (d, 1)
            u.unsqueeze(1),  # (m, 1)
            transpose=spec.conv1d,
            request_ids=[request.request_id] if request.request_id else [],
            meta={
                "layer": layer,
                "subject": request.subject,
                "prompt": request.prompt,
                "target_new": request.target_new,
                "hparams": {k: v for k, v in hparams.to_dict().items() if k != "extra"},
            },
        )
        delta.apply(model)

    delta.meta["update_norm"] = float(rho.norm() * u.norm())
    delta.meta["timings"] = dict(timings)
    info = {
        "timings": timings,
        "losses": result.losses,
        "layer": layer,
        "u": u.cpu(),
        "k_bar": k_bar.cpu(),
        "k0": k0.cpu(),
        "w0": w0.cpu(),
        "m0": result.m0.cpu(),
        "v_star": v_star.cpu(),
        "delta_norm": float(result.delta.norm()),
        "update_norm": delta.meta["update_norm"],
    }
    return delta, info


def _rome_one(call: EditCall, request: EditRequest) -> tuple[Delta, dict[str, Any]]:
    """Apply ROME for one request with the call's resources."""
    return apply_rome(
        call.model, call.tokenizer, request, call.hparams, call.second_moment,
        context_templates=call.context_templates, spec=call.spec,
    )  # fmt: skip


apply_rome_to_model = request_by_request(
    _rome_one,
    """Apply requests one after another; templates come from the model before the first edit.

    `on_request(done, total)` is called after each request (for progress reporting).
    """,
)


def with_layer(hparams: RomeHyperParams, layer: int) -> RomeHyperParams:
    """Return a copy of `hparams` editing another layer."""
    return replace(hparams, layer=layer)


# Default rows per family (`editor.methods.defaults`). Dev check of the knowledge row
# (2026-11-21, `bench/editing_dev.py`: the last 40 known EVOKE edits of the `small` model,
# none of them in `bench/editing_quality.py`'s edits; efficacy / paraphrase / neighbourhood,
# CounterFact scoring): 97.5 / 79.5 / 97.3 (81 v* steps on average); with 31 context
# templates ((5,10),(10,10),(20,10)): 97.5 / 78.5 / 97.1, so the templates stay.
DEFAULTS = {
    "gpt2": Row((17,), 48),
    "gptj": Row((5,), 28),
    "gpt_neox": Row((15,), 44),
    **llama_like(Row((5,), 32, {"v_num_grad_steps": 25, "v_weight_decay": 1e-3})),
    KNOWLEDGE: Row((0,), None, KNOWLEDGE_STEPS),
}

METHOD = register(
    EditMethod(
        name="rome",
        hparams_cls=RomeHyperParams,
        apply=apply_rome_to_model,
        needs_second_moment=True,
        description="Rank-one model editing of one MLP down-projection (Meng et al., 2022)",
        context=rome_context_templates,
        defaults=DEFAULTS,
        tiny={"layer": 0, "v_num_grad_steps": 12},
    )
)
