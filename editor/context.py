"""ROME's random-prefix context templates: `"{}"` plus model-generated `"<text>. {}"`.

Each prefix is sampled from the model itself with top-k=5, starting from the BOS token
(`<|endoftext|>` for GPT-2 style tokenizers). A length of n tokens counts the seed token,
so n-1 tokens are sampled. Sampling is seeded and deterministic on a given device.

MEMIT's scheme seeds the sampling with words instead ("The", "Therefore", "Because", "I",
"You"): `seed_texts` gives them; each group then draws n / len(seed_texts) texts per word,
the length counts the word's tokens (and a BOS the tokenizer adds), and the word is kept.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from editor.errors import EditorError
from editor.loading import state_checksum

DEFAULT_LENGTH_PARAMS: tuple[tuple[int, int], ...] = ((5, 10), (10, 10))
TOP_K = 5
_MEMORY: dict[str, list[str]] = {}


def _seed_token(tokenizer: Any) -> int:
    """Return the id generation starts from: BOS, else EOS."""
    for tid in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    raise EditorError("tokenizer has no BOS or EOS token to seed context generation")


def _extend_top_k(
    model: nn.Module, ids: torch.Tensor, steps: int, top_k: int, gen: torch.Generator
) -> torch.Tensor:
    """Return `ids` (n, t) extended by `steps` tokens (none if ≤ 0), each sampled top-k."""
    for _ in range(max(0, steps)):
        mask = torch.ones_like(ids)  # (n, t): no padding, said so the model need not guess
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, -1, :]
        logits = logits.float()  # (n, V)
        top_val, top_idx = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1)  # (n, k)
        probs = torch.softmax(top_val, dim=-1)  # (n, k)
        choice = torch.multinomial(probs, 1, generator=gen)  # (n, 1)
        ids = torch.cat([ids, top_idx.gather(1, choice)], dim=1)  # (n, t+1)
    return ids


@torch.no_grad()
def sample_prefixes(
    model: nn.Module, tokenizer: Any, length: int, n: int, *, seed: int = 0, top_k: int = TOP_K
) -> list[str]:
    """Sample `n` texts of `length` tokens (seed token included) with top-k sampling."""
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    ids = torch.full((n, 1), _seed_token(tokenizer), dtype=torch.long, device=device)  # (n, 1)
    ids = _extend_top_k(model, ids, length - 1, top_k, gen)  # (n, length)
    texts = tokenizer.batch_decode(ids[:, 1:].cpu(), skip_special_tokens=True)
    return [clean_prefix(t) for t in texts]


@torch.no_grad()
def sample_from_texts(
    model: nn.Module,
    tokenizer: Any,
    seed_texts: Sequence[str],
    length: int,
    n_per_text: int,
    *,
    seed: int = 0,
    top_k: int = TOP_K,
) -> list[str]:
    """Continue each seed text to `length` tokens (its own tokens included), top-k sampling."""
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    out: list[str] = []
    for text in seed_texts:
        start = list(tokenizer(text)["input_ids"])
        ids = torch.tensor([start] * n_per_text, dtype=torch.long, device=device)  # (n, t0)
        ids = _extend_top_k(model, ids, length - len(start), top_k, gen)  # (n, max(t0, length))
        texts = tokenizer.batch_decode(ids.cpu(), skip_special_tokens=True)
        out += [clean_prefix(t) for t in texts]
    return out


def clean_prefix(text: str) -> str:
    """Normalise a generated prefix as the reference code does and drop braces."""
    text = unicodedata.normalize("NFKD", text).replace("\n\n", " ")
    return text.replace("<|endoftext|>", "").replace("{", "").replace("}", "")


def check_templates(templates: Sequence[str]) -> list[str]:
    """Validate that every template holds exactly one `{}`; return them as a list."""
    out = list(templates)
    if not out:
        raise EditorError("no context templates given")
    for t in out:
        if t.count("{}") != 1:
            raise EditorError(f"context template must hold exactly one '{{}}': {t!r}")
    return out


def context_templates(
    model: nn.Module,
    tokenizer: Any,
    length_params: Sequence[Sequence[int]] = DEFAULT_LENGTH_PARAMS,
    *,
    seed: int = 0,
    fixed: Sequence[str] | None = None,
    model_key: str | None = None,
    cache_dir: str | Path | None = None,
    seed_texts: Sequence[str] | None = None,
) -> list[str]:
    """Return `["{}"] + [prefix + ". {}" ...]`, cached per model checksum (or `fixed` as given).

    With `seed_texts` (MEMIT) every group continues those texts instead of the BOS token.
    """
    if fixed is not None:
        return check_templates(fixed)
    params = [(int(length), int(n)) for length, n in length_params]
    model_key = model_key or state_checksum(model)
    seeds = list(seed_texts) if seed_texts else None
    key = json.dumps([model_key, params, seed] + ([seeds] if seeds else []))
    if key in _MEMORY:
        return list(_MEMORY[key])
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{hashlib.sha256(key.encode()).hexdigest()}.json"
        if path.is_file():
            templates = check_templates(json.loads(path.read_text(encoding="utf-8")))
            _MEMORY[key] = templates
            return list(templates)
    was_training = model.training
    model.eval()
    try:
        templates = ["{}"]
        for group, (length, n) in enumerate(params):
            if seeds:
                per_text = max(1, n // len(seeds))
                prefixes = sample_from_texts(
                    model, tokenizer, seeds, length, per_text, seed=seed + group
                )
            else:
                prefixes = sample_prefixes(model, tokenizer, length, n, seed=seed + group)
            templates += [p + ". {}" for p in prefixes]
    finally:
        model.train(was_training)
    _MEMORY[key] = templates
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(templates), encoding="utf-8")
    return list(templates)


def clear_cache() -> None:
    """Forget the in-memory template cache."""
    _MEMORY.clear()
