"""ROME: rank-one model editing (Meng et al., 2022), as in the released code (docs/methods/rome.md).

1. key: k̄ = mean over context templates of the down-projection input at the subject's last
   token (`fact_token`: or its first token, or the mean over all its tokens, as a calibration
   chooses; the v* and the insert below read the same tokens);
   u = C⁻¹k̄ / ‖C⁻¹k̄‖ (u = k̄/‖k̄‖ without mom2 adjustment);
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
    request_forms,
    request_vstar,
    templates_or_default,
    timed,
)
from editor.methods.defaults import KNOWLEDGE, KNOWLEDGE_FORMS, KNOWLEDGE_STEPS, Row, llama_like
from editor.methods.entries import EditCall, request_by_request
from editor.methods.registry import EditMethod, register
from editor.tokens import (
    SUBJECT_POSITIONS,
    encode_prompt_targets,
    fact_token_position,
    fill,
    subject_token_indices,
)
from editor.vstar import ESSENCE_PROMPTS, LossTerm, VStarResult, rewriting_templates


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
    forms: int = 0  # the form option: how many of the request's forms v* and k̄ average over
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


@torch.no_grad()
def subject_keys(
    model: nn.Module,
    tokenizer: Any,
    spec: ArchSpec,
    layer: int,
    templates: Sequence[str],
    subject: str,
    position: str = "last",
) -> torch.Tensor:
    """Return the down-projection inputs (n, m) at the subject token(s) of each template:
    one row per template for "first"/"last", one per (template, subject token) for "all"."""
    device = next(model.parameters()).device
    texts = [fill(t, subject)[0] for t in templates]
    batch = encode_prompt_targets(tokenizer, texts, [None] * len(texts)).to(device)
    at = [subject_token_indices(tokenizer, t, subject, position) for t in templates]
    rows = [i for i, cols in enumerate(at) for _ in cols]
    cols = [c for cs in at for c in cs]
    module = get_module(model, spec.down_proj_name(layer))
    with capture_input(module, rows, cols, stop=True) as cap:
        model(**batch.model_inputs(), use_cache=False)
    if cap.value is None:
        raise EditorError("edited module did not run")
    return cap.value.float()  # (n, m)


@torch.no_grad()
def key_and_output(
    model: nn.Module,
    tokenizer: Any,
    spec: ArchSpec,
    layer: int,
    prompt: str,
    subject: str,
    position: str = "last",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (k0 (m,), w0 (d,)): input and output of the down-projection on the bare prompt
    at the subject token(s) (means over the subject's tokens for "all")."""
    device = next(model.parameters()).device
    text = fill(prompt, subject)[0]
    batch = encode_prompt_targets(tokenizer, [text], [None]).to(device)
    cols = subject_token_indices(tokenizer, prompt, subject, position)
    rows = [0] * len(cols)
    module = get_module(model, spec.down_proj_name(layer))
    with (
        capture_input(module, rows, cols) as cap_in,
        capture_output(module, rows, cols, stop=True) as cap_out,
    ):
        model(**batch.model_inputs(), use_cache=False)
    if cap_in.value is None or cap_out.value is None:
        raise EditorError("edited module did not run")
    return cap_in.value.float().mean(0), cap_out.value.float().mean(0)  # (m,), (d,)


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
    position = fact_token_position(hparams.fact_token)
    if hparams.mom2_adjustment and second_moment is None:
        raise EditorError("ROME with mom2_adjustment needs a second moment (editor.stats)")
    layer = hparams.layer
    spec = checked_spec(model, (layer,), spec)
    timings: dict[str, float] = {}
    context_templates = templates_or_default(
        model, tokenizer, hparams, context_templates, model_key, timings
    )

    with timed(timings, "key"):
        templates = rewriting_templates(
            context_templates, request.prompt, request_forms(request, hparams)
        )
        keys = subject_keys(
            model, tokenizer, spec, layer, templates, request.subject, position
        )  # (n, m)
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
            "subject_position": position,
            **(vstar_kwargs or {}),
        }
        result = request_vstar(model, tokenizer, request, context_templates, hparams, **options)
        v_star = result.v_star if finish_v is None else finish_v(result)  # (d,)

    with timed(timings, "solve"):
        k0, w0 = key_and_output(
            model, tokenizer, spec, layer, request.prompt, request.subject, position
        )
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


# The v* settings a calibration tries on a model's own dev facts (docs/calibration.md): the
# knowledge rows' 100 steps and clamp 1.5 against the released 25 steps and clamp 4, each at
# the released learning rate and a fifth of it.
CALIBRATION_GRID = {
    "v_num_grad_steps": (25, 100),
    "v_lr": (0.1, 0.5),
    "clamp_norm_factor": (1.5, 4.0),
}

# Default rows per family (`editor.methods.defaults`). Dev check of the knowledge row
# (2026-11-21, `bench/editing_dev.py`: the last 40 known EVOKE edits of the `small` model,
# none of them in `bench/editing_quality.py`'s edits; efficacy / paraphrase / neighbourhood,
# CounterFact scoring): 97.5 / 79.5 / 97.3 (81 v* steps on average); with 31 context
# templates ((5,10),(10,10),(20,10)): 97.5 / 78.5 / 97.1, so the templates stay.
_ROME = "ROME release (Meng et al., 2022; kmeng01/rome) hparams/ROME/"
_EASY = "EasyEdit (zjunlp/EasyEdit) hparams/ROME/"
_XL = Row((17,), 48, source=_ROME + "gpt2-xl.json")
_GPTJ = Row((5,), 28, source=_ROME + "EleutherAI_gpt-j-6B.json")
_NEOX = Row(
    (15,), 44, source="MEMIT release (kmeng01/memit) hparams/ROME/EleutherAI_gpt-neox-20b.json"
)
# EasyEdit's Llama, Mistral and Qwen2 files run ROME without the second moment (u = k̄).
_LLAMA = {"v_num_grad_steps": 25, "v_weight_decay": 1e-3, "mom2_adjustment": False}
DEFAULTS = {
    "gpt2": _XL,
    "gpt2-xl": _XL,
    "gpt2-large": Row((12,), 36, source=_ROME + "gpt2-large.json"),
    "gpt2-medium": Row((8,), 24, {"clamp_norm_factor": 3.0}, source=_ROME + "gpt2-medium.json"),
    "gptj": _GPTJ,
    "gpt-j-6b": _GPTJ,
    "gpt_neox": _NEOX,
    "gpt-neox-20b": _NEOX,
    # the family fallback keeps the second moment: a model of unknown shape gets ROME proper
    **llama_like(
        Row((5,), 32, {"v_num_grad_steps": 25, "v_weight_decay": 1e-3},
            source=_EASY + "llama-7b.yaml, with the mom2 adjustment kept")
    ),
    "llama-2-7b": Row((5,), 32, _LLAMA, source=_EASY + "llama-7b.yaml (Llama-2-7b)"),
    "llama-2-13b": Row((5,), 40, _LLAMA, source=_EASY + "llama-7b.yaml (Llama-2-7b), unscaled"),
    "llama-3-8b": Row((5,), 32, _LLAMA, source=_EASY + "llama3-8b.yaml"),
    "mistral-7b": Row((5,), 32, _LLAMA, source=_EASY + "mistral-7b.yaml"),
    "qwen2-7b": Row((5,), 28, _LLAMA, source=_EASY + "qwen2-7b.yaml"),
    KNOWLEDGE: Row((0,), None, {**KNOWLEDGE_STEPS, **KNOWLEDGE_FORMS},
                   source="kgedit: bench/editing_dev.py on the small knowledge model"),
}  # fmt: skip

METHOD = register(
    EditMethod(
        name="rome",
        subject_positions=SUBJECT_POSITIONS,
        tune=CALIBRATION_GRID,
        hparams_cls=RomeHyperParams,
        apply=apply_rome_to_model,
        needs_second_moment=True,
        description="Rank-one model editing of one MLP down-projection (Meng et al., 2022)",
        context=rome_context_templates,
        defaults=DEFAULTS,
        tiny={"layer": 0, "v_num_grad_steps": 12},
        easyedit="ROME",
    )
)
