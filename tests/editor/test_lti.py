"""LTI: teacher positions found in the teacher's own tokens, KL terms, ROME and MEMIT plug-ins."""

from __future__ import annotations

import pytest
from editor_helpers import CTX, REQUEST, edit_setup

from editor.arch import arch_spec
from editor.errors import EditorError
from editor.loading import load_model, state_checksum
from editor.methods import get
from editor.methods.lti import LtiLoss, LtiMemitHyperParams, LtiRomeHyperParams, resolve_mid_layer
from editor.scoring import target_logprobs
from editor.tokens import fill, subject_last_token_index
from editor.vstar import ESSENCE_PROMPTS, optimize_v


def _term(model, tok, prefix: str) -> LtiLoss:
    return LtiLoss(
        model,
        tok,
        REQUEST,
        CTX,
        ESSENCE_PROMPTS,
        mid_layer=1,
        last_kl_factor=1.0,
        mid_kl_factor=1.0,
        teacher_prefix=prefix,
    )


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_teacher_positions_are_found_in_the_prefixed_text(arch, model_dirs) -> None:
    model, tok = load_model(model_dirs[arch])
    term = _term(model, tok, "Imagine that {fact}\n")
    assert term.prefix == "Imagine that Marie Curie was born in Tokyo\n"
    teacher = term.teacher_batch
    subject_id = tok(" Curie", add_special_tokens=False)["input_ids"][-1]
    for row, pos in enumerate(term.teacher_subject.tolist()):
        assert int(teacher.input_ids[row, pos]) == subject_id
        # the prefix names the subject too: the position is the prompt's, not the prefix's
        prefix_len = len(tok(term.prefix if row < term.n_rewrite else "")["input_ids"])
        assert pos >= prefix_len - 1
    # the target positions predict the target's tokens, as in the student batch
    student_texts = [fill(t.replace("{}", REQUEST.prompt, 1), REQUEST.subject)[0] for t in CTX]
    student_cols = [
        subject_last_token_index(tok, t.replace("{}", REQUEST.prompt, 1), REQUEST.subject)
        for t in CTX
    ]
    assert len(student_texts) == term.n_rewrite
    for row in range(term.n_rewrite):
        k = int(teacher.target_mask[row].sum())
        tgt = teacher.target_ids[row, :k]
        fed = teacher.input_ids[row, teacher.pred_positions[row, 1:k]]  # teacher-forced tokens
        assert tgt[: k - 1].tolist() == fed.tolist()
        assert int(teacher.pred_positions[row, 0]) == int(teacher.prompt_lengths[row]) - 1
        assert int(teacher.pred_positions[row, 0]) > student_cols[row]


def test_kl_terms_vanish_when_teacher_and_student_read_the_same(model_dirs) -> None:
    model, tok = load_model(model_dirs["gpt_neox"])
    term = _term(model, tok, "")  # no prefix: the teacher is the student at δ = 0
    res = optimize_v(
        model, tok, REQUEST.subject, REQUEST.prompt, REQUEST.target_new, CTX,
        layer=0, num_steps=1, extra_losses=[term],
    )  # fmt: skip
    assert abs(res.losses[0]["lti"]) < 1e-5
    term = _term(model, tok, "Imagine that {fact}\n")
    res = optimize_v(
        model, tok, REQUEST.subject, REQUEST.prompt, REQUEST.target_new, CTX,
        layer=0, num_steps=1, extra_losses=[term],
    )  # fmt: skip
    assert res.losses[0]["lti"] > 1e-4


def test_mid_layer_rule() -> None:
    assert resolve_mid_layer(None, 17, 48) == 30 and resolve_mid_layer(None, 5, 28) == 17
    assert resolve_mid_layer(None, 0, 2) == 1
    with pytest.raises(EditorError, match="mid layer"):
        resolve_mid_layer(1, 1, 6)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_lti_rome_and_memit_edit_and_revert(arch, model_dirs, corpus, tmp_path) -> None:
    model, tok, sm, before, lp0 = edit_setup(model_dirs[arch], corpus, tmp_path, REQUEST)
    hp_r = LtiRomeHyperParams(layer=0, mid_layer=1, v_num_grad_steps=15, nll_factor=1.0)
    hp_m = LtiMemitHyperParams(
        layers=(0,), mid_layer=1, v_num_grad_steps=15, nll_factor=1.0,
        clamp_norm_factor=4.0, mom2_update_weight=1.0,
    )  # fmt: skip
    for name, hp in (("lti-rome", hp_r), ("lti-memit", hp_m)):
        deltas, infos = get(name).apply(
            model, tok, [REQUEST], hp, second_moment=sm, context_templates=CTX
        )
        assert deltas[0].method == name and deltas[0].meta["mid_layer"] == 1
        losses = infos[0]["losses"] if name == "lti-rome" else infos[0]["targets"][0]["losses"]
        assert "lti" in losses[0] and "kl" not in losses[0]  # subsumed by the teacher
        lp1 = target_logprobs(model, tok, [REQUEST.rendered()], [REQUEST.target_new])
        assert float(lp1) > float(lp0)
        deltas[0].revert(model)
        assert state_checksum(model) == before
    assert arch_spec(model).n_layers(model.config) == 2
