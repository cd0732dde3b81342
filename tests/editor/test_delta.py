"""Deltas: bit-exact revert, fix-up modes, save/load round trip, guards."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from editor.arch import arch_spec, edited_weight, edited_weight_name, to_math
from editor.delta import Delta, apply_all, revert_all
from editor.errors import EditorError
from editor.loading import load_model, state_checksum


def _rank_one(model, layer: int, scale: float, seed: int = 0) -> Delta:
    spec = arch_spec(model)
    weight = edited_weight(model, spec, layer)
    d, m = to_math(weight, spec).shape
    g = torch.Generator().manual_seed(seed)
    U = torch.randn(d, 1, generator=g) * scale  # (d, 1)
    V = torch.randn(m, 1, generator=g)  # (m, 1)
    name = edited_weight_name(spec, layer)
    return Delta.low_rank("test", name, weight.shape, U, V, transpose=spec.conv1d)


@pytest.mark.parametrize("scale", [1e-3, 0.1, 10.0])
@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_apply_revert_is_bit_exact(arch, scale, model_dirs) -> None:
    model, _ = load_model(model_dirs[arch])
    before = state_checksum(model)
    delta = _rank_one(model, 0, scale)
    delta.apply(model)
    assert state_checksum(model) != before
    delta.revert(model)
    assert state_checksum(model) == before


def test_naive_subtraction_is_not_exact_but_revert_is(model_dirs) -> None:
    model, _ = load_model(model_dirs["gpt2"])
    spec = arch_spec(model)
    original = edited_weight(model, spec, 0).detach().clone()
    delta = _rank_one(model, 0, 0.3)
    delta.apply(model)
    entry = delta.entries[0]
    naive = (edited_weight(model, spec, 0).double() - entry.update()).float()
    assert not torch.equal(naive, original)  # why the fix-up exists
    assert entry.fix_index is not None and 0 < entry.fix_index.numel() < original.numel()
    delta.revert(model)
    assert torch.equal(edited_weight(model, spec, 0), original)


def test_large_update_keeps_whole_original(model_dirs) -> None:
    model, _ = load_model(model_dirs["gpt2"])
    before = state_checksum(model)
    delta = _rank_one(model, 1, 1e4)
    delta.apply(model)
    assert delta.entries[0].fix_index is None  # dense fallback
    delta.revert(model)
    assert state_checksum(model) == before


def test_bfloat16_parameters(model_dirs) -> None:
    model, _ = load_model(model_dirs["llama"], dtype=torch.bfloat16)
    before = state_checksum(model)
    delta = _rank_one(model, 1, 0.05)
    delta.apply(model)
    delta.revert(model)
    assert state_checksum(model) == before


def test_applied_update_matches_math(model_dirs) -> None:
    model, _ = load_model(model_dirs["gpt2"])
    spec = arch_spec(model)
    W0 = to_math(edited_weight(model, spec, 0).detach().clone(), spec).double()
    delta = _rank_one(model, 0, 0.1)
    delta.apply(model)
    W1 = to_math(edited_weight(model, spec, 0).detach(), spec).double()
    entry = delta.entries[0]
    expected = entry.U.double() @ entry.V.double().T  # (d, m)
    torch.testing.assert_close(W1 - W0, expected, rtol=1e-5, atol=1e-6)
    assert torch.linalg.matrix_rank(W1 - W0, rtol=1e-5) == 1
    torch.testing.assert_close(entry.math_update(), expected)
    assert abs(entry.norm() - float(expected.norm())) < 1e-9 * float(expected.norm())


def test_save_load_round_trip(model_dirs, tmp_path: Path) -> None:
    model, _ = load_model(model_dirs["llama"])
    before = state_checksum(model)
    delta = _rank_one(model, 1, 0.2)
    delta.request_ids = ["r1"]
    delta.meta = {"note": "x", "n": 3}
    delta.apply(model)
    after = state_checksum(model)
    path = tmp_path / "d" / "delta.safetensors"
    delta.save(path)
    loaded = Delta.load(path)
    assert loaded.method == "test" and loaded.request_ids == ["r1"] and loaded.meta["n"] == 3
    e, f = delta.entries[0], loaded.entries[0]
    assert torch.equal(e.U, f.U) and torch.equal(e.V, f.V) and e.sha_after == f.sha_after
    loaded.revert(model)  # revert with the loaded copy in a "new process"
    assert state_checksum(model) == before
    fresh, _ = load_model(model_dirs["llama"])
    loaded.apply(fresh)  # re-applying to a fresh base gives the same bits
    assert state_checksum(fresh) == after


def test_dense_delta_and_chain(model_dirs) -> None:
    model, _ = load_model(model_dirs["gpt_neox"])
    before = state_checksum(model)
    name = "gpt_neox.layers.0.mlp.dense_4h_to_h.bias"
    bias = model.get_parameter(name)
    dense = Delta.from_dense("test", {name: torch.randn_like(bias)})
    chain = [_rank_one(model, 0, 0.1), dense, _rank_one(model, 0, 0.1, seed=1)]
    apply_all(model, chain)
    revert_all(model, chain)
    assert state_checksum(model) == before


def test_guards(model_dirs) -> None:
    model, _ = load_model(model_dirs["gpt2"])
    delta = _rank_one(model, 0, 0.1)
    with pytest.raises(EditorError, match="never applied"):
        delta.revert(model)
    delta.apply(model)
    with pytest.raises(EditorError, match="differ"):
        delta.apply(model)  # applying twice is refused
    other = _rank_one(model, 0, 0.1, seed=5)
    other.apply(model)
    with pytest.raises(EditorError, match="not those"):
        delta.revert(model)  # out of order
    with pytest.raises(EditorError, match="do not fit"):
        Delta.low_rank("t", "w", (3, 4), torch.ones(4, 1), torch.ones(3, 1))
    with pytest.raises(EditorError, match="no parameter"):
        Delta.low_rank("t", "nope.weight", (1, 1), torch.ones(1, 1), torch.ones(1, 1)).apply(
            nn.Linear(1, 1)
        )
