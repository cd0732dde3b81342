"""ROCR: rank-one concept redirection (Ye, Zhang & Wu, "LLM Unlearning Should Be
Form-Independent"), as the released code runs it in its default "unlearned" mode
(docs/methods/rocr.md).

Training-free. The concept's representation, read while the model reads its name, is
overwritten with a harmless anchor concept's, so every downstream form sees the anchor:

* keys: per edited layer l, the down-projection input at the concept's last token, averaged
  over the task-style contexts ``"<starter> {}. Answer:"`` for the six starters of the
  reference code ("" and "Please answer the question about", ...) (m,);
* value: the residual stream at the output of the last edited block at the last token,
  averaged over the same contexts: z* with the anchor's name in them, z_cur with the
  concept's name (d,);
* update per layer, ascending, on the model as edited so far (AlphaEdit's null-space solve,
  reused from `editor.methods.alphaedit`):
  R_i = (z* − z_cur) / (m − i + 1), Δ_i = [(P_i (K Kᵀ + C_p) + λI)⁻¹ P_i K R_iᵀ]ᵀ, rank one
  per key column. P_i is the projector onto the null space of E[k kᵀ] (eigenvalues < τ), so a
  preserved key k₀ with P k₀ = 0 is mapped exactly as before (Δ k₀ = 0). C_p holds the keys
  of earlier redirections of a sequence.

Every name of the concept (its aliases too) is one key column with the same target z*.

Decisions:
* Value context. The reference reads z* in a chat-rendered
  context and z_cur on the bare prompt "<s>."; the two differ by the context alone, so part of
  R only moves the model from one context to the other. We read both in the same contexts, the
  six key contexts, averaged: the edited model's mean state over the task contexts equals the
  anchor's up to the ridge share λ/(kᵀPk + λ) of the last layer's residual (a test checks
  this with a small λ). Knowledge models have no chat template, so the contexts are plain text.
* λ = 1 and τ = 2e-2 are the released values for HF families; knowledge models edit their
  traced layer and the next, with AlphaEdit's knowledge threshold (`editor.methods.defaults`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from contracts.types import UnlearnRequest
from editor.arch import ArchSpec, get_module
from editor.delta import Delta
from editor.errors import EditorError
from editor.hooks import capture_input, capture_output
from editor.methods.alphaedit import AlphaEditState, alphaedit_update, null_space_projector
from editor.methods.common import (
    HParams,
    StatsSource,
    apply_entry,
    check_width,
    checked_spec,
    factor_entry,
    moment_for,
    own_cache_dir,
    request_ids,
)
from editor.methods.defaults import KNOWLEDGE, KNOWLEDGE_STATS, Row, llama_like, sourced
from editor.methods.entries import OnRequest, one_batch
from editor.methods.registry import EditMethod, register
from editor.tokens import encode_prompt_targets, fill, subject_last_token_index

STARTERS: tuple[str, ...] = (
    "",
    "Please answer the question about",
    "Choose the best answer about",
    "Write the answer about",
    "Tell me about",
    "Write something about",
)


@dataclass(frozen=True)
class RocrHyperParams(HParams):
    """ROCR hyper-parameters; defaults are the released Llama-3-8B-Instruct values."""

    layers: tuple[int, ...]
    nullspace_threshold: float = 2e-2
    l2: float = 1.0
    starters: tuple[str, ...] = STARTERS
    context_suffix: str = ". Answer:"
    mom2_n_samples: int = 100_000


def task_contexts(hparams: RocrHyperParams) -> list[str]:
    """Return the key/value context templates: ``"<starter> {}<suffix>"`` per starter."""
    return [f"{s} {{}}".strip() + hparams.context_suffix for s in hparams.starters]


@torch.no_grad()
def mean_state_at_name(
    model: nn.Module,
    tokenizer: Any,
    module_name: str,
    contexts: Sequence[str],
    names: Sequence[str],
    read_input: bool,
) -> torch.Tensor:
    """Return a module's input (or output) at each name's last token, meaned over contexts.

    Shape (n_names, width), float32.
    """
    texts, cols = [], []
    for name in names:
        for context in contexts:
            texts.append(fill(context, name)[0])
            cols.append(subject_last_token_index(tokenizer, context, name))
    device = next(model.parameters()).device
    batch = encode_prompt_targets(tokenizer, texts, [None] * len(texts)).to(device)
    capture = capture_input if read_input else capture_output
    module = get_module(model, module_name)
    with capture(module, list(range(len(texts))), cols, stop=True) as cap:
        model(**batch.model_inputs(), use_cache=False)
    if cap.value is None:
        raise EditorError(f"module {module_name} did not run")
    states = cap.value.float().reshape(len(names), len(contexts), -1)  # (n, c, width)
    return states.mean(1)  # (n, width)


def _names(request: UnlearnRequest) -> list[str]:
    """Return the concept's name and aliases, without repeats."""
    return list(dict.fromkeys([request.concept, *request.aliases]))


def apply_rocr(
    model: nn.Module,
    tokenizer: Any,
    requests: Sequence[UnlearnRequest],
    hparams: RocrHyperParams,
    second_moment: StatsSource | None,
    *,
    state: AlphaEditState | None = None,
    spec: ArchSpec | None = None,
    cache_dir: str | Path | None = None,
) -> tuple[Delta, dict[str, Any]]:
    """Redirect every request's concept to its anchor in place; return one `Delta` and info."""
    if not requests:
        raise EditorError("ROCR needs at least one request")
    for r in requests:
        if not r.anchor or not r.anchor.strip():
            raise EditorError(f"ROCR needs an anchor concept for {r.concept!r}")
    layers = tuple(hparams.layers)
    spec = checked_spec(model, layers, spec)
    state = state if state is not None else AlphaEditState()
    contexts = task_contexts(hparams)
    t0 = time.perf_counter()
    projectors = {
        layer: null_space_projector(
            moment_for(second_moment, layer), hparams.nullspace_threshold, cache_dir
        )
        for layer in layers
    }  # layer -> (m, m)
    timings = {"projector": time.perf_counter() - t0}
    t0 = time.perf_counter()
    z_name = spec.layer_name(layers[-1])
    names = [n for r in requests for n in _names(r)]
    anchors = [r.anchor for r in requests for _ in _names(r)]
    z_star = mean_state_at_name(model, tokenizer, z_name, contexts, anchors, False)  # (n, d)
    timings["value"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    entries, residual_norms = [], []
    for i, layer in enumerate(layers):
        down = spec.down_proj_name(layer)
        K = mean_state_at_name(model, tokenizer, down, contexts, names, True).T  # (m, n)
        cur = mean_state_at_name(model, tokenizer, z_name, contexts, names, False)  # (n, d)
        R = (z_star - cur).T / (len(layers) - i)  # (d, n)
        P = projectors[layer]  # (m, m)
        check_width(P.shape[0], K.shape[0])
        U, V = alphaedit_update(K, R, P, state.cp(layer, K.shape[0]), hparams.l2)
        entry = factor_entry(model, spec, layer, U, V)
        apply_entry(model, entry)
        entries.append(entry)
        residual_norms.append(float((z_star - cur).norm(dim=1).mean()))
    final = mean_state_at_name(model, tokenizer, z_name, contexts, names, False)  # (n, d)
    new_keys = {
        layer: mean_state_at_name(
            model, tokenizer, spec.down_proj_name(layer), contexts, names, True
        ).T
        for layer in layers
    }  # layer -> (m, n)
    token = state.add(new_keys)
    timings["solve"] = time.perf_counter() - t0
    rel_err = float(((final - z_star).norm(dim=1) / z_star.norm(dim=1).clamp(min=1e-12)).max())
    null_dims = {str(layer): int(torch.trace(P).round()) for layer, P in projectors.items()}
    meta = {
        "layers": list(layers),
        "requests": [
            {"request_id": r.request_id, "concept": r.concept, "anchor": r.anchor} for r in requests
        ],
        "hparams": hparams.to_dict(),
        "timings": dict(timings),
        "alphaedit_batch": token,
        "null_space_dims": null_dims,
        "residual_norm": residual_norms,
        "final_relative_error": rel_err,
    }
    ids = request_ids(requests)
    delta = Delta("rocr", entries, ids, meta)
    info = {
        "timings": timings,
        "null_space_dims": null_dims,
        "residual_norm": residual_norms,
        "final_relative_error": rel_err,
        "update_norm": [e.norm() for e in entries],
    }
    return delta, info


def apply_rocr_to_model(
    model: nn.Module,
    tokenizer: Any,
    requests: Sequence[UnlearnRequest],
    hparams: RocrHyperParams,
    *,
    second_moment: StatsSource | None = None,
    spec: ArchSpec | None = None,
    state: dict[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    on_request: OnRequest | None = None,
) -> tuple[list[Delta], list[dict[str, Any]]]:
    """Registry entry: redirect all requests as one batch; `state` carries earlier keys."""
    own = state.setdefault("rocr", AlphaEditState()) if state is not None else None
    edited = apply_rocr(
        model,
        tokenizer,
        requests,
        hparams,
        second_moment,
        state=own,
        spec=spec,
        cache_dir=cache_dir,
    )
    return one_batch(edited, len(requests), on_request)


# Default rows per family (`editor.methods.defaults`): the released layers 4-6 of 32
# (Llama-3-8B, Mistral-7B), scaled; knowledge models redirect at the traced layer and the
# next, like MEMIT, with AlphaEdit's threshold; their keys are small (kᵀPk ≈ 1e0-1e1), so
# the released λ = 1 left 30 % of the redirect undone on the tiny model; λ = 1e-2 leaves
# 0.5 % (docs/methods/rocr.md).
DEFAULTS = sourced(
    {
        "gpt2": Row((6, 7, 9), 48),
        "gptj": Row((4, 5, 6), 32),
        "gpt_neox": Row((4, 5, 6), 32),
        **llama_like(Row((4, 5, 6), 32)),
        KNOWLEDGE: Row((0, 1), None, {"nullspace_threshold": 5e-2, "l2": 1e-2, **KNOWLEDGE_STATS}),
    },
    "ROCR release layers 4-6 of 32, scaled (docs/methods/rocr.md)",
)


def missing_anchor(request: UnlearnRequest, overrides: Mapping[str, Any]) -> str | None:
    """Return why a request cannot be redirected (it names no anchor), or None."""
    if not request.anchor or not request.anchor.strip():
        return f"needs an anchor: the harmless concept {request.concept!r} is redirected to"
    return None


METHOD = register(
    EditMethod(
        name="rocr",
        hparams_cls=RocrHyperParams,
        apply=apply_rocr_to_model,
        needs_second_moment=True,
        description="Rank-one concept redirection to a harmless anchor, null-space "
        "constrained (Ye et al., 2025)",
        batched=True,
        kind="unlearn",
        defaults=DEFAULTS,
        resources=own_cache_dir,
        stateful=True,
        tiny={"layers": (0,), "nullspace_threshold": 1.0, "l2": 1e-2},
        check=missing_anchor,
    )
)
