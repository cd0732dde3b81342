"""GA / GradDiff / NPO / UIPE: NPO's formula, forgetting on tiny models, exact revert."""

from __future__ import annotations

import math

import pytest
import torch

from contracts.types import UnlearnRequest
from editor.errors import EditorError
from editor.loading import load_model, state_checksum
from editor.methods import names
from editor.methods.gradient_unlearning import (
    Example,
    GradUnlearnHyperParams,
    npo_loss,
    unlearn_examples,
)
from editor.methods.uipe import UipeHyperParams, extrapolate
from editor.scoring import target_logprobs
from editor.sequence import EditSequence

FORGET = ("Barack Obama plays the piano.", "Barack Obama was born in Paris.")
RETAIN = ("Marie Curie plays the guitar.", "Mount Fuji is located in Tokyo.")
REQUEST = UnlearnRequest("Barack Obama", forget_texts=FORGET, retain_texts=RETAIN, request_id="u")
HP = GradUnlearnHyperParams(lr=1e-2, epochs=3, batch_size=2, warmup_epochs=0.0)


def test_npo_loss_matches_its_closed_formula() -> None:
    logp_theta = torch.tensor([-2.0, -5.0])
    logp_ref = torch.tensor([-1.0, -6.0])
    beta = 0.1
    # −log σ(−β(θ − ref)) per example: −log σ(0.1) and −log σ(−0.1), times 2/β, meaned.
    by_hand = (2 / beta) * 0.5 * (math.log(1 + math.exp(-0.1)) + math.log(1 + math.exp(0.1)))
    assert float(npo_loss(logp_theta, logp_ref, beta)) == pytest.approx(by_hand, rel=1e-6)
    assert float(npo_loss(logp_ref, logp_ref, beta)) == pytest.approx((2 / beta) * math.log(2))
    with pytest.raises(EditorError):
        npo_loss(logp_theta, logp_ref, 0.0)


def _forget_logp(model, tok) -> float:
    return float(target_logprobs(model, tok, ["Barack Obama plays the"], ["piano"]))


@pytest.mark.parametrize("method", ["ga", "graddiff", "npo"])
def test_each_objective_forgets_and_reverts(method, model_dirs) -> None:
    model, tok = load_model(model_dirs["gpt2"])
    before, lp0 = state_checksum(model), _forget_logp(model, tok)
    seq = EditSequence(model, tok, method, HP)
    (delta,) = seq.apply([REQUEST])
    assert delta.method == method and delta.entries
    assert _forget_logp(model, tok) < lp0 - 0.5
    seq.revert_all()
    assert state_checksum(model) == before


def test_kl_retain_loss_and_prompted_examples(model_dirs) -> None:
    model, tok = load_model(model_dirs["llama"])
    before = state_checksum(model)
    forget = [Example("Question: what does Barack Obama play? Answer:", "piano")]
    retain = [Example("Question: what does Marie Curie play? Answer:", "guitar")]
    hp = HP.replace(retain_loss="kl", epochs=2)
    delta, info = unlearn_examples(model, tok, "graddiff", forget, retain, hp)
    assert info["steps"] == 2 and all(math.isfinite(x) for x in info["losses"])
    delta.revert(model)
    assert state_checksum(model) == before


def test_bad_input_is_refused_and_changes_nothing(model_dirs) -> None:
    model, tok = load_model(model_dirs["gpt2"])
    before = state_checksum(model)
    with pytest.raises(EditorError, match="nothing to forget"):
        unlearn_examples(model, tok, "ga", [], [], HP)
    with pytest.raises(EditorError, match="retain"):
        unlearn_examples(model, tok, "npo", [Example("", FORGET[0])], [], HP)
    with pytest.raises(EditorError, match="objective"):
        unlearn_examples(model, tok, "ascend", [Example("", FORGET[0])], [], HP)
    with pytest.raises(EditorError, match="retain_loss"):
        unlearn_examples(
            model, tok, "ga", [Example("", FORGET[0])], [], HP.replace(retain_loss="l2")
        )
    assert state_checksum(model) == before


def test_uipe_alpha_zero_is_the_identity_and_alpha_scales(model_dirs) -> None:
    model, tok = load_model(model_dirs["gpt2"])
    base = EditSequence(model, tok, "ga", HP)
    (delta,) = base.apply([REQUEST])
    after_base = state_checksum(model)
    base.revert_all()
    same = extrapolate(delta, 0.0)
    same.apply(model)
    assert state_checksum(model) == after_base  # α = 0: θ₀ + Δ exactly
    same.revert(model)
    doubled = extrapolate(delta, 1.0)
    for e, d in zip(delta.entries, doubled.entries, strict=True):
        torch.testing.assert_close(d.dense.double(), 2 * e.dense.double(), rtol=1e-6, atol=0)
    hp = UipeHyperParams(**HP.to_dict(), base="ga", extrapolation=0.0)
    uipe = EditSequence(model, tok, "uipe", hp)
    uipe.apply([REQUEST])
    assert state_checksum(model) == after_base and "uipe" in names("unlearn")
    with pytest.raises(EditorError):
        extrapolate(delta, float("nan"))
