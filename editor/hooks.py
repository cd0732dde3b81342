"""Forward hooks: read a module's input/output at chosen positions, or add vectors to its output.

Every hook is registered on entry of a context manager and removed on exit, also when the
forward pass raises. Modules that return tuples (decoder blocks in older transformers) are
handled: the first element is the hidden state.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
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
def _capturing(
    module: nn.Module,
    read: Any,
    rows: Any,
    cols: Any,
    *,
    pre: bool,
    stop: bool = False,
    detach: bool = True,
) -> Iterator[Captured]:
    """Register a hook storing `read(...)` at the pairs; `pre` hooks the input, else the output.

    `stop`: end the forward pass once stored (`StopForward`); `detach`: store without grad.
    """
    captured = Captured()

    def _store(hidden: torch.Tensor) -> None:
        value = _select(hidden, rows, cols)  # (n, d) or (B, L, d)
        captured.value = value.detach() if detach else value
        if stop:
            raise StopForward

    if pre:
        handle = module.register_forward_pre_hook(
            lambda _m, args, kwargs: _store(read(args, kwargs)), with_kwargs=True
        )
    else:
        handle = module.register_forward_hook(lambda _m, _args, output: _store(read(output)))
    try:
        yield captured
    except StopForward:
        pass
    finally:
        handle.remove()


def capture_input(
    module: nn.Module, rows: Any = None, cols: Any = None, **flags: bool
) -> AbstractContextManager[Captured]:
    """Capture `module`'s first input at (rows[i], cols[i]) pairs, or whole if both are None;
    `flags`: `stop`, `detach` (see `_capturing`)."""

    def read(args: tuple, kwargs: dict) -> torch.Tensor:
        return args[0] if args else kwargs["hidden_states"]  # (B, L, d_in)

    return _capturing(module, read, rows, cols, pre=True, **flags)


def capture_output(
    module: nn.Module, rows: Any = None, cols: Any = None, **flags: bool
) -> AbstractContextManager[Captured]:
    """Capture `module`'s output hidden state at (rows[i], cols[i]) pairs, or whole if None;
    `flags`: `stop`, `detach` (see `_capturing`)."""
    return _capturing(module, _first, rows, cols, pre=False, **flags)


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
