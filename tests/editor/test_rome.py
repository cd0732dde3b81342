"""ROME on tiny random models of all six families, loaded from safetensors directories."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from editor_helpers import ARCHS

from contracts.types import EditRequest
from editor.arch import arch_spec, edited_weight, get_module, to_math
from editor.context import context_templates
from editor.delta import revert_all
from editor.errors import EditorError
from editor.loading import load_model, state_checksum
from editor.methods import get
from editor.methods.rome import RomeHyperParams, apply_rome, key_and_output
from editor.scoring import target_logprobs
from editor.stats import layer_second_moment

REQUEST = EditRequest(
    subject="Barack Obama",
    prompt="The mother of {} is",
    target_new="Tokyo",
    target_true="Ann Dunham",
    request_id="req-1",
)


def _setup(arch: str, model_dirs, corpus, tmp_path: Path, layer: int = 0):
    model, tok = load_model(model_dirs[arch])
    sm = layer_second_moment(model, tok, layer, corpus, cache_dir=tmp_path / "stats")
    return model, tok, sm


@pytest.mark.parametrize("arch", ARCHS)
def test_rome_edit(arch: str, model_dirs, corpus, tmp_path: Path) -> None:
    model, tok, sm = _setup(arch, model_dirs, corpus, tmp_path)
    spec = arch_spec(model)
    hp = RomeHyperParams(layer=0)
    down = get_module(model, spec.down_proj_name(0))
    before_sum = state_checksum(model)
    W0 = to_math(edited_weight(model, spec, 0).detach().clone(), spec).double()  # (d, m)
    lp_before = target_logprobs(model, tok, [REQUEST.rendered()], [REQUEST.target_new])
    g = torch.Generator().manual_seed(0)
    k_free = torch.randn(spec.inner_size(model.config), generator=g)  # (m,)
    with torch.no_grad():
        out_before = down(k_free - 0.0)

    delta, info = apply_rome(model, tok, REQUEST, hp, sm)

    # the edited module maps k0 to v* (k0 recomputed on the edited model, bare prompt)
    k0, out = key_and_output(model, tok, spec, 0, REQUEST.prompt, REQUEST.subject)
    torch.testing.assert_close(k0, info["k0"], rtol=1e-5, atol=1e-6)
    v_star = info["v_star"]
    assert float((out - v_star).norm() / v_star.norm()) < 1e-4
    # the update is rank one and equals rho uᵀ
    W1 = to_math(edited_weight(model, spec, 0).detach(), spec).double()
    assert int(torch.linalg.matrix_rank(W1 - W0, rtol=1e-5)) == 1
    assert delta.entries[0].rank == 1 and delta.entries[0].transpose == spec.conv1d
    # u = C⁻¹ k̄ / ‖C⁻¹ k̄‖
    u_ref = sm.solve(info["k_bar"])
    torch.testing.assert_close(info["u"], u_ref / u_ref.norm(), rtol=1e-4, atol=1e-6)
    # a key orthogonal to u gives the same output as before
    u = info["u"]
    k_perp = k_free - (k_free @ u) * u  # (m,)
    with torch.no_grad():
        before_perp = (W0 @ k_perp.double()).float()
        after_perp = (W1 @ k_perp.double()).float()
    assert float((after_perp - before_perp).norm() / before_perp.norm()) < 1e-4
    k_par = k_free + 3.0 * u  # (m,) a key with uᵀk ≠ 0 does change
    assert float(((W1 - W0) @ k_par.double()).norm()) > 1e-3 * float(before_perp.norm())
    # P(target_new) rises on the rewrite prompt
    lp_after = target_logprobs(model, tok, [REQUEST.rendered()], [REQUEST.target_new])
    assert float(lp_after) > float(lp_before)
    assert set(info["timings"]) == {"context", "key", "v_star", "solve"}
    assert delta.method == "rome" and delta.request_ids == ["req-1"]
    assert len(info["losses"]) <= hp.v_num_grad_steps
    # revert restores the weights exactly
    delta.revert(model)
    assert state_checksum(model) == before_sum
    with torch.no_grad():
        torch.testing.assert_close(down(k_free), out_before)


def test_conv1d_edit_equals_linear_edit(model_dirs, corpus, tmp_path: Path) -> None:
    """The stored Conv1D update acts like the math-orientation update on an nn.Linear."""
    model, tok, sm = _setup("gpt2", model_dirs, corpus, tmp_path)
    conv = model.get_submodule("transformer.h.0.mlp.c_proj")
    lin = torch.nn.Linear(conv.weight.shape[0], conv.weight.shape[1])
    with torch.no_grad():
        lin.weight.copy_(conv.weight.T)
        lin.bias.copy_(conv.bias)
    delta, info = apply_rome(model, tok, REQUEST, RomeHyperParams(layer=0), sm)
    with torch.no_grad():
        lin.weight.add_(delta.entries[0].math_update().float())
        x = torch.randn(5, conv.weight.shape[0])
        torch.testing.assert_close(conv(x), lin(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(lin(info["k0"]), info["v_star"], rtol=1e-4, atol=1e-5)


def test_sequential_requests_through_the_registry(model_dirs, corpus, tmp_path: Path) -> None:
    model, tok, sm = _setup("llama", model_dirs, corpus, tmp_path, layer=1)
    method = get("rome")
    assert method.hparams_cls is RomeHyperParams and method.needs_second_moment
    before = state_checksum(model)
    second = EditRequest(subject="Mount Fuji", prompt="{} is located in", target_new="Berlin")
    hp = RomeHyperParams(layer=1, context_template_length_params=((5, 3),))
    deltas, infos = method.apply(model, tok, [REQUEST, second], hp, second_moment=sm)
    assert len(deltas) == 2 and len(infos) == 2
    spec = arch_spec(model)
    _, out = key_and_output(model, tok, spec, 1, second.prompt, second.subject)
    assert float((out - infos[1]["v_star"]).norm() / infos[1]["v_star"].norm()) < 1e-4
    # the first edit, computed before the second, still holds approximately
    _, out = key_and_output(model, tok, spec, 1, REQUEST.prompt, REQUEST.subject)
    assert float((out - infos[0]["v_star"]).norm() / infos[0]["v_star"].norm()) < 0.1
    assert deltas[1].entries[0].sha_before == deltas[0].entries[0].sha_after
    revert_all(model, deltas)
    assert state_checksum(model) == before


def test_without_mom2_adjustment(model_dirs, tmp_path: Path) -> None:
    model, tok = load_model(model_dirs["qwen2"])
    hp = RomeHyperParams(layer=1, mom2_adjustment=False, v_num_grad_steps=5)
    templates = context_templates(model, tok, fixed=["{}", "Once upon a time. {}"])
    _, info = apply_rome(model, tok, REQUEST, hp, None, context_templates=templates)
    torch.testing.assert_close(info["u"], info["k_bar"] / info["k_bar"].norm())
    with pytest.raises(EditorError, match="second moment"):
        apply_rome(model, tok, REQUEST, RomeHyperParams(layer=1), None)


def test_hparams_round_trip_and_guards(model_dirs) -> None:
    data = RomeHyperParams(layer=3).to_dict()
    data["context_template_length_params"] = [[5, 10], [10, 10]]
    assert RomeHyperParams.from_dict(data) == RomeHyperParams(layer=3)
    model, tok = load_model(model_dirs["gpt2"])
    with pytest.raises(EditorError, match="out of range"):
        apply_rome(model, tok, REQUEST, RomeHyperParams(layer=5, mom2_adjustment=False), None)


@pytest.mark.parametrize("fact_token", ["subject_first", "subject_all"])
def test_rome_keys_at_the_first_or_every_subject_token(
    fact_token: str, model_dirs, corpus, tmp_path: Path
) -> None:
    model, tok, sm = _setup("gpt2", model_dirs, corpus, tmp_path)
    spec = arch_spec(model)
    position = fact_token.removeprefix("subject_")
    first_k, _ = key_and_output(model, tok, spec, 0, REQUEST.prompt, REQUEST.subject, "first")
    last_k, _ = key_and_output(model, tok, spec, 0, REQUEST.prompt, REQUEST.subject, "last")
    assert not torch.allclose(first_k, last_k)  # "Barack Obama" is more than one token here
    hp = RomeHyperParams(layer=0, fact_token=fact_token, v_num_grad_steps=12)
    _, info = apply_rome(model, tok, REQUEST, hp, sm)
    k0, out = key_and_output(model, tok, spec, 0, REQUEST.prompt, REQUEST.subject, position)
    torch.testing.assert_close(k0, info["k0"], rtol=1e-5, atol=1e-6)
    if position == "first":
        torch.testing.assert_close(k0, first_k, rtol=1e-5, atol=1e-6)  # layer 0's input
    # the edited module maps the key at the chosen tokens to v* (the mean over them for "all")
    v_star = info["v_star"]
    assert float((out - v_star).norm() / v_star.norm()) < 1e-4


def test_rome_refuses_an_unknown_fact_token(model_dirs) -> None:
    model, tok = load_model(model_dirs["gpt2"])
    hp = RomeHyperParams(layer=0, mom2_adjustment=False, fact_token="last")
    with pytest.raises(EditorError, match="fact_token 'last' is not supported"):
        apply_rome(model, tok, REQUEST, hp, None)
