"""Single, batch and sequential editing of one model with any registered method.

An `EditSequence` applies requests in order and keeps every applied `Delta` in that order,
so any suffix can be reverted (newest first) back to an earlier state, bit for bit. State
a method carries from one call to the next (AlphaEdit's keys of earlier edits) lives in
`state`; reverting a delta also tells that state to forget what the delta added.

Modes:
* single: one request, one delta;
* batch: all requests in one call. Batched methods (MEMIT, AlphaEdit, DiKE, FT-L) make one
  delta; the others (ROME, GLAME, LTI-ROME) apply the requests one after another;
* sequential: batches of `batch_size` requests one after another, each on the edited model.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from contracts.types import EditRequest
from editor.delta import Delta
from editor.errors import EditorError
from editor.methods import EditMethod, get


def call_method(
    method: EditMethod,
    model: nn.Module,
    tokenizer: Any,
    requests: Sequence[EditRequest],
    hparams: Any,
    **resources: Any,
) -> tuple[list[Delta], list[dict[str, Any]]]:
    """Call `method.apply`, passing only the resources its signature accepts."""
    params = inspect.signature(method.apply).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        resources = {k: v for k, v in resources.items() if k in params and v is not None}
    return method.apply(model, tokenizer, list(requests), hparams, **resources)


class EditSequence:
    """Ordered, revertible edits of one model by one method."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        method: str | EditMethod,
        hparams: Any,
        **resources: Any,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.method = get(method) if isinstance(method, str) else method
        if not isinstance(hparams, self.method.hparams_cls):
            raise EditorError(
                f"{self.method.name} needs {self.method.hparams_cls.__name__}, "
                f"not {type(hparams).__name__}"
            )
        self.hparams = hparams
        self.resources = resources
        self.state: dict[str, Any] = {}
        self.deltas: list[Delta] = []
        self.infos: list[dict[str, Any]] = []
        self.seconds: list[float] = []  # wall time of each call, shared by its deltas

    def __len__(self) -> int:
        return len(self.deltas)

    def apply(
        self,
        requests: Sequence[EditRequest],
        batch_size: int | None = None,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> list[Delta]:
        """Apply requests in consecutive batches (default: one batch); return the new deltas."""
        requests = list(requests)
        if not requests:
            return []
        size = batch_size or len(requests)
        if size < 1:
            raise EditorError(f"batch_size must be positive, not {size}")
        new: list[Delta] = []
        for start in range(0, len(requests), size):
            batch = requests[start : start + size]
            t0 = time.perf_counter()
            deltas, infos = call_method(
                self.method,
                self.model,
                self.tokenizer,
                batch,
                self.hparams,
                state=self.state,
                **self.resources,
            )
            elapsed = time.perf_counter() - t0
            self.deltas += deltas
            self.infos += infos
            self.seconds += [elapsed / max(1, len(deltas))] * len(deltas)
            new += deltas
            if on_batch is not None:
                on_batch(min(start + size, len(requests)), len(requests))
        return new

    def replay(self, deltas: Sequence[Delta], state: dict[str, Any] | None = None) -> None:
        """Re-apply deltas an earlier run made (e.g. loaded from disk), in order, and adopt
        the method state that run had after them, so the sequence continues where it stopped.

        Each delta checks that the weights are those it was made on, so a wrong order or a
        different base model raises `EditorError` (the deltas applied so far stay recorded).
        """
        for delta in deltas:
            delta.apply(self.model)
            self.deltas.append(delta)
            self.infos.append({"replayed": True})
            self.seconds.append(float(delta.meta.get("seconds", 0.0)))
        if state:
            self.state.update(state)

    def revert_to(self, n: int) -> list[Delta]:
        """Revert every delta after the first `n`, newest first; return the reverted ones."""
        if not 0 <= n <= len(self.deltas):
            raise EditorError(f"cannot revert to {n} of {len(self.deltas)} deltas")
        reverted = []
        while len(self.deltas) > n:
            delta = self.deltas.pop()
            self.infos.pop()
            self.seconds.pop()
            delta.revert(self.model)
            for value in self.state.values():
                forget = getattr(value, "forget", None)
                if forget is not None:
                    forget(delta)
            reverted.append(delta)
        return reverted

    def revert_last(self, k: int = 1) -> list[Delta]:
        """Revert the newest `k` deltas."""
        return self.revert_to(len(self.deltas) - k)

    def revert_all(self) -> list[Delta]:
        """Revert every delta of the sequence."""
        return self.revert_to(0)


def edit(
    model: nn.Module,
    tokenizer: Any,
    method: str,
    requests: Sequence[EditRequest],
    hparams: Any,
    mode: str = "batch",
    batch_size: int = 1,
    **resources: Any,
) -> EditSequence:
    """Edit in one of the modes single, batch or sequential; return the sequence."""
    seq = EditSequence(model, tokenizer, method, hparams, **resources)
    if mode == "single":
        if len(requests) != 1:
            raise EditorError(f"single mode takes one request, not {len(requests)}")
        seq.apply(requests)
    elif mode == "batch":
        seq.apply(requests)
    elif mode == "sequential":
        seq.apply(requests, batch_size=batch_size)
    else:
        raise EditorError(f"mode must be single, batch or sequential, not {mode!r}")
    return seq
