"""Trained models cached by input hash: train into a partial directory, rename into place."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

R = TypeVar("R")


def train_cached(
    models_dir: Path, name: str, report_file: str, train: Callable[[Path], R]
) -> tuple[Path, R | None]:
    """Return `models_dir/name` and `train`'s report, or None when a finished model is there.

    `train(directory)` writes to a temporary sibling directory that is renamed into place at
    the end, so a crash never leaves a half-written model that a later run would trust; a
    model counts as finished when it holds `report_file`.
    """
    out = models_dir / name
    if (out / report_file).exists():
        return out, None
    tmp = models_dir / f".{name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    report = train(tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out, report
