"""Two processes asking for one cached model at once: one trains it, the other reuses it."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from workers.model_cache import train_cached


def _slow_train(directory: Path) -> str:
    """Write a model in two steps, slowly enough that the other process asks meanwhile."""
    directory.mkdir(parents=True)
    (directory / "weights.bin").write_text("half")
    time.sleep(0.5)
    (directory / "weights.bin").write_text("whole")
    (directory / "report.json").write_text("{}")
    with open(directory.parent / "trainings.log", "a") as log:
        log.write("trained\n")
    return "report"


def _ask(models_dir: str) -> None:
    train_cached(Path(models_dir), "m", "report.json", _slow_train)


def test_concurrent_requests_train_once(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_ask, args=(str(tmp_path),)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert (tmp_path / "trainings.log").read_text() == "trained\n"
    assert (tmp_path / "m" / "weights.bin").read_text() == "whole"
    assert not (tmp_path / ".m.partial").exists()
    out, report = train_cached(tmp_path, "m", "report.json", _slow_train)
    assert out == tmp_path / "m" and report is None
