"""Presets chosen by `config.model_type` plus depth and width, with their sources."""

from __future__ import annotations

import pytest
import transformers as tf
from editor_helpers import ARCHS, make_tokenizer, tiny_config

from editor.errors import EditorError
from editor.methods import get, names
from editor.methods.defaults import choose_row, hparams_and_choice
from editor.shapes import SHAPES, match_shape


class _Stub:
    """A model stand-in: the config is all the preset choice reads."""

    def __init__(self, config) -> None:
        self.config = config


# Configs of each released shape, as their config.json files give them (no weights built).
RELEASED = {
    "gpt2-small": tf.GPT2Config(n_layer=12, n_embd=768),
    "gpt2-medium": tf.GPT2Config(n_layer=24, n_embd=1024),
    "gpt2-large": tf.GPT2Config(n_layer=36, n_embd=1280),
    "gpt2-xl": tf.GPT2Config(n_layer=48, n_embd=1600),
    "gpt-j-6b": tf.GPTJConfig(n_layer=28, n_embd=4096),
    "gpt-neox-20b": tf.GPTNeoXConfig(
        num_hidden_layers=44, hidden_size=6144, intermediate_size=24576
    ),
    "llama-2-7b": tf.LlamaConfig(num_hidden_layers=32, hidden_size=4096, intermediate_size=11008),
    "llama-2-13b": tf.LlamaConfig(num_hidden_layers=40, hidden_size=5120, intermediate_size=13824),
    "llama-3-8b": tf.LlamaConfig(num_hidden_layers=32, hidden_size=4096, intermediate_size=14336),
    "mistral-7b": tf.MistralConfig(num_hidden_layers=32, hidden_size=4096, intermediate_size=14336),
    "qwen2-7b": tf.Qwen2Config(num_hidden_layers=28, hidden_size=3584, intermediate_size=18944),
}


def test_every_listed_shape_has_a_released_config_here() -> None:
    assert sorted(RELEASED) == sorted(s.name for s in SHAPES)


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_released_shapes_are_recognised_from_the_config(name) -> None:
    config = RELEASED[name]
    assert match_shape(config).name == name
    hp, choice = hparams_and_choice("rome", _Stub(config))
    assert choice.shape == name and choice.source
    # a released shape that ROME has a row for gets it whole, layer and fields unscaled
    row = get("rome").defaults.get(name)
    if row is not None:
        assert choice.row == name and hp.layer == row.layers[0]
        assert all(getattr(hp, k) == v for k, v in row.fields.items())


def test_rows_follow_their_releases() -> None:
    medium = _Stub(RELEASED["gpt2-medium"])
    hp, choice = hparams_and_choice("rome", medium)
    assert (hp.layer, hp.clamp_norm_factor) == (8, 3.0) and "gpt2-medium.json" in choice.source
    hp, _ = hparams_and_choice("rome", _Stub(RELEASED["llama-3-8b"]))
    assert (hp.layer, hp.mom2_adjustment, hp.v_num_grad_steps) == (5, False, 25)
    # MEMIT has no GPT-2-medium release: the family row (GPT-2 XL's), scaled to 24 layers
    hp, choice = hparams_and_choice("memit", medium)
    assert hp.layers == (6, 7, 8) and choice.row == "gpt2" and choice.shape == "gpt2-medium"
    assert "no memit row of its own" in choice.note
    hp, choice = hparams_and_choice("alphaedit", _Stub(RELEASED["llama-3-8b"]))
    assert choice.row == "llama-3-8b" and hp.layers == (4, 5, 6, 7, 8)


def test_llama_2_and_3_differ_only_in_mlp_width() -> None:
    odd = tf.LlamaConfig(num_hidden_layers=32, hidden_size=4096, intermediate_size=12000)
    assert match_shape(odd) is None


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_random_models_fall_back_to_their_family_clearly(arch) -> None:
    model = tf.AutoModelForCausalLM.from_config(tiny_config(arch, len(make_tokenizer())))
    assert match_shape(model.config) is None
    hp, choice = hparams_and_choice("memit", model)
    assert choice.shape is None and choice.row == arch
    assert choice.note.startswith(f"unknown shape ({arch} with 2 layers, width 32")
    assert "scaled to depth" in choice.note and choice.source
    assert all(0 <= x < 2 for x in hp.layers)


def test_a_user_named_preset_overrides_the_shape() -> None:
    tiny = _Stub(tiny_config("gpt2", 100))
    hp, choice = hparams_and_choice("rome", tiny, overrides={"preset": "gpt2-medium"})
    assert choice.shape == "gpt2-medium" and choice.note == "named by the user"
    assert hp.clamp_norm_factor == 3.0 and hp.layer == 0  # layer 8 of 24, scaled to 2 layers
    # fields still override the named preset's row
    hp, _ = hparams_and_choice("rome", tiny, overrides={"preset": "gpt2-medium", "layer": 1})
    assert hp.layer == 1
    with pytest.raises(EditorError, match="unknown preset 'gpt2-huge'; known: gpt2-small"):
        hparams_and_choice("rome", tiny, overrides={"preset": "gpt2-huge"})
    with pytest.raises(EditorError, match="'llama-3-8b' is for llama models, not 'gpt2'"):
        hparams_and_choice("rome", tiny, overrides={"preset": "llama-3-8b"})


@pytest.mark.parametrize("method", names(None))
def test_every_default_row_names_its_source(method) -> None:
    for key, row in get(method).defaults.items():
        assert row.source, f"{method} row {key!r} has no source"
    if get(method).defaults:
        _, choice = choose_row(method, _Stub(RELEASED["gpt2-xl"]))
        assert choice.source
