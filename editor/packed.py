"""Score several answers of many prompts with one forward pass per batch and no padding waste.

Each prompt is one *segment*: its tokens, then every candidate answer as a branch that sees
the prompt and its own earlier tokens only (a tree attention mask), with position ids that
continue from the prompt in every branch. So the prompt is read once, whatever the number of
candidates, and the result equals scoring each (prompt, answer) pair on its own. Segments are
packed first-fit into rows, the rows into batches of about `batch_tokens` tokens; the output
head runs only where a target token is predicted.

For answers marked `boundary`, the last answer token is fed too, so the prediction after the
answer shows whether greedy decoding would stop there (the next token starts a new word, is
punctuation or end of text) or run on into a longer word ("London" → "Londonderry").

Models whose attention cannot take a 4-D mask (flash attention) fall back to one
right-padded row per pair (`editor.scoring.score_targets`).

While scoring, GPT-2's composite `gelu_new` (six element-wise kernels) runs as the fused
tanh-GELU kernel, the same function up to float rounding; on a small model on a CPU the
activation otherwise costs more than the matrix products.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from editor.errors import EditorError
from editor.scoring import score_targets
from editor.tokens import target_ids

_WORD_MARKERS = ("Ġ", "Ċ", "▁", "\u2581", " ", "\n")
_TREE_ATTENTION = {"sdpa", "eager"}


@dataclass
class CandidateScores:
    """Scores of every (prompt, candidate) pair, flattened in input order."""

    sum_logprob: torch.Tensor  # (N,) Σ_t log P(c_t | prompt, c_<t)
    n_tokens: torch.Tensor  # (N,)
    all_argmax: torch.Tensor  # (N,) bool: every candidate token is the argmax
    stops: torch.Tensor  # (N,) bool: greedy decoding stops after the candidate (boundary only)

    @property
    def mean_logprob(self) -> torch.Tensor:
        """Return the length-normalised log-probability (N,)."""
        return self.sum_logprob / self.n_tokens.clamp(min=1)

    @property
    def exact_match(self) -> torch.Tensor:
        """Return whether greedy decoding yields exactly the candidate, as a word (N,)."""
        return self.all_argmax & self.stops


_CONTINUATION: dict[tuple[int, int], torch.Tensor] = {}


def continuation_table(tokenizer: Any, vocab_size: int) -> torch.Tensor:
    """Return (V,) bool: the token continues the word before it (no space, starts alphanumeric)."""
    key = (id(tokenizer), vocab_size)
    if key not in _CONTINUATION:
        table = torch.zeros(vocab_size, dtype=torch.bool)  # (V,)
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        n = min(vocab_size, len(tokenizer))
        for i, piece in enumerate(tokenizer.convert_ids_to_tokens(list(range(n)))):
            if i in special or not piece or piece.startswith(_WORD_MARKERS):
                continue
            table[i] = piece[0].isalnum()
        _CONTINUATION[key] = table
    return _CONTINUATION[key]


@contextmanager
def fused_activations(model: nn.Module) -> Iterator[None]:
    """Swap composite `NewGELUActivation` modules for the fused tanh-GELU, then restore them."""
    try:
        from transformers.activations import GELUTanh, NewGELUActivation
    except ImportError:  # pragma: no cover - older transformers
        yield
        return
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is NewGELUActivation:
                swapped.append((parent, name, child))
    try:
        for parent, name, _ in swapped:
            setattr(parent, name, GELUTanh())
        yield
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


def _pack(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """First-fit-decreasing: return rows of segment indices whose lengths fit `capacity`."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        for r, free in enumerate(room):
            if lengths[i] <= free:
                rows[r].append(i)
                room[r] -= lengths[i]
                break
        else:
            rows.append([i])
            room.append(capacity - lengths[i])
    return rows


def _tree_mask(seg: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
    """Return (R, 1, L, L) bool: query q may attend key k (same segment, causal, own branch).

    `seg` is -1 on padding and -2 on a shared BOS, which every token of its row may attend.
    """
    L = seg.shape[1]
    same = seg.unsqueeze(2) == seg.unsqueeze(1)  # (R, L, L)
    causal = torch.ones(L, L, dtype=torch.bool).tril()  # (L, L)
    key_branch = branch.unsqueeze(1)  # (R, 1, L)
    visible = (key_branch == 0) | (key_branch == branch.unsqueeze(2))  # (R, L, L)
    mask = same & causal & visible & (seg >= 0).unsqueeze(2)  # (R, L, L)
    mask |= ((seg == -2).unsqueeze(1) & (seg >= 0).unsqueeze(2)) & causal  # (R, L, L)
    mask |= torch.eye(L, dtype=torch.bool)  # padding and BOS attend to themselves
    return mask.unsqueeze(1)  # (R, 1, L, L)


def _attention_mask(model: nn.Module, mask: torch.Tensor) -> torch.Tensor:
    """Return the tree mask in the form the model's attention expects (bool or additive)."""
    impl = getattr(model.config, "_attn_implementation", "eager")
    if impl == "sdpa":
        return mask
    dtype = next(model.parameters()).dtype
    return torch.zeros(mask.shape, dtype=dtype).masked_fill(~mask, torch.finfo(dtype).min)


def _fallback(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    candidates: Sequence[Sequence[str]],
    boundary: Sequence[Sequence[bool]],
) -> CandidateScores:
    """One right-padded row per pair; `stops` from a second pass with the full answer fed."""
    flat_p = [p for p, cands in zip(prompts, candidates, strict=True) for _ in cands]
    flat_c = [c for cands in candidates for c in cands]
    scores = score_targets(model, tokenizer, flat_p, flat_c)
    flags = [b for bs in boundary for b in bs]
    stops = torch.ones(len(flat_c), dtype=torch.bool)  # (N,)
    idx = [i for i, b in enumerate(flags) if b]
    if idx:
        table = continuation_table(tokenizer, model.get_output_embeddings().weight.shape[0])
        for i in idx:
            ids = tokenizer(flat_p[i] + " " + flat_c[i].lstrip())["input_ids"]
            logits = model(torch.tensor([ids]), use_cache=False).logits[0, -1]  # (V,)
            stops[i] = not bool(table[int(logits.argmax())])
    return CandidateScores(scores.sum_logprob, scores.n_tokens, scores.all_argmax, stops)


@torch.no_grad()
def score_candidates(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    candidates: Sequence[Sequence[str]],
    boundary: Sequence[Sequence[bool]] | None = None,
    batch_tokens: int = 2048,
    row_tokens: int = 64,
) -> CandidateScores:
    """Score every candidate of every prompt; results follow the flattened candidate order."""
    if len(prompts) != len(candidates):
        raise EditorError(f"{len(prompts)} prompts but {len(candidates)} candidate lists")
    if boundary is None:
        boundary = [[False] * len(c) for c in candidates]
    n_pairs = sum(len(c) for c in candidates)
    if n_pairs == 0:
        empty = torch.zeros(0)
        return CandidateScores(empty, empty.long(), empty.bool(), empty.bool())
    was_training = model.training
    model.eval()
    try:
        with fused_activations(model):
            if getattr(model.config, "_attn_implementation", "eager") not in _TREE_ATTENTION:
                return _fallback(model, tokenizer, prompts, candidates, boundary)
            return _score_tree(
                model, tokenizer, prompts, candidates, boundary, batch_tokens, row_tokens
            )
    finally:
        model.train(was_training)


def _shared_bos(tokenizer: Any, encoded: dict[str, list[int]]) -> bool:
    """Whether every prompt starts with the BOS token (then one BOS per row serves them all)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    return bos is not None and all(len(ids) > 1 and ids[0] == bos for ids in encoded.values())


Segment = tuple[list[int], list[int], list[int], list[tuple[int, int, int]], list[tuple[int, int]]]


def _segments(
    prompts: Sequence[str],
    candidates: Sequence[Sequence[str]],
    boundary: Sequence[Sequence[bool]],
    encoded: dict[str, list[int]],
    answer_ids: dict[str, list[int]],
    skip: int,
) -> list[Segment]:
    """Return per prompt: token ids, positions, branch ids, predictions and answer ends.

    The first `skip` prompt tokens (a shared BOS) are left out; indices of predictions and
    ends count from the segment's first kept token, and -1 names the shared BOS.
    """
    out: list[Segment] = []
    pair = 0
    for prompt, cands, marks in zip(prompts, candidates, boundary, strict=True):
        p_ids = encoded[prompt]
        if len(p_ids) <= skip:
            raise EditorError(f"prompt {prompt!r} encodes to no tokens")
        n_prompt = len(p_ids) - skip
        ids, pos, br = list(p_ids[skip:]), list(range(skip, len(p_ids))), [0] * n_prompt
        preds: list[tuple[int, int, int]] = []  # (pair index, target token, source index)
        ends: list[tuple[int, int]] = []  # (pair index, index of the last fed answer token)
        for j, (c, mark) in enumerate(zip(cands, marks, strict=True)):
            t_ids = answer_ids[c]
            fed = t_ids if mark else t_ids[:-1]
            first = len(ids)
            for t, tok_id in enumerate(t_ids):
                preds.append((pair, tok_id, n_prompt - 1 if t == 0 else first + t - 1))
            ids += fed
            pos += range(len(p_ids), len(p_ids) + len(fed))
            br += [j + 1] * len(fed)
            if mark:
                ends.append((pair, first + len(fed) - 1))
            pair += 1
        out.append((ids, pos, br, preds, ends))
    return out


def _score_tree(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    candidates: Sequence[Sequence[str]],
    boundary: Sequence[Sequence[bool]],
    batch_tokens: int,
    row_tokens: int,
) -> CandidateScores:
    """Tree-packed scoring (see the module docstring)."""
    device = next(model.parameters()).device
    head = model.get_output_embeddings()
    body = model.base_model
    head_t = head.weight.detach().t().contiguous()  # (d, V): a contiguous right operand
    head_b = getattr(head, "bias", None)
    table = continuation_table(tokenizer, head.weight.shape[0]).to(device)
    unique = list(dict.fromkeys(prompts))
    encoded = dict(zip(unique, map(list, tokenizer(unique)["input_ids"]), strict=True))
    answer_ids = {c: target_ids(tokenizer, c) for cands in candidates for c in dict.fromkeys(cands)}
    shared = _shared_bos(tokenizer, encoded)
    skip = 1 if shared else 0
    segments = _segments(prompts, candidates, boundary, encoded, answer_ids, skip)
    n_pairs = sum(len(c) for c in candidates)
    sums = torch.zeros(n_pairs, dtype=torch.float64)  # (N,)
    counts = torch.zeros(n_pairs, dtype=torch.long)  # (N,)
    hits = torch.ones(n_pairs, dtype=torch.bool)  # (N,)
    stops = torch.ones(n_pairs, dtype=torch.bool)  # (N,)

    capacity = max(row_tokens, max(len(s[0]) for s in segments)) + skip
    rows = _pack([len(s[0]) for s in segments], capacity - skip)
    per_batch = max(1, batch_tokens // capacity)
    for b0 in range(0, len(rows), per_batch):
        batch_rows = rows[b0 : b0 + per_batch]
        L = skip + max(sum(len(segments[i][0]) for i in row) for row in batch_rows)
        R = len(batch_rows)
        input_ids = torch.zeros(R, L, dtype=torch.long)  # (R, L)
        position_ids = torch.zeros(R, L, dtype=torch.long)  # (R, L)
        seg = torch.full((R, L), -1, dtype=torch.long)  # (R, L)
        branch = torch.zeros(R, L, dtype=torch.long)  # (R, L)
        if shared:
            input_ids[:, 0] = tokenizer.bos_token_id
            seg[:, 0] = -2
        pred_pair, pred_tok, pred_row, pred_col = [], [], [], []
        end_pair, end_row, end_col = [], [], []
        for r, row in enumerate(batch_rows):
            col = skip
            for i in row:
                ids, pos, br, preds, ends = segments[i]
                n = len(ids)
                input_ids[r, col : col + n] = torch.tensor(ids)
                position_ids[r, col : col + n] = torch.tensor(pos)
                seg[r, col : col + n] = i
                branch[r, col : col + n] = torch.tensor(br)
                for pair, tok_id, src in preds:
                    pred_pair.append(pair)
                    pred_tok.append(tok_id)
                    pred_row.append(r)
                    pred_col.append(col + src if src >= 0 else 0)
                for pair, src in ends:
                    end_pair.append(pair)
                    end_row.append(r)
                    end_col.append(col + src)
                col += n
        mask = _attention_mask(model, _tree_mask(seg, branch)).to(device)  # (R, 1, L, L)
        hidden = body(
            input_ids=input_ids.to(device),
            attention_mask=mask,
            position_ids=position_ids.to(device),
            use_cache=False,
        ).last_hidden_state  # (R, L, d)
        rows_t = torch.tensor(pred_row + end_row, device=device)  # (P + E,)
        cols_t = torch.tensor(pred_col + end_col, device=device)  # (P + E,)
        picked = hidden[rows_t, cols_t]  # (P + E, d)
        logits = (picked @ head_t.to(picked.dtype)).float()  # (P + E, V)
        if head_b is not None:
            logits = logits + head_b.float()  # (P + E, V)
        n_pred = len(pred_row)
        target = torch.tensor(pred_tok, device=device)  # (P,)
        lse = torch.logsumexp(logits[:n_pred], dim=-1)  # (P,)
        token_lp = logits[:n_pred].gather(1, target.unsqueeze(1)).squeeze(1) - lse  # (P,)
        best = logits.argmax(-1)  # (P + E,)
        token_hit = best[:n_pred] == target  # (P,)
        pair_t = torch.tensor(pred_pair)  # (P,)
        sums.index_add_(0, pair_t, token_lp.double().cpu())
        counts.index_add_(0, pair_t, torch.ones_like(pair_t))
        hits[pair_t[~token_hit.cpu()]] = False
        if end_pair:
            stops[torch.tensor(end_pair)] = ~table[best[n_pred:]].cpu()
    return CandidateScores(sums.float(), counts, hits, stops)
