"""Forward hooks: read a module's input/output at chosen positions, or add vectors to its output.

Every hook is registered on entry of a context manager and removed on exit, also when the
forward pass raises. Modules that return tuples (decoder blocks in older transformers) are
handled: the first element is the hidden state.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


class StopForward(Exception):  # noqa: N818 - control flow, not an error
    """Raised by a hook with `stop=True` to end the forward pass early; caught on exit."""


@dataclass
class Captured:
    """Holds what a capture hook read; `value` is None until the module has run."""

    value: torch.Tensor | None = None


def _first(x: Any) -> torch.Tensor:
    """Return the hidden-state tensor of a module's input args or output."""
    return x[0] if isinstance(x, tuple | list) else x


def _select(hidden: torch.Tensor, rows: Any, cols: Any) -> torch.Tensor:
    """Index (batch, position) pairs of a (B, L, d) tensor; full tensor if both are None."""
    if rows is None and cols is None:
        return hidden  # (B, L, d)
    rows_t = torch.as_tensor(rows, device=hidden.device, dtype=torch.long)  # (n,)
    cols_t = torch.as_tensor(cols, device=hidden.device, dtype=torch.long)  # (n,)
    return hidden[rows_t, cols_t]  # (n, d)


@contextmanager
def capture_input(
    module: nn.Module,
    rows: Any = None,
    cols: Any = None,
    *,
    stop: bool = False,
    detach: bool = True,
) -> Iterator[Captured]:
    """Capture `module`'s first input at (rows[i], cols[i]) pairs, or whole if both are None."""
    captured = Captured()

    def _hook(_mod: nn.Module, args: tuple, kwargs: dict) -> None:
        hidden = args[0] if args else kwargs["hidden_states"]  # (B, L, d_in)
        value = _select(hidden, rows, cols)
        captured.value = value.detach() if detach else value
        if stop:
            raise StopForward

    handle = module.register_forward_pre_hook(_hook, with_kwargs=True)
    try:
        yield captured
    except StopForward:
        pass
    finally:
        handle.remove()


@contextmanager
def capture_output(
    module: nn.Module,
    rows: Any = None,
    cols: Any = None,
    *,
    stop: bool = False,
    detach: bool = True,
) -> Iterator[Captured]:
    """Capture `module`'s output hidden state at (rows[i], cols[i]) pairs, or whole if None."""
    captured = Captured()

    def _hook(_mod: nn.Module, _args: tuple, output: Any) -> None:
        value = _select(_first(output), rows, cols)  # (n, d) or (B, L, d)
        captured.value = value.detach() if detach else value
        if stop:
            raise StopForward

    handle = module.register_forward_hook(_hook)
    try:
        yield captured
    except StopForward:
        pass
    finally:
        handle.remove()


def add_at(hidden: torch.Tensor, rows: Any, cols: Any, vectors: torch.Tensor) -> torch.Tensor:
    """Return `hidden` (B, L, d) plus `vectors` ((d,) or (n, d)) at the pairs, out of place."""
    rows_t = torch.as_tensor(rows, device=hidden.device, dtype=torch.long)  # (n,)
    cols_t = torch.as_tensor(cols, device=hidden.device, dtype=torch.long)  # (n,)
    keep = cols_t < hidden.shape[1]  # positions beyond this call's length (KV-cache steps)
    vecs = vectors.to(hidden.dtype).expand(rows_t.shape[0], hidden.shape[-1])  # (n, d)
    return hidden.index_put((rows_t[keep], cols_t[keep]), vecs[keep], accumulate=True)


@contextmanager
def add_to_output(module: nn.Module, rows: Any, cols: Any, vectors: torch.Tensor) -> Iterator[None]:
    """Add `vectors` ((d,) shared, or (n, d) one per pair) to `module`'s output at the pairs.

    The addition is out of place and differentiable with respect to `vectors`.
    """

    def _hook(_mod: nn.Module, _args: tuple, output: Any) -> Any:
        if isinstance(output, tuple | list):
            edited = add_at(output[0], rows, cols, vectors)  # (B, L, d)
            return type(output)((edited, *output[1:]))
        return add_at(output, rows, cols, vectors)  # (B, L, d)

    handle = module.register_forward_hook(_hook)
    try:
        yield
    finally:
        handle.remove()
