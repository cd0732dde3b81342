"""Score several answers of many prompts with one forward pass per batch and little waste.

Every token sequence to feed (a prompt, or a prompt followed by an answer) goes into one
token *trie*: sequences that share a beginning share its tokens ("Spike Hughes was born in",
"Spike Hughes originates from" share "Spike Hughes"; every answer shares its prompt). Each
token attends to its ancestors in the trie only (the attention mask is the ancestor closure)
and sits at the position of its depth, so every logit equals the one of scoring that
(prompt, answer) pair on its own, while each shared token is computed once. Subtrees are
packed first-fit into rows of about `row_tokens` tokens (a subtree too big for a row is
split, its path from the root repeated in each part), rows into batches of about
`batch_tokens` tokens; a BOS token that starts every prompt is stored once per row. The
output head runs only where a target token is predicted.

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

import bisect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
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
    """Best-fit decreasing: return rows of item indices whose lengths fit `capacity`."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    rows: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, row), sorted
    for i in order:
        at = bisect.bisect_left(free, (lengths[i], -1))
        if at < len(free):
            room, r = free.pop(at)
        else:
            room, r = capacity, len(rows)
            rows.append([])
        rows[r].append(i)
        bisect.insort(free, (room - lengths[i], r))
    return rows


def _attention_mask(model: nn.Module, mask: torch.Tensor) -> torch.Tensor:
    """Return the boolean mask as an additive one (0 or the dtype's minimum).

    Both eager and SDPA attention take an additive mask as it is; SDPA on a CPU is about a
    quarter faster with it than with a boolean mask, which it converts on every call.
    """
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


class _Trie:
    """A token trie; node ids grow with insertion, so a parent's id is below its children's."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.token: list[int] = []
        self.depth: list[int] = []
        self.children: list[dict[int, int]] = []
        self.roots: dict[int, int] = {}

    def insert(self, ids: Sequence[int]) -> list[int]:
        """Insert a token sequence; return the node of each of its tokens."""
        path: list[int] = []
        level = self.roots
        for tok in ids:
            node = level.get(tok)
            if node is None:
                node = len(self.token)
                self.parent.append(path[-1] if path else -1)
                self.token.append(tok)
                self.depth.append(len(path))
                self.children.append({})
                level[tok] = node
            path.append(node)
            level = self.children[node]
        return path

    def sizes(self) -> list[int]:
        """Return the number of nodes of every subtree."""
        size = [1] * len(self.token)
        for node in range(len(size) - 1, -1, -1):
            if self.parent[node] >= 0:
                size[self.parent[node]] += size[node]
        return size

    def units(self, capacity: int) -> list[tuple[list[int], int]]:
        """Split the forest into (path from the root, subtree root) units of ≤ capacity nodes."""
        size = self.sizes()
        out: list[tuple[list[int], int]] = []
        stack = [([], root) for root in reversed(self.roots.values())]
        while stack:
            prefix, node = stack.pop()
            kids = list(self.children[node].values())
            if len(prefix) + size[node] <= capacity or not kids:
                out.append((prefix, node))
            else:
                stack += [([*prefix, node], kid) for kid in reversed(kids)]
        return out

    def preorder(self, node: int) -> list[int]:
        """Return the subtree of `node` in depth-first preorder (parents before children)."""
        out, stack = [], [node]
        while stack:
            n = stack.pop()
            out.append(n)
            stack += reversed(list(self.children[n].values()))
        return out


def _ancestor_mask(parent: torch.Tensor) -> torch.Tensor:
    """Return (R, 1, L, L) bool: q may attend k iff k is q or an ancestor (parent −1: none)."""
    R, L = parent.shape
    eye = torch.eye(L).expand(R, L, L)  # (R, L, L)
    step = torch.zeros(R, L, L)  # (R, L, L): one edge to the parent
    rows, cols = torch.nonzero(parent >= 0, as_tuple=True)
    step[rows, cols, parent[rows, cols]] = 1.0
    reach = eye + step  # (R, L, L)
    hops = 1
    while hops < L:
        reach = (reach @ reach).clamp(max=1.0)  # (R, L, L): paths of up to 2·hops edges
        hops *= 2
    return (reach > 0).unsqueeze(1)  # (R, 1, L, L)


def _layout(
    trie: _Trie,
    unit_nodes: list[np.ndarray],
    batches: list[list[list[int]]],
    skip: int,
    shared: bool,
    tokenizer: Any,
) -> tuple[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], np.ndarray, np.ndarray]:
    """Lay the units out in rows: ids, positions and parent columns per batch.

    Also returns every placed node with its (batch, row, column), in placement order.
    """
    token = np.asarray(trie.token, dtype=np.int64)  # (n_nodes,)
    depth = np.asarray(trie.depth, dtype=np.int64)  # (n_nodes,)
    parent = np.asarray(trie.parent, dtype=np.int64)  # (n_nodes,)
    column = np.zeros(len(token) + 1, dtype=np.int64)  # node -> column in the current unit
    root_parent = 0 if shared else -1
    column[-1] = root_parent  # parent -1 (a root) reads this slot
    layouts, nodes_out, at_out = [], [], []
    for b, batch_rows in enumerate(batches):
        L = skip + max(sum(len(unit_nodes[u]) for u in row) for row in batch_rows)
        R = len(batch_rows)
        ids = np.zeros((R, L), dtype=np.int64)  # (R, L)
        pos = np.zeros((R, L), dtype=np.int64)  # (R, L)
        par = np.full((R, L), -1, dtype=np.int64)  # (R, L) column of the parent
        if shared:
            ids[:, 0] = tokenizer.bos_token_id
        for r, row in enumerate(batch_rows):
            col = skip
            for u in row:
                nodes = unit_nodes[u]
                n = len(nodes)
                column[nodes] = np.arange(col, col + n)
                ids[r, col : col + n] = token[nodes]
                pos[r, col : col + n] = depth[nodes] + skip
                par[r, col : col + n] = column[parent[nodes]]  # parent -1 -> column[-1]
                nodes_out.append(nodes)
                at_out.append(np.stack([np.full(n, b), np.full(n, r), np.arange(col, col + n)], 1))
                col += n
        layouts.append((torch.from_numpy(ids), torch.from_numpy(pos), torch.from_numpy(par)))
    return layouts, np.concatenate(nodes_out), np.concatenate(at_out)


def _score_tree(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    candidates: Sequence[Sequence[str]],
    boundary: Sequence[Sequence[bool]],
    batch_tokens: int,
    row_tokens: int,
) -> CandidateScores:
    """Trie-packed scoring (see the module docstring)."""
    device = next(model.parameters()).device
    head = model.get_output_embeddings()
    body = model.base_model
    head_t = head.weight.detach().t().contiguous()  # (d, V): a contiguous right operand
    head_b = getattr(head, "bias", None)
    table = continuation_table(tokenizer, head.weight.shape[0]).to(device)
    unique = list(dict.fromkeys(prompts))
    encoded = dict(zip(unique, map(list, tokenizer(unique)["input_ids"]), strict=True))
    shared = _shared_bos(tokenizer, encoded)
    skip = 1 if shared else 0
    answers = {c: target_ids(tokenizer, c) for c in {c for cands in candidates for c in cands}}

    # predictions: (pair, target token, source node); ends: (pair, node after the answer)
    trie = _Trie()
    preds: list[tuple[int, int, int]] = []
    ends: list[tuple[int, int]] = []
    pair = 0
    for prompt, cands, marks in zip(prompts, candidates, boundary, strict=True):
        p_ids = encoded[prompt][skip:]
        if not p_ids:
            raise EditorError(f"prompt {prompt!r} encodes to no tokens")
        for c, mark in zip(cands, marks, strict=True):
            t_ids = answers[c]
            path = trie.insert(p_ids + (t_ids if mark else t_ids[:-1]))
            for k, tok in enumerate(t_ids):
                preds.append((pair, tok, path[len(p_ids) - 1 + k]))
            if mark:
                ends.append((pair, path[-1]))
            pair += 1

    capacity = max(row_tokens, 1)
    units = trie.units(capacity)
    unit_nodes = [np.array(prefix + trie.preorder(root), dtype=np.int64) for prefix, root in units]
    capacity = max(capacity, max(len(nodes) for nodes in unit_nodes))
    rows = _pack([len(nodes) for nodes in unit_nodes], capacity)
    per_batch = max(1, batch_tokens // (capacity + skip))
    batches = [rows[i : i + per_batch] for i in range(0, len(rows), per_batch)]
    layouts, placed_nodes, placed_at = _layout(trie, unit_nodes, batches, skip, shared, tokenizer)

    # where each node is computed (its first copy), then predictions grouped by batch
    n_nodes = len(trie.token)
    first = np.unique(placed_nodes, return_index=True)[1]  # (n_nodes,) first copy of each
    where = np.zeros((n_nodes, 3), dtype=np.int64)  # node -> (batch, row, column)
    where[placed_nodes[first]] = placed_at[first]
    pred_arr = np.array(preds, dtype=np.int64).reshape(-1, 3)  # (P, 3) pair, token, node
    end_arr = np.array(ends, dtype=np.int64).reshape(-1, 2)  # (E, 2) pair, node
    pred_at, end_at = where[pred_arr[:, 2]], where[end_arr[:, 1]]  # (P, 3), (E, 3)
    by_batch = [pred_arr[pred_at[:, 0] == b] for b in range(len(batches))]
    by_batch_at = [pred_at[pred_at[:, 0] == b] for b in range(len(batches))]
    ends_by_batch = [end_arr[end_at[:, 0] == b] for b in range(len(batches))]
    ends_by_batch_at = [end_at[end_at[:, 0] == b] for b in range(len(batches))]

    sums = torch.zeros(pair, dtype=torch.float64)  # (N,)
    counts = torch.zeros(pair, dtype=torch.long)  # (N,)
    hits = torch.ones(pair, dtype=torch.bool)  # (N,)
    stops = torch.ones(pair, dtype=torch.bool)  # (N,)
    cpu_table = table.cpu()
    for b, (input_ids, position_ids, parent) in enumerate(layouts):
        want, want_at = by_batch[b], by_batch_at[b]  # (P, 3) pair/token/node, (P, 3) b/r/c
        stop_at, stop_where = ends_by_batch[b], ends_by_batch_at[b]  # (E, 2), (E, 3)
        if not len(want) and not len(stop_at):
            continue
        mask = _attention_mask(model, _ancestor_mask(parent)).to(device)  # (R, 1, L, L)
        hidden = body(
            input_ids=input_ids.to(device),
            attention_mask=mask,
            position_ids=position_ids.to(device),
            use_cache=False,
        ).last_hidden_state  # (R, L, d)
        n_pred = len(want)
        L = hidden.shape[1]
        flat = torch.from_numpy(
            np.concatenate(
                [want_at[:, 1] * L + want_at[:, 2], stop_where[:, 1] * L + stop_where[:, 2]]
            )
        )  # (P + E,) position of each prediction, many shared (rivals, choice letters)
        spots, slot = torch.unique(flat, return_inverse=True)  # (U,), (P + E,)
        picked = hidden.reshape(-1, hidden.shape[-1])[spots.to(device)]  # (U, d)
        logits = (picked @ head_t.to(picked.dtype)).float()  # (U, V)
        if head_b is not None:
            logits = logits + head_b.float()  # (U, V)
        best = logits.argmax(-1).cpu()[slot]  # (P + E,)
        if n_pred:
            target = torch.from_numpy(want[:, 1])  # (P,)
            lse = torch.logsumexp(logits, dim=-1).cpu()  # (U,)
            chosen = logits[slot[:n_pred].to(device), target.to(device)].cpu()  # (P,)
            token_lp = chosen - lse[slot[:n_pred]]  # (P,)
            pair_t = torch.from_numpy(want[:, 0])  # (P,)
            sums.index_add_(0, pair_t, token_lp.double())
            counts.index_add_(0, pair_t, torch.ones_like(pair_t))
            hits[pair_t[best[:n_pred] != target]] = False
        if len(stop_at):
            stops[torch.from_numpy(stop_at[:, 0])] = ~cpu_table[best[n_pred:]]
    return CandidateScores(sums.float(), counts, hits, stops)
