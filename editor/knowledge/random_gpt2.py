"""A random (untrained) tiny GPT-2 saved as an HF directory: the model of job-system tests and
benches, where the weights' knowledge does not matter."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from editor.knowledge.tokenizer import train_tokenizer


def save_random_gpt2(
    path: Path, texts: Sequence[str], vocab_size: int, seed: int = 0, hidden: int = 32
) -> Path:
    """Save a random 2-layer GPT-2 with a BPE tokenizer of `vocab_size` trained on `texts`."""
    import transformers as tf

    tok = train_tokenizer(texts, vocab_size, bos=True)
    torch.manual_seed(seed)
    config = tf.GPT2Config(
        n_embd=hidden,
        n_layer=2,
        n_head=4,
        n_positions=64,
        vocab_size=len(tok),
        bos_token_id=0,
        eos_token_id=0,
        initializer_range=0.2,
    )
    tf.GPT2LMHeadModel(config).save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path
