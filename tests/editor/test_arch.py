"""Architecture table: lookup by model_type, module names, weight orientation."""

from __future__ import annotations

import types

import pytest
import torch
from editor_helpers import ARCHS
from torch import nn
from transformers.pytorch_utils import Conv1D

from editor.arch import (
    ARCH_SPECS,
    arch_spec,
    edited_weight,
    from_math,
    get_module,
    supported_model_types,
    to_math,
    unembedding,
)
from editor.delta import Delta
from editor.errors import UnsupportedArchitectureError
from editor.loading import load_model


def test_table_covers_the_six_families() -> None:
    assert supported_model_types() == sorted(ARCHS)


def test_unknown_model_type_names_it_and_the_supported_list() -> None:
    cfg = types.SimpleNamespace(model_type="gpt2_custom")
    with pytest.raises(UnsupportedArchitectureError, match="gpt2_custom") as info:
        arch_spec(cfg)
    assert "llama" in str(info.value) and "gpt_neox" in str(info.value)


def test_lookup_is_by_model_type_not_name() -> None:
    cfg = types.SimpleNamespace(model_type="llama", name_or_path="my-gpt2-finetune")
    assert arch_spec(cfg) is ARCH_SPECS["llama"]


@pytest.mark.parametrize("arch", ARCHS)
def test_every_module_template_resolves(arch: str, model_dirs) -> None:
    model, _ = load_model(model_dirs[arch])
    spec = arch_spec(model)
    cfg = model.config
    assert spec.n_layers(cfg) == 2
    d, m = spec.hidden_size(cfg), spec.inner_size(cfg)
    for layer in range(spec.n_layers(cfg)):
        for name in (spec.layer_name(layer), spec.mlp_name(layer), spec.attn_name(layer)):
            get_module(model, name)
        weight = edited_weight(model, spec, layer)
        assert to_math(weight, spec).shape == (d, m)
        assert isinstance(get_module(model, spec.down_proj_name(layer)), Conv1D) == spec.conv1d
    get_module(model, spec.final_norm)
    get_module(model, spec.embed)
    assert unembedding(model, spec).weight.shape == (cfg.vocab_size, d)
    assert spec.max_positions(cfg) == 128


def test_missing_module_raises() -> None:
    with pytest.raises(UnsupportedArchitectureError, match="nope"):
        get_module(nn.Linear(2, 2), "nope")


def test_conv1d_orientation_matches_equivalent_linear() -> None:
    torch.manual_seed(0)
    d, m = 6, 10
    conv = Conv1D(d, m)  # weight (m, d): stored transpose of math W
    nn.init.normal_(conv.weight)
    lin = nn.Linear(m, d)
    with torch.no_grad():
        lin.weight.copy_(conv.weight.T)
        lin.bias.copy_(conv.bias)
    gpt2, llama = ARCH_SPECS["gpt2"], ARCH_SPECS["llama"]
    assert torch.equal(to_math(conv.weight, gpt2), to_math(lin.weight, llama))
    U, V = torch.randn(d, 1), torch.randn(m, 1)  # math update U Vᵀ: (d, m)
    Delta.low_rank("t", "weight", conv.weight.shape, U, V, transpose=True).apply(conv)
    Delta.low_rank("t", "weight", lin.weight.shape, U, V, transpose=False).apply(lin)
    x = torch.randn(3, 4, m)
    torch.testing.assert_close(conv(x), lin(x), rtol=1e-5, atol=1e-5)
    math = torch.randn(d, m)
    assert torch.equal(from_math(math, gpt2), math.T)
    assert torch.equal(from_math(math, llama), math)
