"""Batched generation (greedy or seeded top-k sampling), answer extraction, n-gram entropy.

Prompts are left-padded with explicit position ids, so every row continues its own prompt
exactly as it would alone, and decoding reuses the key/value cache. Sampling draws from a
`torch.Generator` seeded per call, so the same prompts give the same texts every time.

`ngram_entropy` is the fluency measure of the ROME/MEMIT evaluation: the weighted mean of the
bigram and trigram entropies (bits) of a text, weights 2/3 and 4/3. Words are split by a
regular expression (\\w+ or single punctuation) instead of NLTK's tokenizer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from editor.errors import EditorError
from editor.packed import fused_activations

_WORDS = re.compile(r"\w+|[^\w\s]")
# a period ends an answer unless it closes an initial or a short abbreviation ("St.", "E.")
_SENTENCE_END = re.compile(r"(?<!\b[A-Z])(?<!\b[A-Z][a-z])\.(?=\s|$)")


@torch.no_grad()
def generate(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    max_new_tokens: int = 16,
    *,
    sample: bool = False,
    top_k: int = 5,
    seed: int = 0,
    batch_size: int = 64,
    stop: Callable[[str], bool] | None = None,
) -> list[str]:
    """Return the continuation of each prompt (greedy, or top-k sampled with a fixed seed)."""
    if max_new_tokens < 1:
        raise EditorError("max_new_tokens must be at least 1")
    out: list[str] = []
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    try:
        with fused_activations(model):
            for start in range(0, len(prompts), batch_size):
                chunk = prompts[start : start + batch_size]
                out += _generate_batch(
                    model, tokenizer, chunk, max_new_tokens, sample, top_k, generator, stop
                )
    finally:
        model.train(was_training)
    return out


def _cache_of(result: Any) -> dict[str, Any]:
    """Return the forward argument that passes `result`'s key/value cache on: `cache` since
    transformers 5 (`past_key_values` still works there, with a deprecation warning)."""
    name = "cache" if "cache" in result else "past_key_values"
    return {name: result[name]}


def _generate_batch(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    max_new_tokens: int,
    sample: bool,
    top_k: int,
    generator: torch.Generator,
    stop: Callable[[str], bool] | None,
) -> list[str]:
    """Generate for one batch of prompts; see `generate`."""
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    eos = tokenizer.eos_token_id
    encoded = [list(ids) for ids in tokenizer(list(prompts))["input_ids"]]
    if any(not ids for ids in encoded):
        raise EditorError("a prompt encodes to no tokens")
    B, L = len(encoded), max(len(ids) for ids in encoded)
    input_ids = torch.full((B, L), pad, dtype=torch.long)  # (B, L)
    attention = torch.zeros((B, L), dtype=torch.long)  # (B, L)
    for b, ids in enumerate(encoded):
        input_ids[b, L - len(ids) :] = torch.tensor(ids)
        attention[b, L - len(ids) :] = 1
    positions = (attention.cumsum(-1) - 1).clamp(min=0)  # (B, L)
    input_ids, attention, positions = (t.to(device) for t in (input_ids, attention, positions))
    result = model(
        input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True
    )
    generated: list[list[int]] = [[] for _ in range(B)]
    done = [False] * B
    last_pos = positions[:, -1:]  # (B, 1)
    for _ in range(max_new_tokens):
        logits = result.logits[:, -1].float()  # (B, V)
        if sample:
            values, indices = logits.topk(min(top_k, logits.shape[-1]), dim=-1)  # (B, k)
            probs = torch.softmax(values, dim=-1).cpu()  # (B, k)
            choice = torch.multinomial(probs, 1, generator=generator).to(device)  # (B, 1)
            nxt = indices.gather(1, choice)  # (B, 1)
        else:
            nxt = logits.argmax(-1, keepdim=True)  # (B, 1)
        for b, token in enumerate(nxt.squeeze(1).tolist()):
            if done[b]:
                continue
            if eos is not None and token == eos:
                done[b] = True
                continue
            generated[b].append(token)
            if stop is not None and stop(tokenizer.decode(generated[b])):
                done[b] = True
        if all(done):
            break
        attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)  # (B, L+t)
        last_pos = last_pos + 1  # (B, 1)
        result = model(
            input_ids=nxt,
            attention_mask=attention,
            position_ids=last_pos,
            use_cache=True,
            **_cache_of(result),
        )
    return [tokenizer.decode(ids) for ids in generated]


def ends_answer(text: str) -> bool:
    """Whether a generated text already holds a complete short answer (sentence end, newline)."""
    return "\n" in text or _SENTENCE_END.search(text) is not None


def first_answer(text: str) -> str:
    """Return the answer a continuation starts with: up to the first sentence end or newline."""
    text = text.split("\n", 1)[0]
    m = _SENTENCE_END.search(text)
    if m is not None:
        text = text[: m.start()]
    return text.strip().rstrip(",;:").strip()


def ngram_entropy(
    text: str, ns: Sequence[int] = (2, 3), weights: Sequence[float] = (2 / 3, 4 / 3)
) -> float:
    """Return the mean over n of weight_n · H_n, H_n the n-gram entropy in bits (ROME's GE)."""
    words = _WORDS.findall(text)
    terms = []
    for n, weight in zip(ns, weights, strict=True):
        grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
        total = sum(grams.values())
        entropy = -sum(c / total * math.log2(c / total) for c in grams.values()) if total else 0.0
        terms.append(weight * entropy)
    return sum(terms) / len(terms)
