"""The forward pass of the v*/δ optimisation, with the exact savings (docs/methods/vstar.md).

δ is added at the edit layer, so nothing below that layer depends on it. With `cache_lower`
the blocks below the edit layer run once per chunk of requests (δ = 0, no gradient) and are
then replaced, for the optimisation's forward passes, by stand-ins that return the cached
output of the last of them; the embeddings still run (cheap), so attention masks and rotary
tables are built by the model as usual. With `targets_only` the output head runs only where
the loss reads logits (the target positions of the rewriting prompts and the subject's last
token of the essence prompts) instead of at every position of every prompt.

Both savings give the plain optimisation's values up to float rounding.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from editor.arch import ArchSpec, get_module
from editor.hooks import StopForward
from editor.tokens import TargetBatch


class _Held:
    """The cached lower-block output for the rows and columns of the current step."""

    value: Any = None


class _CachedBlock(nn.Module):
    """A stand-in for a decoder block below the edit layer: returns the cached output."""

    def __init__(self, held: _Held) -> None:
        super().__init__()
        self.held = held

    def forward(self, *_args: Any, **_kwargs: Any) -> Any:
        """Return the held output (a tensor, or a tuple as the block returns it)."""
        return self.held.value


def _slice(output: Any, rows: torch.Tensor, length: int) -> Any:
    """Return a block output (tensor or tuple) restricted to `rows` and the first `length`."""
    if isinstance(output, tuple | list):
        return type(output)((output[0][rows, :length], *output[1:]))
    return output[rows, :length]  # (R_a, L_a, d)


def _blocks(model: nn.Module, spec: ArchSpec) -> nn.ModuleList:
    """Return the ModuleList holding the decoder blocks."""
    return get_module(model, spec.layer_name(0).rsplit(".", 1)[0])


@torch.no_grad()
def lower_output(model: nn.Module, spec: ArchSpec, n_lower: int, batch: TargetBatch) -> Any:
    """Return the raw output of block `n_lower - 1` on the whole batch (None if n_lower is 0)."""
    if n_lower <= 0:
        return None
    block = _blocks(model, spec)[n_lower - 1]
    seen: list[Any] = []

    def _hook(_m: nn.Module, _a: tuple, output: Any) -> None:
        seen.append(output)
        raise StopForward

    handle = block.register_forward_hook(_hook)
    try:
        model(**batch.model_inputs(), use_cache=False)
    except StopForward:
        pass
    finally:
        handle.remove()
    return seen[0]


@contextmanager
def cached_lower(
    model: nn.Module, spec: ArchSpec, n_lower: int, cached: Any, rows: torch.Tensor, length: int
) -> Iterator[None]:
    """Swap blocks [0, n_lower) for stand-ins returning `cached` at `rows`, `[:length]`."""
    if n_lower <= 0 or cached is None:
        yield
        return
    blocks = _blocks(model, spec)
    held = _Held()
    held.value = _slice(cached, rows, length)
    originals = [blocks[i] for i in range(n_lower)]
    try:
        for i in range(n_lower):
            blocks[i] = _CachedBlock(held)
        yield
    finally:
        for i, block in enumerate(originals):
            blocks[i] = block


def reads_below(spec: ArchSpec, n_lower: int, names: Iterable[str]) -> bool:
    """Whether a module named in `names` sits in one of the blocks [0, n_lower) (an extra loss
    term that reads it needs those blocks to run)."""
    blocks = [spec.layer_name(i) for i in range(n_lower)]
    return any(n == b or n.startswith(b + ".") for n in names for b in blocks)


def head_at(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """Return the output head's logits of final hidden states (..., d) -> (..., V)."""
    return model.get_output_embeddings()(hidden)


def body_or_full(model: nn.Module, inputs: dict[str, torch.Tensor], targets_only: bool) -> Any:
    """Run the model; return the final hidden states (B, L, d) if `targets_only`, else the
    logits (B, L, V)."""
    if targets_only:
        return model.base_model(**inputs, use_cache=False).last_hidden_state  # (B, L, d)
    return model(**inputs, use_cache=False).logits  # (B, L, V)
