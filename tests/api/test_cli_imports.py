"""Fast and quiet: commands that do not touch weights import neither torch nor transformers,
and the metadata migrations log at WARNING unless asked (`-v`, `KGEDIT_LOG_LEVEL`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from fresh_python import run_python

pytestmark = pytest.mark.slow  # each test starts fresh interpreters

HEAVY = ("torch", "transformers")
# runs the commands in a fresh interpreter, then names the heavy modules it imported
LISTING = f"""
import json, sys
from api.cli import app
for args in (["models", "list"], ["jobs", "list"], ["keys", "list"], ["models", "list", "--json"]):
    app(args, standalone_mode=False)
print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
"""
# a process whose root logger is at INFO, as a Celery worker's is, creating the metadata tables
MIGRATING = """
import logging, sys
logging.basicConfig(level=logging.INFO)
from api.cli import app
app(sys.argv[1:], standalone_mode=False)
"""


def _run(tmp_path: Path, script: str, *args: str, **env_vars: str) -> subprocess.CompletedProcess:
    """Run `script` in a fresh interpreter with a fresh var directory; return the result."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGEDIT_")}
    env.update(KGEDIT_VAR_DIR=str(tmp_path / "var"), **env_vars)
    return run_python(script, *args, env=env, timeout=120)


def test_listing_commands_import_no_torch(tmp_path):
    out = _run(tmp_path, LISTING)
    assert json.loads(out.stdout.splitlines()[-1]) == []


def test_migrations_log_at_warning_unless_asked(tmp_path):
    quiet = _run(tmp_path / "a", MIGRATING, "jobs", "list")
    assert "alembic" not in quiet.stderr
    loud = _run(tmp_path / "b", MIGRATING, "-v", "jobs", "list")
    assert "INFO:alembic" in loud.stderr and "Running upgrade" in loud.stderr
    by_env = _run(tmp_path / "c", MIGRATING, "jobs", "list", KGEDIT_LOG_LEVEL="info")
    assert "Running upgrade" in by_env.stderr
