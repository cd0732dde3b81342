"""Test helpers: an in-test corpus, a BPE tokenizer trained on it, tiny random models.

Nothing is downloaded: the tokenizer is trained here and the models are random.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch

from contracts.types import EditRequest

BOS = "<|endoftext|>"

SUBJECTS = [
    "Barack Obama",
    "Marie Curie",
    "Ada Lovelace",
    "the Eiffel Tower",
    "Mount Fuji",
    "Danielle Darrieux",
    "Toko Yasuda",
    "Apple",
]
OBJECTS = ["Paris", "London", "Tokyo", "Berlin", "Rome", "piano", "guitar", "English"]
TEMPLATES = [
    "The mother of {} is",
    "{} is located in",
    "{} was born in",
    "{} plays the",
    "The native language of {} is",
    "{} is a",
    "In the city of {}, people speak",
]


def make_corpus() -> list[str]:
    """Return a small deterministic corpus of fact-like sentences."""
    out = []
    for i, (s, t) in enumerate(itertools.product(SUBJECTS, TEMPLATES)):
        out.append(t.format(s) + " " + OBJECTS[i % len(OBJECTS)] + ".")
    out += [
        "The quick brown fox jumps over the lazy dog.",
        "Paris is the capital of France, and Tokyo is the capital of Japan.",
        "Music, art and science: a short history of everything.",
    ]
    return out


def make_tokenizer(bos: bool = True, vocab_size: int = 400):
    """Train a GPT-2 style ByteLevel BPE (prefix space) on the corpus; BOS post-processor opt."""
    from editor.knowledge.tokenizer import train_tokenizer

    return train_tokenizer(make_corpus(), vocab_size, bos=bos)


def tiny_config(arch: str, vocab_size: int, n_layers: int = 2):
    """Return a tiny random config (hidden 32, `n_layers` layers) of one architecture."""
    import transformers as tf

    # initializer_range 0.2 (not 0.02) gives MLP outputs of a realistic norm relative to
    # the published v* step size (lr 0.5) and clamp, so ROME behaves as on a trained model.
    common = {"vocab_size": vocab_size, "bos_token_id": 0, "eos_token_id": 0}
    common["initializer_range"] = 0.2
    if arch == "gpt2":
        return tf.GPT2Config(n_embd=32, n_layer=n_layers, n_head=4, n_positions=128, **common)
    if arch == "gptj":
        return tf.GPTJConfig(
            n_embd=32, n_layer=n_layers, n_head=4, rotary_dim=4, n_positions=128, **common
        )
    if arch == "gpt_neox":
        return tf.GPTNeoXConfig(
            hidden_size=32,
            num_hidden_layers=n_layers,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=128,
            **common,
        )
    cls = {"llama": tf.LlamaConfig, "mistral": tf.MistralConfig, "qwen2": tf.Qwen2Config}[arch]
    return cls(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        **common,
    )


ARCHS = ["gpt2", "gptj", "gpt_neox", "llama", "mistral", "qwen2"]


def save_tiny_model(arch: str, path: Path, seed: int = 0, n_layers: int = 2) -> Path:
    """Create a random tiny model plus tokenizer and save them as an HF directory."""
    from transformers import AutoModelForCausalLM

    tok = make_tokenizer(bos=True)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, len(tok), n_layers))
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


CTX = ["{}", "A short story. {}"]


REQUEST = EditRequest(subject="Marie Curie", prompt="{} was born in", target_new="Tokyo")


def edit_setup(model_dir: Path, corpus: list[str], cache_dir: Path, request: EditRequest) -> tuple:
    """Load a model and return (model, tok, layer-0 second moment, checksum, lp(target_new))."""
    from editor.loading import load_model, state_checksum
    from editor.scoring import target_logprobs
    from editor.stats import layer_second_moment

    model, tok = load_model(model_dir)
    sm = {0: layer_second_moment(model, tok, 0, corpus, cache_dir=cache_dir)}
    before = state_checksum(model)
    lp0 = target_logprobs(model, tok, [request.rendered()], [request.target_new])
    return model, tok, sm, before, lp0
