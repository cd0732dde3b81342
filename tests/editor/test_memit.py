"""MEMIT: the float64 solve, ridge ROME for one request, residual spreading over layers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from contracts.types import EditRequest
from editor.arch import arch_spec, edited_weight, to_math
from editor.errors import EditorError
from editor.loading import load_model, state_checksum
from editor.methods import get
from editor.methods.common import bare_outputs, request_keys
from editor.methods.defaults import default_hparams
from editor.methods.memit import MemitHyperParams, apply_memit, memit_update
from editor.scoring import target_logprobs
from editor.stats import layer_second_moment

REQUESTS = [
    EditRequest(subject="Barack Obama", prompt="The mother of {} is", target_new="Tokyo"),
    EditRequest(subject="Mount Fuji", prompt="{} is located in", target_new="Berlin"),
    EditRequest(subject="Ada Lovelace", prompt="{} plays the", target_new="guitar"),
]
BARE = ["{}"]
CTX = ["{}", "A short story. {}", "Music and art. {}"]


def _spd(m: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(m, 3 * m, generator=g, dtype=torch.float64)  # (m, 3m)
    return A @ A.T / (3 * m)  # (m, m)


def test_normal_equations_and_limits() -> None:
    m, d, n = 12, 5, 3
    g = torch.Generator().manual_seed(1)
    K = torch.randn(m, n, generator=g, dtype=torch.float64)  # (m, n)
    R = torch.randn(d, n, generator=g, dtype=torch.float64)  # (d, n)
    C = _spd(m, 2)
    U, V = memit_update(K, R, C, 7.0)
    delta = U @ V.T  # (d, m)
    torch.testing.assert_close(delta @ (7.0 * C + K @ K.T), R @ K.T)
    # λ → 0 with n ≤ m interpolates the residual; λ → ∞ makes no change
    U, V = memit_update(K, R, C, 1e-9)
    torch.testing.assert_close((U @ V.T) @ K, R, rtol=1e-6, atol=1e-6)
    U, V = memit_update(K, R, C, 1e12)
    assert float((U @ V.T).norm()) < 1e-9 * float(R.norm())


def test_one_request_one_layer_is_ridge_rome() -> None:
    m, d, lam = 10, 4, 3.0
    g = torch.Generator().manual_seed(3)
    k = torch.randn(m, 1, generator=g, dtype=torch.float64)  # (m, 1)
    r = torch.randn(d, 1, generator=g, dtype=torch.float64)  # (d, 1)
    C = _spd(m, 4)
    U, V = memit_update(k, r, C, lam)
    u = torch.linalg.solve(C, k)  # (m, 1) = C⁻¹k, ROME's key direction
    ridge_rome = r @ u.T / (lam + float(k.T @ u))  # (d, m)
    torch.testing.assert_close(U @ V.T, ridge_rome)


def _setup(arch: str, model_dirs, corpus, tmp_path: Path, layers=(0, 1)):
    model, tok = load_model(model_dirs[arch])
    sms = {
        layer: layer_second_moment(model, tok, layer, corpus, cache_dir=tmp_path / "stats")
        for layer in layers
    }
    return model, tok, sms


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_memit_edit_matches_ridge_rome_on_a_model(arch, model_dirs, corpus, tmp_path) -> None:
    """One request, one layer, bare prompt: ΔW = r (C⁻¹k)ᵀ / (λ + kᵀC⁻¹k) on the real layer."""
    model, tok, sms = _setup(arch, model_dirs, corpus, tmp_path, layers=(0,))
    spec = arch_spec(model)
    request = REQUESTS[:1]
    k = request_keys(model, tok, spec, 0, request, BARE)[0].double()  # (m,)
    h = bare_outputs(model, tok, spec.layer_name(0), request)[0].double()  # (d,)
    W0 = to_math(edited_weight(model, spec, 0).detach().clone(), spec).double()  # (d, m)
    hp = MemitHyperParams(layers=(0,), mom2_update_weight=5.0, v_num_grad_steps=5)
    _, info = apply_memit(model, tok, request, hp, sms, context_templates=BARE)
    W1 = to_math(edited_weight(model, spec, 0).detach(), spec).double()  # (d, m)
    r = info["z"][0].double() - h  # (d,)
    u = torch.linalg.solve(sms[0].mom2.double(), k)  # (m,)
    expected = torch.outer(r, u) / (5.0 + float(k @ u))  # (d, m)
    torch.testing.assert_close(W1 - W0, expected, rtol=1e-4, atol=1e-5)
    assert int(torch.linalg.matrix_rank(W1 - W0, rtol=1e-5)) == 1


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox"])
def test_spreading_reaches_z_and_splits_the_residual(arch, model_dirs, corpus, tmp_path) -> None:
    """With λ → 0 and bare keys the last layer closes the residual; layer 0 takes half."""
    model, tok, sms = _setup(arch, model_dirs, corpus, tmp_path)
    spec = arch_spec(model)
    k0 = request_keys(model, tok, spec, 0, REQUESTS, BARE)  # (n, m)
    h = bare_outputs(model, tok, spec.layer_name(1), REQUESTS)  # (n, d)
    hp = MemitHyperParams(layers=(0, 1), mom2_update_weight=1e-6, v_num_grad_steps=4)
    delta, info = apply_memit(model, tok, REQUESTS, hp, sms, context_templates=BARE)
    assert [e.param for e in delta.entries] == [
        f"{spec.down_proj_name(0)}.weight",
        f"{spec.down_proj_name(1)}.weight",
    ]
    first = delta.entries[0].math_update()  # (d, m)
    half = (info["z"].double() - h.double()) / 2  # (n, d)
    torch.testing.assert_close((first @ k0.double().T).T, half, rtol=1e-3, atol=1e-3)
    final = bare_outputs(model, tok, spec.layer_name(1), REQUESTS)  # (n, d)
    err = (final - info["z"]).norm(dim=1) / info["z"].norm(dim=1)  # (n,)
    assert float(err.max()) < 1e-3
    assert info["final_residual_norm"] < 1e-3 * info["residual_norm"][0]


@pytest.mark.parametrize("arch", ["gpt2", "gptj", "gpt_neox", "llama"])
def test_batch_raises_targets_and_reverts(arch, model_dirs, corpus, tmp_path) -> None:
    model, tok, sms = _setup(arch, model_dirs, corpus, tmp_path, layers=(0,))
    before = state_checksum(model)
    prompts = [r.rendered() for r in REQUESTS]
    targets = [r.target_new for r in REQUESTS]
    lp0 = target_logprobs(model, tok, prompts, targets)
    hp = MemitHyperParams(layers=(0,), mom2_update_weight=1.0, clamp_norm_factor=4.0)
    reports: list[tuple[int, int]] = []
    deltas, _ = get("memit").apply(
        model, tok, REQUESTS, hp, second_moment=sms, context_templates=CTX,
        on_request=lambda done, total: reports.append((done, total)),
    )  # fmt: skip
    # progress while the stacked z optimisation runs (one report per step), then the batch
    assert len(reports) > 2 and reports[0] == (0, 3) and reports[-1] == (3, 3)
    assert len(deltas) == 1 and deltas[0].method == "memit"
    assert deltas[0].meta["layers"] == [0] and len(deltas[0].meta["requests"]) == 3
    lp1 = target_logprobs(model, tok, prompts, targets)
    assert float(lp1.sum()) > float(lp0.sum())  # the batch as a whole moves to its targets
    deltas[0].revert(model)
    assert state_checksum(model) == before


def test_hparams_json_and_guards(model_dirs, tmp_path) -> None:
    path = tmp_path / "memit.json"
    path.write_text('{"layers": [1, 2], "context_template_length_params": [[10, 5]]}')
    hp = MemitHyperParams.from_json(path)
    assert hp.layers == (1, 2) and hp.context_template_length_params == ((10, 5),)
    assert MemitHyperParams.from_dict(hp.to_dict()) == hp
    with pytest.raises(EditorError, match="unknown"):
        MemitHyperParams.from_dict({"layers": [1], "lamda": 3})
    model, tok = load_model(model_dirs["gpt2"])
    with pytest.raises(EditorError, match="ascending"):
        apply_memit(model, tok, REQUESTS, MemitHyperParams(layers=(1, 0)), None)
    with pytest.raises(EditorError, match="out of range"):
        apply_memit(model, tok, REQUESTS, MemitHyperParams(layers=(0, 5)), None)


@pytest.mark.parametrize("fact_token", ["subject_first", "subject_all"])
def test_memit_spreads_at_the_chosen_subject_tokens(fact_token, model_dirs, corpus, tmp_path):
    """With λ → 0 the z layer reaches z at the tokens `fact_token` names (their mean: all)."""
    model, tok, sms = _setup("gpt2", model_dirs, corpus, tmp_path)
    spec = arch_spec(model)
    at = fact_token.removeprefix("subject_")
    hp = MemitHyperParams(
        layers=(0, 1), mom2_update_weight=1e-6, v_num_grad_steps=4, fact_token=fact_token
    )
    last_before = bare_outputs(model, tok, spec.layer_name(1), REQUESTS)  # (n, d)
    _, info = apply_memit(model, tok, REQUESTS, hp, sms, context_templates=BARE)
    final = bare_outputs(model, tok, spec.layer_name(1), REQUESTS, position=at)  # (n, d)
    err = (final - info["z"]).norm(dim=1) / info["z"].norm(dim=1)  # (n,)
    assert float(err.max()) < 1e-3
    moved = bare_outputs(model, tok, spec.layer_name(1), REQUESTS)  # (n, d) at the last token
    if at == "first":  # the first subject token was edited, not (directly) the last
        assert not torch.allclose(moved, info["z"], rtol=1e-3, atol=1e-3)
    assert not torch.allclose(last_before, moved)


def test_a_method_refuses_a_subject_position_it_does_not_declare(model_dirs) -> None:
    model, _ = load_model(model_dirs["gpt2"])
    with pytest.raises(EditorError, match="reads the subject at"):
        default_hparams("lti-rome", model, overrides={"fact_token": "subject_first"})
    assert default_hparams("memit", model, overrides={"fact_token": "subject_all"}).fact_token
