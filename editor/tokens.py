"""Token-index arithmetic that survives a prepended BOS, prefix spaces and BPE merges.

Positions are always indices into the ids that `tokenizer(text)` returns (special tokens
included). Batches are right-padded, so position i of a row is position i of its sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from editor.errors import EditorError


def fill(template: str, subject: str) -> tuple[str, int, int]:
    """Return `(text, start, end)`: the template with `{}` replaced and the subject's char span."""
    if template.count("{}") != 1:
        raise EditorError(f"template must hold exactly one '{{}}': {template!r}")
    before, after = template.split("{}")
    return before + subject + after, len(before), len(before) + len(subject)


def compose(outer: str, inner: str) -> str:
    """Put template `inner` into the `{}` of template `outer` (context prefix + prompt)."""
    if outer.count("{}") != 1:
        raise EditorError(f"template must hold exactly one '{{}}': {outer!r}")
    before, after = outer.split("{}")
    return before + inner + after


def _last_index_by_offsets(offsets: Sequence[Sequence[int]], start: int, end: int) -> int | None:
    """Return the last token whose non-empty char span overlaps [start, end), or None."""
    found = None
    for i, (s, e) in enumerate(offsets):
        if e > s and s < end and e > start:
            found = i
    return found


def subject_last_token_index(
    tokenizer: Any, prompt_template: str, subject: str, prefix: str = ""
) -> int:
    """Index of the subject's last token in `tokenizer(prefix + template.format(subject))` ids."""
    body, start, end = fill(prompt_template, subject)
    text = prefix + body
    start, end = start + len(prefix), end + len(prefix)
    if subject.strip() == "":
        raise EditorError("subject must not be blank")
    while end > start and text[end - 1].isspace():  # trailing spaces belong to no subject token
        end -= 1
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, return_offsets_mapping=True)
        index = _last_index_by_offsets(enc["offset_mapping"], start, end)
        if index is not None:
            return index
    # Slow tokenizers: the tokens of the text cut right after the subject, minus one.
    upto = tokenizer(text[:end])["input_ids"]
    return len(upto) - 1


# Where a method reads its key and writes its value among the subject's tokens.
SUBJECT_POSITIONS = ("first", "last", "all")
FACT_TOKENS = {f"subject_{p}": p for p in SUBJECT_POSITIONS}


def fact_token_position(fact_token: str) -> str:
    """Return the subject position ("first", "last", "all") a `fact_token` setting names."""
    try:
        return FACT_TOKENS[fact_token]
    except KeyError:
        known = ", ".join(FACT_TOKENS)
        raise EditorError(
            f"fact_token {fact_token!r} is not supported; use one of {known}"
        ) from None


def subject_token_indices(
    tokenizer: Any, prompt_template: str, subject: str, position: str = "last", prefix: str = ""
) -> list[int]:
    """Indices of the subject's first, last or all tokens in `tokenizer(prefix + filled)` ids."""
    if position not in SUBJECT_POSITIONS:
        raise EditorError(f"subject position {position!r} is not one of {SUBJECT_POSITIONS}")
    last = subject_last_token_index(tokenizer, prompt_template, subject, prefix)
    if position == "last":
        return [last]
    body, start, _ = fill(prompt_template, subject)
    text, start = prefix + body, start + len(prefix)
    while start < len(text) and text[start].isspace():  # leading spaces join the first token
        start += 1
    first = None
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, return_offsets_mapping=True)
        first = next(
            (i for i, (s, e) in enumerate(enc["offset_mapping"]) if e > s and e > start), None
        )
    if first is None:  # slow tokenizers: the tokens of the text before the subject
        first = len(tokenizer(text[:start].rstrip())["input_ids"])
    first = min(first, last)
    return [first] if position == "first" else list(range(first, last + 1))


def target_ids(tokenizer: Any, target: str) -> list[int]:
    """Token ids of `" " + target` without special tokens (GPT-2 BPE convention).

    A leading BOS is dropped, and so is a lone SentencePiece "▁" emitted before a token that
    already starts with "▁" (Llama-style tokenizers add a dummy prefix to " target").
    """
    text = target if target.startswith(" ") else " " + target
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    bos = getattr(tokenizer, "bos_token_id", None)
    while ids and bos is not None and ids[0] == bos:
        ids = ids[1:]
    if len(ids) > 1:
        first, second = tokenizer.convert_ids_to_tokens(ids[:2])
        if first == "▁" and second.startswith("▁"):
            ids = ids[1:]
    if not ids:
        raise EditorError(f"target {target!r} encodes to no tokens")
    return ids


@dataclass
class TargetBatch:
    """A right-padded batch of prompt ids followed by all but the last target token.

    The logits at `pred_positions[b, t]` predict `target_ids[b, t]` where `target_mask[b, t]`.
    """

    input_ids: torch.Tensor  # (B, L)
    attention_mask: torch.Tensor  # (B, L)
    pred_positions: torch.Tensor  # (B, T)
    target_ids: torch.Tensor  # (B, T)
    target_mask: torch.Tensor  # (B, T) bool
    prompt_lengths: torch.Tensor  # (B,)

    def to(self, device: torch.device | str) -> TargetBatch:
        """Return the batch with every tensor on `device`."""
        return TargetBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """Return the kwargs for a model forward pass."""
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask}


def encode_prompt_targets(
    tokenizer: Any, prompts: Sequence[str], targets: Sequence[str | None]
) -> TargetBatch:
    """Build a right-padded batch `ids(prompt) + ids(target)[:-1]` with target positions.

    A target of None (or "") gives a prompt-only row (no target tokens).
    """
    if len(prompts) != len(targets):
        raise EditorError(f"{len(prompts)} prompts but {len(targets)} targets")
    if not prompts:
        raise EditorError("no prompts to encode")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rows, tgts, plens = [], [], []
    encoded = tokenizer(list(prompts))["input_ids"]
    cache: dict[str, list[int]] = {}
    for prompt, p_ids, target in zip(prompts, encoded, targets, strict=True):
        p_ids = list(p_ids)
        if not p_ids:
            raise EditorError(f"prompt {prompt!r} encodes to no tokens")
        if target and target not in cache:
            cache[target] = target_ids(tokenizer, target)
        t_ids = cache[target] if target else []
        rows.append(p_ids + t_ids[:-1])
        tgts.append(t_ids)
        plens.append(len(p_ids))
    n, length = len(rows), max(len(r) for r in rows)
    t_max = max([len(t) for t in tgts] + [1])
    input_ids = torch.full((n, length), pad, dtype=torch.long)  # (B, L)
    attention_mask = torch.zeros((n, length), dtype=torch.long)  # (B, L)
    pred_positions = torch.zeros((n, t_max), dtype=torch.long)  # (B, T)
    target_tensor = torch.zeros((n, t_max), dtype=torch.long)  # (B, T)
    target_mask = torch.zeros((n, t_max), dtype=torch.bool)  # (B, T)
    for b, (row, t_ids, plen) in enumerate(zip(rows, tgts, plens, strict=True)):
        input_ids[b, : len(row)] = torch.tensor(row)
        attention_mask[b, : len(row)] = 1
        k = len(t_ids)
        if k:
            pred_positions[b, :k] = torch.arange(plen - 1, plen - 1 + k)
            target_tensor[b, :k] = torch.tensor(t_ids)
            target_mask[b, :k] = True
    return TargetBatch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        pred_positions=pred_positions,
        target_ids=target_tensor,
        target_mask=target_mask,
        prompt_lengths=torch.tensor(plens, dtype=torch.long),
    )


def target_logprobs_from_logits(logits: torch.Tensor, batch: TargetBatch) -> torch.Tensor:
    """Per-token log-probs (B, T) of the targets (0 where masked) from logits (B, L, V)."""
    rows = torch.arange(logits.shape[0], device=logits.device).unsqueeze(1)  # (B, 1)
    picked = logits[rows, batch.pred_positions].float()  # (B, T, V)
    logp = torch.log_softmax(picked, dim=-1)  # (B, T, V)
    token_lp = torch.gather(logp, 2, batch.target_ids.unsqueeze(-1)).squeeze(-1)  # (B, T)
    return token_lp * batch.target_mask  # (B, T)
