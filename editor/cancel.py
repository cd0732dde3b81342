"""Cancellation and progress of long loops: every optimisation, statistics and training loop calls
`checkpoint()` once per iteration.

The editor knows nothing of jobs. A caller that wants to stop a run installs a check for the
duration of the run with `cancellable(check)`; `check` raises (typically a `RunCancelledError`) to
stop the loop, and the exception propagates out of the method. Without an installed check,
`checkpoint()` does nothing. The check is context-local, so threads and concurrent runs do
not see each other's checks. Long loops also report `report_progress(done, total)` to the callback
installed with `reporting(callback)`, context-local in the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from editor.errors import EditorError

_CHECK: ContextVar[Callable[[], None] | None] = ContextVar("editor_cancel_check", default=None)


class RunCancelledError(EditorError):
    """A run was asked to stop; raised by the installed check at a loop's checkpoint."""


def checkpoint() -> None:
    """Call the installed check (it raises to stop the current loop); no-op without one."""
    check = _CHECK.get()
    if check is not None:
        check()


@contextmanager
def cancellable(check: Callable[[], None]) -> Iterator[None]:
    """Install `check` for the loops run inside the block."""
    token = _CHECK.set(check)
    try:
        yield
    finally:
        _CHECK.reset(token)


_PROGRESS: ContextVar[Callable[[int, int], None] | None] = ContextVar(
    "editor_progress", default=None
)


def report_progress(done: int, total: int) -> None:
    """Tell the installed progress callback that `done` of `total` units are finished."""
    callback = _PROGRESS.get()
    if callback is not None:
        callback(done, total)


@contextmanager
def reporting(callback: Callable[[int, int], None] | None) -> Iterator[None]:
    """Install `callback(done, total)` for the loops run inside the block (None: no-op)."""
    token = _PROGRESS.set(callback)
    try:
        yield
    finally:
        _PROGRESS.reset(token)
