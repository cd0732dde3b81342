"""Commands that do not touch weights import neither torch nor transformers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers")
# runs the commands in a fresh interpreter, then names the heavy modules it imported
SCRIPT = f"""
import json, sys
from api.cli import app
for args in (["models", "list"], ["jobs", "list"], ["keys", "list"], ["models", "list", "--json"]):
    app(args, standalone_mode=False)
print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
"""


def test_listing_commands_import_no_torch(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGEDIT_")}
    env.update(KGEDIT_VAR_DIR=str(tmp_path / "var"), PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == []
    assert "alembic" not in out.stderr.lower()
