"""Per-architecture module names and weight layouts, keyed by `config.model_type`.

Every method edits the MLP down-projection `W_out` of some layer. In *math orientation*
`W` has shape (d_out, d_in) = (hidden, inner) and maps a key `k` (inner) to a value (hidden).
GPT-2 stores that weight as a `Conv1D` whose `.weight` is the transpose, (d_in, d_out);
every other supported family uses `nn.Linear` with `.weight` of shape (d_out, d_in).

The table is looked up by `config.model_type` only; model or class names are never parsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from editor.errors import UnsupportedArchitectureError


@dataclass(frozen=True)
class ArchSpec:
    """Module-name templates (`{}` = layer index) and weight layout of one model family."""

    model_type: str
    layer: str
    mlp: str
    down_proj: str
    attn: str
    final_norm: str
    embed: str
    unembed: tuple[str, ...]
    conv1d: bool
    inner_attr: str
    max_positions_attr: str

    def layer_name(self, layer: int) -> str:
        """Return the decoder block module name of `layer`."""
        return self.layer.format(layer)

    def mlp_name(self, layer: int) -> str:
        """Return the MLP module name of `layer`."""
        return self.mlp.format(layer)

    def down_proj_name(self, layer: int) -> str:
        """Return the edited down-projection module name of `layer`."""
        return self.down_proj.format(layer)

    def attn_name(self, layer: int) -> str:
        """Return the attention module name of `layer`."""
        return self.attn.format(layer)

    def n_layers(self, config: Any) -> int:
        """Return the number of decoder blocks."""
        return int(config.num_hidden_layers)

    def hidden_size(self, config: Any) -> int:
        """Return the residual-stream width d."""
        return int(config.hidden_size)

    def inner_size(self, config: Any) -> int:
        """Return the MLP inner width m (the key dimension of the down-projection)."""
        value = getattr(config, self.inner_attr, None)
        return int(value) if value is not None else 4 * self.hidden_size(config)

    def max_positions(self, config: Any) -> int:
        """Return the maximum sequence length the model was configured for."""
        return int(getattr(config, self.max_positions_attr))


# (MLP width, context length) attribute names of the two config conventions
_GPT2_CONFIG = ("n_inner", "n_positions")
_HF_CONFIG = ("intermediate_size", "max_position_embeddings")


def _decoder(
    model_type: str,
    blocks: str,
    down_proj: str,
    attn: str,
    final_norm: str,
    embed: str,
    config_attrs: tuple[str, str],
    unembed: tuple[str, ...] = ("lm_head",),
    conv1d: bool = False,
) -> ArchSpec:
    """Return the spec of a decoder whose block `i` is `{blocks}.i` with its MLP at `.mlp`."""
    layer = blocks + ".{}"
    return ArchSpec(
        model_type=model_type,
        layer=layer,
        mlp=f"{layer}.mlp",
        down_proj=f"{layer}.mlp.{down_proj}",
        attn=f"{layer}.{attn}",
        final_norm=final_norm,
        embed=embed,
        unembed=unembed,
        conv1d=conv1d,
        inner_attr=config_attrs[0],
        max_positions_attr=config_attrs[1],
    )


def _llama_like(model_type: str) -> ArchSpec:
    return _decoder(
        model_type, "model.layers", "down_proj", "self_attn", "model.norm",
        "model.embed_tokens", _HF_CONFIG,
    )  # fmt: skip


ARCH_SPECS: dict[str, ArchSpec] = {
    "gpt2": _decoder(
        "gpt2", "transformer.h", "c_proj", "attn", "transformer.ln_f", "transformer.wte",
        _GPT2_CONFIG, conv1d=True,
    ),
    "gptj": _decoder(
        "gptj", "transformer.h", "fc_out", "attn", "transformer.ln_f", "transformer.wte",
        _GPT2_CONFIG,
    ),
    "gpt_neox": _decoder(
        "gpt_neox", "gpt_neox.layers", "dense_4h_to_h", "attention",
        "gpt_neox.final_layer_norm", "gpt_neox.embed_in", _HF_CONFIG,
        # transformers>=5 renames `embed_out` to `lm_head`; older releases keep `embed_out`.
        unembed=("lm_head", "embed_out"),
    ),
    "llama": _llama_like("llama"),
    "mistral": _llama_like("mistral"),
    "qwen2": _llama_like("qwen2"),
}  # fmt: skip


def supported_model_types() -> list[str]:
    """Return the model types with an entry in the table, sorted."""
    return sorted(ARCH_SPECS)


def arch_spec(model_or_config: Any) -> ArchSpec:
    """Return the `ArchSpec` for a model or config, by `config.model_type`."""
    config = getattr(model_or_config, "config", model_or_config)
    model_type = getattr(config, "model_type", None)
    spec = ARCH_SPECS.get(model_type) if isinstance(model_type, str) else None
    if spec is None:
        supported = ", ".join(supported_model_types())
        raise UnsupportedArchitectureError(
            f"unsupported model_type {model_type!r}; supported: {supported}"
        )
    return spec


def get_module(model: nn.Module, name: str) -> nn.Module:
    """Return the submodule called `name`, with an error naming it if absent."""
    try:
        return model.get_submodule(name)
    except AttributeError as exc:
        raise UnsupportedArchitectureError(f"model has no module {name!r}") from exc


def unembedding(model: nn.Module, spec: ArchSpec) -> nn.Module:
    """Return the unembedding (output projection) module of `model`."""
    for name in spec.unembed:
        try:
            return model.get_submodule(name)
        except AttributeError:
            continue
    raise UnsupportedArchitectureError(f"model has none of the unembedding modules {spec.unembed}")


def edited_weight(model: nn.Module, spec: ArchSpec, layer: int) -> nn.Parameter:
    """Return the weight parameter of the down-projection at `layer`."""
    return get_module(model, spec.down_proj_name(layer)).weight


def edited_weight_name(spec: ArchSpec, layer: int) -> str:
    """Return the parameter name of the down-projection weight at `layer`."""
    return f"{spec.down_proj_name(layer)}.weight"


def to_math(weight: torch.Tensor, spec: ArchSpec) -> torch.Tensor:
    """View a stored down-projection weight in math orientation (d_out, d_in)."""
    return weight.T if spec.conv1d else weight  # (d_out, d_in)


def from_math(matrix: torch.Tensor, spec: ArchSpec) -> torch.Tensor:
    """View a math-orientation (d_out, d_in) matrix in the stored orientation."""
    return matrix.T if spec.conv1d else matrix  # Conv1D: (d_in, d_out); Linear: (d_out, d_in)
