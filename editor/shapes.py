"""Released model shapes, recognised by `config.model_type` plus depth and width.

A method's default rows (`editor.methods.defaults`) are keyed by family (`config.model_type`)
and, where a release published settings for one model, by that model's shape name here
(`gpt2-medium`, `llama-3-8b`, ...). A loaded model is matched on its config alone: the
family, the number of layers, the residual width and, where two releases share those (Llama
2 7B and Llama 3 8B), the MLP width. Names, model classes and paths are never parsed.

A model of no listed shape falls back to its family's row, whose layers are scaled to the
model's depth; the choice says so. A user names a shape to use its rows anyway
(`preset` in the overrides), e.g. for a fine-tuned model whose config was changed.
This module imports no torch, so job submission can check a preset name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from editor.errors import EditorError


@dataclass(frozen=True)
class ModelShape:
    """One released model's shape: family, layers, residual and MLP widths, and its release."""

    name: str
    model_type: str
    n_layers: int
    hidden: int
    inner: int | None  # None: any MLP width
    source: str


def _shape(name: str, model_type: str, n_layers: int, hidden: int, inner: int | None,
           source: str) -> ModelShape:  # fmt: skip
    return ModelShape(name, model_type, n_layers, hidden, inner, source)


_GPT2 = "OpenAI GPT-2 release (Radford et al., 2019), Hugging Face openai-community/"
_LLAMA2 = "Llama 2 release (Touvron et al., 2023), meta-llama/Llama-2-"
SHAPES: tuple[ModelShape, ...] = (
    _shape("gpt2-small", "gpt2", 12, 768, 3072, _GPT2 + "gpt2"),
    _shape("gpt2-medium", "gpt2", 24, 1024, 4096, _GPT2 + "gpt2-medium"),
    _shape("gpt2-large", "gpt2", 36, 1280, 5120, _GPT2 + "gpt2-large"),
    _shape("gpt2-xl", "gpt2", 48, 1600, 6400, _GPT2 + "gpt2-xl"),
    _shape("gpt-j-6b", "gptj", 28, 4096, 16384, "EleutherAI/gpt-j-6b (Wang & Komatsuzaki, 2021)"),
    _shape("gpt-neox-20b", "gpt_neox", 44, 6144, 24576,
           "EleutherAI/gpt-neox-20b (Black et al., 2022)"),
    _shape("llama-2-7b", "llama", 32, 4096, 11008, _LLAMA2 + "7b-hf"),
    _shape("llama-2-13b", "llama", 40, 5120, 13824, _LLAMA2 + "13b-hf"),
    _shape("llama-3-8b", "llama", 32, 4096, 14336,
           "meta-llama/Meta-Llama-3-8B and Llama-3.1-8B (Llama Team, 2024)"),
    _shape("mistral-7b", "mistral", 32, 4096, 14336,
           "mistralai/Mistral-7B-v0.1 (Jiang et al., 2023)"),
    _shape("qwen2-7b", "qwen2", 28, 3584, 18944, "Qwen/Qwen2-7B and Qwen2.5-7B (Qwen Team, 2024)"),
)  # fmt: skip
SHAPES_BY_NAME = {s.name: s for s in SHAPES}
PRESET_KEY = "preset"  # the overrides field that names a shape whose rows to use


@dataclass(frozen=True)
class PresetChoice:
    """Which default row a method got for a model, and why.

    `shape`: the recognised (or user-named) released shape, None when none matched;
    `row`: the key of the row used (a shape name, a family or `knowledge`);
    `source`: where that row's values come from; `note`: how it was chosen.
    """

    method: str
    shape: str | None
    row: str
    source: str
    note: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


def model_dims(config: Any) -> tuple[str, int, int, int]:
    """Return (model_type, layers, residual width, MLP width) of a model config."""
    from editor.arch import arch_spec  # torch: only where a model is at hand

    spec = arch_spec(config)
    return spec.model_type, spec.n_layers(config), spec.hidden_size(config), spec.inner_size(config)


def match_shape(config: Any) -> ModelShape | None:
    """Return the released shape a model config has, or None."""
    try:
        model_type, n_layers, hidden, inner = model_dims(config)
    except (AttributeError, EditorError):  # an unsupported or partial config
        return None
    for shape in SHAPES:
        if (shape.model_type, shape.n_layers, shape.hidden) != (model_type, n_layers, hidden):
            continue
        if shape.inner is None or shape.inner == inner:
            return shape
    return None


def named_shape(name: str, config: Any) -> ModelShape:
    """Return the user-named shape, refusing an unknown name or another family's shape."""
    shape = SHAPES_BY_NAME.get(name)
    if shape is None:
        raise EditorError(f"unknown preset {name!r}; known: {', '.join(SHAPES_BY_NAME)}")
    model_type = getattr(config, "model_type", None)
    if shape.model_type != model_type:
        raise EditorError(f"preset {name!r} is for {shape.model_type} models, not {model_type!r}")
    return shape


def describe_shape(config: Any) -> str:
    """Return a model's dimensions in words (for the fallback note)."""
    try:
        model_type, n_layers, hidden, inner = model_dims(config)
    except (AttributeError, EditorError):
        return f"model_type {getattr(config, 'model_type', None)!r}"
    return f"{model_type} with {n_layers} layers, width {hidden}, MLP {inner}"
