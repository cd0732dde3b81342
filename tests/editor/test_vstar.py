"""v*/δ optimisation: loss falls, clamp holds, extra loss terms plug in, model untouched."""

from __future__ import annotations

import torch

from editor.loading import load_model, state_checksum
from editor.vstar import LossContext, optimize_v

TEMPLATES = ["{}", "A short story. {}", "Music and art. {}"]


def _run(model, tok, **kw):
    return optimize_v(
        model, tok, "Barack Obama", "The mother of {} is", "Tokyo", TEMPLATES, layer=0, **kw
    )


def test_loss_falls_and_clamp_holds(model_dirs) -> None:
    model, tok = load_model(model_dirs["llama"])
    before = state_checksum(model)
    res = _run(model, tok, num_steps=15, clamp_norm_factor=2.0)
    assert res.losses[-1]["nll"] < res.losses[0]["nll"]
    assert res.losses[0]["weight_decay"] == 0.0 and res.losses[0]["kl"] == 0.0
    assert float(res.delta.norm()) <= 2.0 * float(res.m0.norm()) * (1 + 1e-5)
    torch.testing.assert_close(res.v_star, res.m0 + res.delta)
    assert state_checksum(model) == before
    assert all(p.requires_grad for p in model.parameters())  # flags restored
    assert len(res.prompts) == len(TEMPLATES) + 1 and res.prompts[-1] == "Barack Obama is a"


def test_stops_early_below_threshold(model_dirs) -> None:
    model, tok = load_model(model_dirs["gpt2"])
    res = _run(model, tok, num_steps=10, loss_stop=1e9)
    assert len(res.losses) == 1 and torch.count_nonzero(res.delta) == 0


def test_step_count_matches_reference(model_dirs) -> None:
    model, tok = load_model(model_dirs["gpt2"])
    res = _run(model, tok, num_steps=4, loss_stop=0.0)
    assert len(res.losses) == 4  # 4 evaluations, 3 updates


def test_extra_loss_term_is_used(model_dirs) -> None:
    model, tok = load_model(model_dirs["gpt2"])
    seen: list[LossContext] = []

    class PullToZero:
        name = "pull"
        captures = ("transformer.h.1",)

        def __call__(self, ctx: LossContext) -> torch.Tensor:
            seen.append(ctx)
            return 10.0 * ctx.delta.norm()

    res = _run(model, tok, num_steps=5, extra_losses=[PullToZero()])
    assert "pull" in res.losses[-1] and len(seen) == len(res.losses)
    out = seen[0].outputs["transformer.h.1"]
    assert out.shape[:2] == seen[0].batch.input_ids.shape and out.requires_grad
    assert seen[0].n_rewrite == len(TEMPLATES)


def test_m0_is_the_mlp_output_at_the_subject_token(model_dirs) -> None:
    from editor.arch import arch_spec, get_module
    from editor.hooks import capture_output
    from editor.tokens import subject_last_token_index

    model, tok = load_model(model_dirs["gpt_neox"])
    res = _run(model, tok, num_steps=1)
    spec = arch_spec(model)
    idx = subject_last_token_index(tok, "The mother of {} is", "Barack Obama")
    with capture_output(get_module(model, spec.mlp_name(0)), [0], [idx]) as cap:
        model(**tok("The mother of Barack Obama is", return_tensors="pt"))
    torch.testing.assert_close(res.m0, cap.value[0], rtol=1e-5, atol=1e-6)
    # also when the templates lack the bare "{}"
    res2 = optimize_v(
        model,
        tok,
        "Barack Obama",
        "The mother of {} is",
        "Tokyo",
        TEMPLATES[1:],
        layer=0,
        num_steps=1,
    )
    torch.testing.assert_close(res2.m0, cap.value[0], rtol=1e-5, atol=1e-6)
