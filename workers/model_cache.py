"""Trained models cached by input hash: train into a partial directory, rename into place."""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

R = TypeVar("R")


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `lock_file` (blocking) for the block's duration."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def train_cached(
    models_dir: Path, name: str, report_file: str, train: Callable[[Path], R]
) -> tuple[Path, R | None]:
    """Return `models_dir/name` and `train`'s report, or None when a finished model is there.

    `train(directory)` writes to a temporary sibling directory that is renamed into place at
    the end, so a crash never leaves a half-written model that a later run would trust; a
    model counts as finished when it holds `report_file`. Processes that ask for the same
    model at once take turns on a lock file beside it: one trains, the others then find the
    finished model instead of training over the same partial directory.
    """
    out = models_dir / name
    if (out / report_file).exists():
        return out, None
    with _exclusive(models_dir / f".{name}.lock"):
        if (out / report_file).exists():  # trained by another process while this one waited
            return out, None
        tmp = models_dir / f".{name}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        report = train(tmp)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return out, report
