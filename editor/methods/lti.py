"""LTI, "Learn to Inference" (Zhang et al., ICLR 2025, EVOKE): a plug-in to the v*/z
optimisation of ROME and MEMIT (docs/methods/lti.md).

The teacher is the unedited model reading the new fact in context, prefix
`"Imagine that {prompt(s)} {o*}\\n"`; the student is the model with δ and no prefix. One
no-grad teacher pass (δ = 0) records, for every row of the optimisation batch:

* final: log-softmax of the logits at each target position of the rewriting prompts, and at
  the last position of the essence prompts (those have no prefix: the teacher there is the
  unedited model, so ROME's KL term is subsumed and `kl_factor` is set to 0);
* mid: the logit lens log-softmax(unembed(final_norm(h^{l_mid}))) at the subject's last token.

Loss = nll_factor·NLL + last_kl_factor·KL(P_student ‖ P_teacher)_final
       + mid_kl_factor·KL(P_student ‖ P_teacher)_mid + the usual δ weight decay,
each KL averaged over the selected positions. Then ROME's or MEMIT's unchanged solve.

Decisions:
* Position fix: the released code indexes the teacher's prefixed sequences
  with the student's positions, off by the prefix length. Here every teacher position is
  located in the teacher's own tokenisation: the subject's last token by its character span
  after the prefix, the target positions from the teacher batch itself.
* `constr_pos` "subject" only (the released ROME-LTI setting).
* `mid_layer` None picks ⌊5n/8⌋ (30 of 48 as GPT-2 XL, 17 of 28 as GPT-J), at least one
  layer above the insertion layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from contracts.types import EditRequest
from editor.arch import ArchSpec, arch_spec, get_module, unembedding
from editor.delta import Delta
from editor.errors import EditorError
from editor.hooks import capture_output
from editor.methods.common import templates_or_default
from editor.methods.defaults import (
    KNOWLEDGE,
    KNOWLEDGE_STEPS,
    KNOWLEDGE_Z,
    Row,
    llama_like,
    sourced,
)
from editor.methods.entries import EditCall, request_by_request, whole_batch
from editor.methods.memit import SPREAD_TINY, MemitHyperParams, apply_memit, memit_context_templates
from editor.methods.registry import EditMethod, register
from editor.methods.rome import RomeHyperParams, apply_rome, rome_context_templates
from editor.tokens import encode_prompt_targets, fill, subject_last_token_index
from editor.vstar import LossContext, rewriting_templates

TEACHER_PREFIX = "Imagine that {fact}\n"


@dataclass(frozen=True)
class LtiFields:
    """The fields LTI adds to its base method; each variant sets its released factors."""

    mid_layer: int | None = None
    nll_factor: float = 0.15
    last_kl_factor: float = 0.0325
    mid_kl_factor: float = 0.0625
    constr_pos: str = "subject"
    teacher_prefix: str = TEACHER_PREFIX


@dataclass(frozen=True)
class LtiRomeHyperParams(LtiFields, RomeHyperParams):
    """ROME-LTI: ROME's fields plus the LTI factors (released GPT-2 XL values)."""

    v_num_grad_steps: int = 30


@dataclass(frozen=True)
class LtiMemitHyperParams(LtiFields, MemitHyperParams):
    """MEMIT-LTI: MEMIT's fields plus the LTI factors (released GPT-2 XL values)."""

    v_num_grad_steps: int = 25
    nll_factor: float = 0.125
    last_kl_factor: float = 0.0425
    mid_kl_factor: float = 0.0525


def resolve_mid_layer(mid_layer: int | None, insert_layer: int, n_layers: int) -> int:
    """Return the logit-lens layer: the given one, else ⌊5n/8⌋; above the insertion layer."""
    mid = (5 * n_layers) // 8 if mid_layer is None else mid_layer
    if mid_layer is None:
        mid = max(mid, insert_layer + 1)
    if not insert_layer < mid < n_layers:
        raise EditorError(f"LTI mid layer {mid} must lie in ({insert_layer}, {n_layers})")
    return mid


def _lens(model: nn.Module, spec: ArchSpec, hidden: torch.Tensor) -> torch.Tensor:
    """Return the logit-lens log-probabilities of hidden states (N, d) -> (N, V)."""
    normed = get_module(model, spec.final_norm)(hidden)  # (N, d)
    return torch.log_softmax(unembedding(model, spec)(normed).float(), dim=-1)  # (N, V)


def _final_positions(batch: Any, n_rewrite: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (rows, cols) of the KL positions: targets of rewrites, last token of essences."""
    rows, cols = [], []
    for b in range(batch.input_ids.shape[0]):
        if b < n_rewrite:
            k = int(batch.target_mask[b].sum())
            rows += [b] * k
            cols += batch.pred_positions[b, :k].tolist()
        else:
            rows.append(b)
            cols.append(int(batch.prompt_lengths[b]) - 1)
    return torch.tensor(rows), torch.tensor(cols)


class LtiLoss:
    """The LTI KL terms for one request, with the teacher computed once at construction."""

    name = "lti"

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        request: EditRequest,
        context_templates: Sequence[str],
        essence_prompts: Sequence[str],
        *,
        mid_layer: int,
        last_kl_factor: float,
        mid_kl_factor: float,
        teacher_prefix: str = TEACHER_PREFIX,
        spec: ArchSpec | None = None,
    ) -> None:
        self.spec = spec or arch_spec(model)
        self.mid_name = self.spec.layer_name(mid_layer)
        self.captures = (self.mid_name,)
        self.last_kl_factor, self.mid_kl_factor = last_kl_factor, mid_kl_factor
        fact = f"{request.rendered()} {request.target_new}"
        self.prefix = teacher_prefix.format(fact=fact)
        r_templates = rewriting_templates(context_templates, request.prompt)
        templates = r_templates + list(essence_prompts)
        self.n_rewrite = len(r_templates)
        prefixes = [self.prefix] * self.n_rewrite + [""] * len(essence_prompts)
        texts = [p + fill(t, request.subject)[0] for p, t in zip(prefixes, templates, strict=True)]
        targets = [request.target_new] * self.n_rewrite + [None] * len(essence_prompts)
        device = next(model.parameters()).device
        batch = encode_prompt_targets(tokenizer, texts, targets).to(device)
        self.teacher_subject = torch.tensor(
            [
                subject_last_token_index(tokenizer, t, request.subject, prefix=p)
                for p, t in zip(prefixes, templates, strict=True)
            ]
        )  # (B,) positions in the teacher's own tokenisation (the offset fix)
        self.teacher_batch = batch
        rows, cols = _final_positions(batch, self.n_rewrite)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                with capture_output(get_module(model, self.mid_name)) as cap:
                    logits = model(**batch.model_inputs(), use_cache=False).logits  # (B, L, V)
                assert cap.value is not None
                final = torch.log_softmax(logits[rows, cols].float(), dim=-1)  # (P, V)
                pos = self.teacher_subject.to(device)  # (B,)
                mid = cap.value[torch.arange(len(texts), device=device), pos]  # (B, d)
                self.teacher_final = final.detach()  # (P, V)
                self.teacher_mid = _lens(model, self.spec, mid).detach()  # (B, V)
        finally:
            model.train(was_training)

    def __call__(self, ctx: LossContext) -> torch.Tensor:
        """Return last_kl·KL_final + mid_kl·KL_mid of the student against the teacher."""
        if ctx.n_rewrite != self.n_rewrite:
            raise EditorError("LTI teacher and student batches differ in their rewriting rows")
        rows, cols = _final_positions(ctx.batch, ctx.n_rewrite)
        student_final = torch.log_softmax(ctx.logits[rows, cols].float(), dim=-1)  # (P, V)
        kl_final = F.kl_div(
            self.teacher_final, student_final, log_target=True, reduction="batchmean"
        )
        hidden = ctx.outputs[self.mid_name]  # (B, L, d)
        mid = hidden[torch.arange(hidden.shape[0], device=hidden.device), ctx.lookup]  # (B, d)
        student_mid = _lens(ctx.model, self.spec, mid)  # (B, V)
        kl_mid = F.kl_div(self.teacher_mid, student_mid, log_target=True, reduction="batchmean")
        return self.last_kl_factor * kl_final + self.mid_kl_factor * kl_mid


def _lti_terms(call: EditCall, request: EditRequest, mid: int) -> list[LtiLoss]:
    """Return the LTI loss term of one request, its teacher read from the unedited model."""
    assert call.context_templates is not None  # resolved before the edits
    return [
        LtiLoss(
            call.model,
            call.tokenizer,
            request,
            call.context_templates,
            call.hparams.essence_prompts,
            mid_layer=mid,
            last_kl_factor=call.hparams.last_kl_factor,
            mid_kl_factor=call.hparams.mid_kl_factor,
            teacher_prefix=call.hparams.teacher_prefix,
            spec=call.spec,
        )
    ]


def _mid_layer(call: EditCall, edit_layer: int) -> int:
    """Check LTI's hparams; return the logit-lens layer for a z at `edit_layer`."""
    hparams = call.hparams
    if hparams.constr_pos != "subject":
        raise EditorError(f"LTI constr_pos {hparams.constr_pos!r} is not supported")
    return resolve_mid_layer(hparams.mid_layer, edit_layer, call.spec.n_layers(call.model.config))


def _lti_rome_one(call: EditCall, request: EditRequest) -> tuple[Delta, dict[str, Any]]:
    """Apply ROME with the LTI terms for one request."""
    mid = _mid_layer(call, call.hparams.layer)
    delta, info = apply_rome(
        call.model,
        call.tokenizer,
        request,
        call.hparams,
        call.second_moment,
        context_templates=call.context_templates,
        spec=call.spec,
        extra_losses=_lti_terms(call, request, mid),
        vstar_kwargs={"kl_factor": 0.0, "nll_factor": call.hparams.nll_factor},
        method_name="lti-rome",
    )
    delta.meta["mid_layer"] = mid
    return delta, info


def _check_rome_call(call: EditCall) -> None:
    """Raise before any work when the hparams or the logit-lens layer are invalid."""
    _mid_layer(call, call.hparams.layer)


apply_lti_rome_to_model = request_by_request(
    _lti_rome_one,
    """Registry entry: ROME with the LTI terms, requests one after another.""",
    check=_check_rome_call,
)


def _lti_memit_batch(call: EditCall, requests: Sequence[EditRequest]) -> tuple[Delta, dict]:
    """Apply MEMIT with the LTI terms in every z optimisation to the batch."""
    mid = _mid_layer(call, call.hparams.layers[-1])
    templates = templates_or_default(
        call.model, call.tokenizer, call.hparams, call.context_templates, call.model_key
    )
    call = replace(call, context_templates=templates)
    delta, info = apply_memit(
        call.model,
        call.tokenizer,
        requests,
        call.hparams,
        call.second_moment,
        context_templates=templates,
        spec=call.spec,
        extra_losses_for=lambda request: _lti_terms(call, request, mid),
        z_kwargs={"kl_factor": 0.0, "nll_factor": call.hparams.nll_factor},
        method_name="lti-memit",
    )
    delta.meta["mid_layer"] = mid
    return delta, info


apply_lti_memit_to_model = whole_batch(
    _lti_memit_batch,
    """Registry entry: MEMIT with the LTI terms in every z optimisation, one batch.""",
)


# Default rows per family (`editor.methods.defaults`): the released ROME-LTI / MEMIT-LTI
# configs (docs/methods/lti.md); `mid_layer` is the logit lens.
ROME_DEFAULTS = sourced(
    {
        "gpt2": Row((17,), 48, {"v_num_grad_steps": 30}, layer_fields={"mid_layer": 30}),
        "gptj": Row(
            (5,),
            28,
            {
                "v_num_grad_steps": 25,
                "nll_factor": 0.0625,
                "context_template_length_params": ((5, 10), (10, 5)),
            },
            layer_fields={"mid_layer": 17},
        ),
        "gpt_neox": Row((15,), 44, {"v_num_grad_steps": 30}, layer_fields={"mid_layer": 27}),
        **llama_like(
            Row(
                (5,),
                32,
                {
                    "v_num_grad_steps": 30,
                    "nll_factor": 0.35,
                    "last_kl_factor": 0.0725,
                    "mid_kl_factor": 0.0425,
                    "v_weight_decay": 1e-3,
                    "context_template_length_params": ((5, 5), (10, 10)),
                },
                layer_fields={"mid_layer": 15},
            )
        ),
        KNOWLEDGE: Row((0,), None, KNOWLEDGE_STEPS, layer_fields={"mid_layer": 3}),
    },
    "LTI release ROME-LTI configs (docs/methods/lti.md)",
)
MEMIT_DEFAULTS = sourced(
    {
        "gpt2": Row(
            (13, 14, 15, 16, 17), 48, {"clamp_norm_factor": 1.2}, layer_fields={"mid_layer": 30}
        ),
        "gptj": Row(
            (3, 4, 5, 6, 7, 8),
            28,
            {
                "v_num_grad_steps": 30,
                "nll_factor": 0.25,
                "last_kl_factor": 0.0325,
                "clamp_norm_factor": 0.85,
                "mom2_update_weight": 15000,
            },
            layer_fields={"mid_layer": 15},
        ),
        "gpt_neox": Row(
            (3, 4, 5, 6, 7, 8), 44, {"mom2_update_weight": 15000}, layer_fields={"mid_layer": 27}
        ),
        **llama_like(
            Row(
                (4, 5, 6, 7, 8),
                32,
                {
                    "v_num_grad_steps": 30,
                    "last_kl_factor": 0.0725,
                    "mid_kl_factor": 0.0425,
                    "v_weight_decay": 1e-3,
                    "clamp_norm_factor": 4.0,
                    "mom2_update_weight": 15000,
                },
                layer_fields={"mid_layer": 15},
            )
        ),
        KNOWLEDGE: Row(
            (0, 1), None, {**KNOWLEDGE_Z, "mom2_update_weight": 50.0}, layer_fields={"mid_layer": 3}
        ),
    },
    "LTI release MEMIT-LTI configs (docs/methods/lti.md)",
)

ROME_METHOD = register(
    EditMethod(
        name="lti-rome",
        hparams_cls=LtiRomeHyperParams,
        apply=apply_lti_rome_to_model,
        needs_second_moment=True,
        description="ROME with LTI's in-context teacher constraints (Zhang et al., 2025)",
        context=rome_context_templates,
        defaults=ROME_DEFAULTS,
        tiny={"layer": 0, "mid_layer": 1, "v_num_grad_steps": 12, "nll_factor": 1.0},
    )
)
MEMIT_METHOD = register(
    EditMethod(
        name="lti-memit",
        hparams_cls=LtiMemitHyperParams,
        apply=apply_lti_memit_to_model,
        needs_second_moment=True,
        description="MEMIT with LTI's in-context teacher constraints (Zhang et al., 2025)",
        batched=True,
        context=memit_context_templates,
        defaults=MEMIT_DEFAULTS,
        tiny={**SPREAD_TINY, "mid_layer": 1, "nll_factor": 1.0, "mom2_update_weight": 1.0},
    )
)
