"""DiKE: the disentangler trains and caches; the closed form is stationary; edits revert."""

from __future__ import annotations

import itertools

import pytest
import torch
from editor_helpers import CTX, OBJECTS, REQUEST, SUBJECTS, TEMPLATES, edit_setup

from contracts.types import FactText
from editor.errors import EditorError
from editor.loading import load_model, state_checksum
from editor.methods import get
from editor.methods.dike import DikeHyperParams, dike_update
from editor.methods.dike_krd import (
    Disentangler,
    KrdConfig,
    load_or_train_krd,
    same_subject_pairs,
    train_krd,
)
from editor.scoring import target_logprobs

FACTS = [
    FactText(subject=s, relation=f"r{t}", object=OBJECTS[(i + t) % len(OBJECTS)], templates=(tpl,))
    for i, s in enumerate(SUBJECTS)
    for t, tpl in enumerate(TEMPLATES[:4])
]
QUICK = KrdConfig(steps=12, batch_size=8)


def test_stationarity_of_the_closed_form() -> None:
    m, d, p, n, lam, gamma = 14, 6, 5, 2, 3.0, 0.7
    g = torch.Generator().manual_seed(0)
    K = torch.randn(m, n, generator=g, dtype=torch.float64)  # (m, n)
    R = torch.randn(d, n, generator=g, dtype=torch.float64)  # (d, n)
    B = torch.randn(m, 3 * m, generator=g, dtype=torch.float64)
    C = B @ B.T / (3 * m)  # (m, m)
    W3 = torch.randn(p, d, generator=g, dtype=torch.float64)  # (p, d)
    U, V = dike_update(K, R, C, lam, W3, gamma)
    delta = U @ V.T  # (d, m)
    eye = torch.eye(d, dtype=torch.float64)
    lhs = (eye + gamma * W3.T @ W3) @ delta @ (K @ K.T + lam * C)
    torch.testing.assert_close(lhs, R @ K.T)
    # and it is the gradient-zero point of the stated objective
    delta = delta.clone().requires_grad_(True)
    K0 = torch.linalg.cholesky(lam * C)  # K0 K0ᵀ = λC
    obj = (
        (delta @ K - R).pow(2).sum()
        + (delta @ K0).pow(2).sum()
        + gamma * (W3 @ delta @ K).pow(2).sum()
        + gamma * (W3 @ delta @ K0).pow(2).sum()
    )
    (grad,) = torch.autograd.grad(obj, delta)
    assert float(grad.abs().max()) < 1e-9


def test_pairs_and_disentangler_shapes() -> None:
    pairs = same_subject_pairs(FACTS)
    assert len(pairs) == len(SUBJECTS) * 4 * 3
    assert all(FACTS[i].subject == FACTS[j].subject for i, j in pairs)
    krd = Disentangler(8)
    z_r, z_u = krd(torch.randn(3, 8), torch.randn(3, 8))
    assert z_r.shape == z_u.shape == (3, 8) and krd.recompose(z_r, z_u).shape == (3, 8)


def test_krd_config_takes_every_krd_field() -> None:
    hp = DikeHyperParams(
        layer=0, krd_steps=7, krd_batch_size=3, krd_lr=0.2, krd_tau=0.3, krd_alpha=2.0, krd_beta=4.0
    )
    assert hp.krd_config() == KrdConfig(steps=7, batch_size=3, lr=0.2, tau=0.3, alpha=2.0, beta=4.0)


def test_krd_trains_and_is_cached(model_dirs, tmp_path) -> None:
    model, tok = load_model(model_dirs["gpt2"])
    before = state_checksum(model)
    _, history = train_krd(model, tok, FACTS, 0, KrdConfig(steps=40, batch_size=8, lr=1e-2))
    late = sum(h["total"] for h in history[-5:]) / 5
    assert late < history[0]["total"]
    assert state_checksum(model) == before and all(p.requires_grad for p in model.parameters())
    a = load_or_train_krd(model, tok, FACTS, 0, "key", QUICK, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("krd-*.safetensors"))) == 1
    b = load_or_train_krd(model, tok, FACTS, 0, "key", QUICK, cache_dir=tmp_path)
    for (_, x), (_, y) in itertools.zip_longest(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y)
    with pytest.raises(EditorError, match="two relations"):
        train_krd(model, tok, FACTS[:1], 0, QUICK)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_dike_edits_and_reverts(arch, model_dirs, corpus, tmp_path) -> None:
    model, tok, sm, before, lp0 = edit_setup(model_dirs[arch], corpus, tmp_path, REQUEST)
    hp = DikeHyperParams(layer=0, mom2_update_weight=1.0, krd_steps=12, krd_batch_size=8)
    deltas, _ = get("dike").apply(
        model, tok, [REQUEST], hp, second_moment=sm, context_templates=CTX, facts=FACTS,
        model_key=arch, cache_dir=tmp_path,
    )  # fmt: skip
    assert deltas[0].method == "dike" and deltas[0].entries[0].rank == 1
    lp1 = target_logprobs(model, tok, [REQUEST.rendered()], [REQUEST.target_new])
    assert float(lp1) > float(lp0)
    deltas[0].revert(model)
    assert state_checksum(model) == before
    with pytest.raises(EditorError, match="disentangler"):
        get("dike").apply(model, tok, [REQUEST], hp, second_moment=sm, context_templates=CTX)
