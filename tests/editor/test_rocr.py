"""ROCR: the concept's state becomes the anchor's, preserved keys stay, deltas revert."""

from __future__ import annotations

import pytest
import torch

from contracts.types import UnlearnRequest
from editor.arch import arch_spec, edited_weight, to_math
from editor.errors import EditorError
from editor.loading import load_model, state_checksum
from editor.methods import get, names
from editor.methods.rocr import RocrHyperParams, mean_state_at_name, task_contexts
from editor.sequence import EditSequence
from editor.stats import SecondMoment

REQUEST = UnlearnRequest("Barack Obama", anchor="Marie Curie", request_id="u1")


def _low_rank_moment(m: int, r: int, seed: int = 0) -> tuple[SecondMoment, torch.Tensor]:
    """A second moment of rank r < m: its null space is where ROCR may write."""
    g = torch.Generator().manual_seed(seed)
    K0 = torch.randn(m, r, generator=g)  # (m, r) preserved keys
    return SecondMoment(mom2=(K0 @ K0.T / r).float(), count=r), K0


def test_rocr_is_registered_as_unlearning() -> None:
    assert "rocr" in names("unlearn") and "rocr" not in names()
    assert get("rocr").kind == "unlearn"


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_state_redirected_protected_keys_untouched_revert_exact(arch, model_dirs) -> None:
    model, tok = load_model(model_dirs[arch])
    spec = arch_spec(model)
    m = spec.inner_size(model.config)
    moments = {layer: _low_rank_moment(m, m // 2, seed=layer) for layer in (0, 1)}
    hp = RocrHyperParams(layers=(0, 1), nullspace_threshold=1e-6, l2=1e-6)
    contexts = task_contexts(hp)
    z_name = spec.layer_name(1)
    anchor = mean_state_at_name(model, tok, z_name, contexts, ["Marie Curie"], False)[0]
    target0 = mean_state_at_name(model, tok, z_name, contexts, ["Barack Obama"], False)[0]
    weights0 = {layer: to_math(edited_weight(model, spec, layer), spec).detach().clone()
                for layer in (0, 1)}  # fmt: skip
    before = state_checksum(model)
    seq = EditSequence(model, tok, "rocr", hp, second_moment={k: v[0] for k, v in moments.items()})
    (delta,) = seq.apply([REQUEST])
    target = mean_state_at_name(model, tok, z_name, contexts, ["Barack Obama"], False)[0]
    assert float((target0 - anchor).norm() / anchor.norm()) > 0.1  # there was a gap to close
    assert float((target - anchor).norm() / anchor.norm()) < 1e-3
    for layer in (0, 1):
        change = to_math(edited_weight(model, spec, layer), spec).detach() - weights0[layer]
        K0 = moments[layer][1]  # (m, r)
        moved = (change.double() @ K0.double()).norm() / change.double().norm()
        assert float(moved) < 1e-5, f"layer {layer} moves preserved keys"
        assert torch.linalg.matrix_rank(change.double(), rtol=1e-6) == 1  # rank one
    assert delta.method == "rocr" and delta.meta["final_relative_error"] < 1e-3
    seq.revert_all()
    assert state_checksum(model) == before


def test_missing_anchor_and_empty_batch_are_refused(model_dirs) -> None:
    model, tok = load_model(model_dirs["gpt2"])
    sm, _ = _low_rank_moment(128, 64)
    seq = EditSequence(model, tok, "rocr", RocrHyperParams(layers=(0,)), second_moment=sm)
    before = state_checksum(model)
    with pytest.raises(EditorError, match="anchor"):
        seq.apply([UnlearnRequest("Barack Obama")])
    with pytest.raises(EditorError, match="layers"):
        EditSequence(model, tok, "rocr", RocrHyperParams(layers=(5,)), second_moment=sm).apply(
            [REQUEST]
        )
    assert state_checksum(model) == before and len(seq) == 0
