"""Run a Python snippet in a fresh interpreter: for what a process imports, or what a library
prints only once per process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_python(
    script: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
    cwd: Path = REPO,
    path: str | Path = REPO,
    succeeds: bool = True,
) -> subprocess.CompletedProcess:
    """Run `python -c script args` in `cwd` with `path` as PYTHONPATH (default: the
    repository); assert it exits 0, or with `succeeds=False` that it fails."""
    env = {**(os.environ if env is None else env), "PYTHONPATH": str(path)}
    command = [sys.executable, "-c", script, *args]
    out = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert (out.returncode == 0) == succeeds, out.stderr
    return out
