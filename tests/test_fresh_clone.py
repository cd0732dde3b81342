"""A fresh clone with no `../shared` beside it runs the demo on the generated synthetic world.

The repository's committed state is cloned into a temporary folder (uncommitted changes are
not in a clone) and `kgedit demo` runs there with the current interpreter, `PYTHONPATH`
set to the clone and `KGEDIT_DATA_DIR` pointing at a folder that does not exist. The var
folder is fresh too (graph import, statistics, edits); only the trained tiny model is reused
from the test cache by the hash of its inputs, so the first run also trains it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fresh_python import run_python

REPO = Path(__file__).resolve().parents[1]
TEST_CACHE = Path(os.environ.get("KGEDIT_TEST_CACHE", REPO / "var" / "test-cache"))
# the model `kgedit.example_model("tiny")` trains (tests/test_python_api.py): same inputs
MODELS = TEST_CACHE / "python-api" / "models"

pytestmark = pytest.mark.slow


def _clean_env(tmp_path: Path, clone: Path) -> dict[str, str]:
    """Return the environment: no KGEDIT_* but a fresh var folder and a missing data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGEDIT_")}
    env.update(
        PYTHONPATH=str(clone),
        KGEDIT_VAR_DIR=str(tmp_path / "var"),
        KGEDIT_DATA_DIR=str(tmp_path / "no-such-data"),
        KGEDIT_THREADS="1",
        HF_HUB_OFFLINE="1",
        COLUMNS="200",  # rich wraps at 80 columns without a terminal
    )
    return env


def test_demo_runs_in_a_fresh_clone_without_shared(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    clone = tmp_path / "kgedit"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(clone)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert not (tmp_path / "shared").exists() and not (clone / "var").exists()
    env = _clean_env(tmp_path, clone)
    where = run_python(
        "import kg, workers, kgedit; print(kg.__file__, kgedit.__file__)",
        env=env,
        timeout=120,
        cwd=clone,
        path=clone,
    )
    assert all(Path(p).is_relative_to(clone) for p in where.stdout.split()), where.stdout
    demo = [sys.executable, "-m", "api.cli", "demo", "--preset", "tiny", "--n-edits", "3"]
    out = subprocess.run(
        [*demo, "--models-dir", str(MODELS)],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    assert "the synthetic world (no EVOKE under KGEDIT_DATA_DIR)" in text
    assert "reverted 3 deltas" in text and "matches the original" in text
    assert "Traceback" not in text
    assert (tmp_path / "var" / "demo").is_dir()
