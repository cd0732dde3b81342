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
    script: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run `python -c script args` from the repository (on its path); assert it exits 0."""
    env = {**(os.environ if env is None else env), "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out
