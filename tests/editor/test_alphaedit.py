"""AlphaEdit: the null-space projector, the projected ridge solve, keys of earlier edits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from contracts.types import EditRequest
from editor.arch import arch_spec
from editor.delta import Delta
from editor.errors import EditorError
from editor.loading import load_model, state_checksum
from editor.methods import alphaedit as ae
from editor.methods.alphaedit import (
    AlphaEditHyperParams,
    AlphaEditState,
    alphaedit_update,
    apply_alphaedit,
    eigenvalues,
    null_space_projector,
)
from editor.methods.common import request_keys
from editor.scoring import target_logprobs
from editor.sequence import EditSequence
from editor.stats import SecondMoment, layer_second_moment

CTX = ["{}", "A short story. {}", "Music and art. {}"]
FIRST = [
    EditRequest(subject="Barack Obama", prompt="The mother of {} is", target_new="Tokyo"),
    EditRequest(subject="Ada Lovelace", prompt="{} plays the", target_new="guitar"),
]
SECOND = [EditRequest(subject="Mount Fuji", prompt="{} is located in", target_new="Berlin")]


def _low_rank_moment(m: int, r: int, seed: int = 0) -> tuple[SecondMoment, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    K0 = torch.randn(m, r, generator=g)  # (m, r) preserved keys, rank r < m
    return SecondMoment(mom2=(K0 @ K0.T / r).float(), count=r), K0


def test_projector_is_symmetric_idempotent_and_annihilates_preserved_keys() -> None:
    m, r, d, n = 24, 10, 6, 3
    sm, K0 = _low_rank_moment(m, r)
    P = null_space_projector(sm, threshold=1e-4)
    torch.testing.assert_close(P @ P, P, rtol=0, atol=1e-10)
    torch.testing.assert_close(P, P.T, rtol=0, atol=1e-12)
    assert round(float(torch.trace(P))) == m - r
    g = torch.Generator().manual_seed(1)
    K = torch.randn(m, n, generator=g, dtype=torch.float64)  # (m, n) new keys
    R = torch.randn(d, n, generator=g, dtype=torch.float64)  # (d, n)
    U, V = alphaedit_update(K, R, P, torch.zeros(m, m, dtype=torch.float64), l2=0.5)
    delta = U @ V.T  # (d, m)
    K0d = K0.double()
    assert float((delta @ K0d).norm() / (delta.norm() * K0d.norm())) < 1e-5
    torch.testing.assert_close(delta @ P, delta)  # Δ = Δ P: the update lives in null(K₀ᵀ)
    # the defining equation (P (K Kᵀ + C_p) + α I) Δᵀ = P K Rᵀ
    lhs = (P @ (K @ K.T) + 0.5 * torch.eye(m, dtype=torch.float64)) @ delta.T
    torch.testing.assert_close(lhs, P @ K @ R.T)


def test_threshold_is_exposed_and_cached(tmp_path: Path) -> None:
    ae.clear_cache()
    sm, _ = _low_rank_moment(16, 6, seed=2)
    sm.meta["key"] = "test-key"
    vals = eigenvalues(sm)
    assert bool((vals[1:] >= vals[:-1]).all())
    P1 = null_space_projector(sm, 1e-4, cache_dir=tmp_path)
    assert null_space_projector(sm, 1e-4) is P1
    assert (tmp_path / "eig-test-key.safetensors").is_file()
    wide = null_space_projector(sm, float(vals[-1]) + 1.0)
    torch.testing.assert_close(wide, torch.eye(16, dtype=torch.float64))
    ae.clear_cache()  # from disk again
    torch.testing.assert_close(null_space_projector(sm, 1e-4, cache_dir=tmp_path), P1)


def test_energy_threshold_bounds_the_preserved_energy_in_the_null_space() -> None:
    ae.clear_cache()
    g = torch.Generator().manual_seed(5)
    Q, _ = torch.linalg.qr(torch.randn(12, 12, generator=g, dtype=torch.float64))  # (m, m)
    vals = torch.tensor([1e-4, 2e-4, 1e-3, 0.01, 0.05, 0.1, 0.3, 0.5, 1.0, 2.0, 4.0, 8.0])
    C = Q @ torch.diag(vals.double()) @ Q.T  # (m, m)
    sm = SecondMoment(mom2=C.float(), count=1)
    total = float(vals.sum())
    for energy in (0.0, 1e-4, 0.001, 0.01, 0.05):
        P = null_space_projector(sm, ae.energy_threshold(sm, energy))
        kept = float(torch.trace(P @ C.double()))  # preserved energy left in the null space
        assert kept <= energy * total + 1e-9
        dims = int(torch.trace(P).round())
        assert float(vals[: dims + 1].sum()) > energy * total  # one more direction is too many
    # scale-free: the same fraction picks the same directions of 100·C
    big = SecondMoment(mom2=(100 * C).float(), count=1)
    assert int(torch.trace(null_space_projector(big, ae.energy_threshold(big, 0.01))).round()) == 5
    hp = AlphaEditHyperParams(layers=(0,), nullspace_energy=0.01)
    assert ae.layer_threshold(sm, hp) == ae.energy_threshold(sm, 0.01)
    assert ae.layer_threshold(sm, hp.replace(nullspace_energy=None)) == hp.nullspace_threshold
    with pytest.raises(EditorError):
        ae.energy_threshold(sm, 1.0)


def _setup(arch: str, model_dirs, corpus, tmp_path: Path):
    model, tok = load_model(model_dirs[arch])
    sm = layer_second_moment(model, tok, 0, corpus, cache_dir=tmp_path / "stats")
    tau = float(eigenvalues(sm).quantile(0.5))  # the half of the key space least used
    hp = AlphaEditHyperParams(
        layers=(0,), nullspace_threshold=tau, l2=0.1, clamp_norm_factor=4.0, v_num_grad_steps=15
    )
    return model, tok, {0: sm}, hp


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_update_leaves_the_preserved_space_alone(arch, model_dirs, corpus, tmp_path) -> None:
    model, tok, sms, hp = _setup(arch, model_dirs, corpus, tmp_path)
    before = state_checksum(model)
    prompts, targets = [r.rendered() for r in FIRST], [r.target_new for r in FIRST]
    lp0 = target_logprobs(model, tok, prompts, targets)
    delta, info = apply_alphaedit(model, tok, FIRST, hp, sms, context_templates=CTX)
    assert float(target_logprobs(model, tok, prompts, targets).sum()) > float(lp0.sum())
    update = delta.entries[0].math_update()  # (d, m)
    vals, vecs = ae.eigen(sms[0])
    kept = vecs[:, vals >= hp.nullspace_threshold]  # (m, r): directions the corpus uses
    assert float((update @ kept).norm() / update.norm()) < 1e-5
    assert info["null_space_dims"] == {"0": int((vals < hp.nullspace_threshold).sum())}
    delta.revert(model)
    assert state_checksum(model) == before


def test_earlier_keys_are_protected_and_forgotten_on_revert(model_dirs, corpus, tmp_path) -> None:
    model, tok, sms, hp = _setup("gpt_neox", model_dirs, corpus, tmp_path)
    spec = arch_spec(model)
    before = state_checksum(model)
    seq = EditSequence(model, tok, "alphaedit", hp, second_moment=sms, context_templates=CTX)
    seq.apply(FIRST)
    state = seq.state["alphaedit"]
    assert isinstance(state, AlphaEditState) and state.n_keys == 2
    K1 = request_keys(model, tok, spec, 0, FIRST, CTX).double().T  # (m, 2)
    torch.testing.assert_close(state.cp(0, K1.shape[0]), K1 @ K1.T, rtol=1e-5, atol=1e-6)
    seq.apply(SECOND)
    assert seq.infos[-1]["earlier_keys"] == 2 and state.n_keys == 3
    second = seq.deltas[-1].entries[0].math_update()  # (d, m)
    # the same edit without the earlier keys moves the first batch's keys more
    seq.revert_last()
    assert state.n_keys == 2
    fresh = AlphaEditState()
    alone, _ = apply_alphaedit(model, tok, SECOND, hp, sms, state=fresh, context_templates=CTX)
    unprotected = alone.entries[0].math_update()  # (d, m)
    alone.revert(model)
    ratio = (second @ K1).norm() / second.norm()
    ratio_alone = (unprotected @ K1).norm() / unprotected.norm()
    assert float(ratio) < 0.5 * float(ratio_alone)
    seq.revert_all()
    assert state.n_keys == 0 and state_checksum(model) == before


def test_a_sequence_resumes_from_saved_deltas_and_keys(model_dirs, corpus, tmp_path) -> None:
    model, tok, sms, hp = _setup("gpt2", model_dirs, corpus, tmp_path)
    before = state_checksum(model)
    seq = EditSequence(model, tok, "alphaedit", hp, second_moment=sms, context_templates=CTX)
    seq.apply(FIRST, batch_size=1)
    for i, delta in enumerate(seq.deltas):
        delta.save(tmp_path / f"{i}.safetensors")
    tensors, tokens = seq.state["alphaedit"].tensors()
    seq.apply(SECOND)
    continued = seq.deltas[-1].entries[0].math_update()  # (d, m)
    seq.revert_all()
    assert state_checksum(model) == before

    resumed = EditSequence(model, tok, "alphaedit", hp, second_moment=sms, context_templates=CTX)
    loaded = [Delta.load(tmp_path / f"{i}.safetensors") for i in range(len(FIRST))]
    state = AlphaEditState.from_tensors(tensors, tokens)
    resumed.replay(loaded, {"alphaedit": state})
    assert state.n_keys == len(FIRST) and len(resumed) == len(FIRST)
    resumed.apply(SECOND)
    torch.testing.assert_close(resumed.deltas[-1].entries[0].math_update(), continued)
    resumed.revert_all()  # the replayed deltas revert too and drop their keys
    assert state_checksum(model) == before and state.n_keys == 0
    with pytest.raises(EditorError):  # a delta made on other weights is refused
        EditSequence(model, tok, "alphaedit", hp, second_moment=sms).replay(loaded[1:])
