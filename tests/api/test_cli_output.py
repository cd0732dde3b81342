"""The CLI's output convention: `--json` prints one JSON document on stdout and nothing else;
errors and progress go to stderr; human output is lines and tables, never a Python repr."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workers"))
from jobs_helpers import job_settings, random_model_dir  # noqa: F401

from api.cli import app

runner = CliRunner()
REQUEST = {"subject": "Ada", "prompt": "{} was born in", "target_new": "Rome"}


def _json(*args: str, code: int = 0) -> dict | list:
    """Run a command with --json; return the one JSON document it printed on stdout."""
    out = runner.invoke(app, [*args, "--json"])
    assert out.exit_code == code, (args, out.output)
    return json.loads(out.stdout)


def test_every_result_has_json_and_progress_goes_to_stderr(
    job_settings,  # noqa: F811
    random_model_dir,  # noqa: F811
    tmp_path,
):
    assert _json("models", "register", "rand", str(random_model_dir))["name"] == "rand"
    payload = tmp_path / "job.json"
    payload.write_text(json.dumps({"model": "rand", "method": "rome", "requests": [REQUEST]}))
    # --wait draws a progress bar; it must stay off stdout so the JSON parses
    job = _json("jobs", "submit", str(payload), "--wait", "--timeout", "0", code=1)
    assert job["state"] == "queued"
    waited = runner.invoke(app, ["jobs", "submit", str(payload), "--wait", "--timeout", "0"])
    assert waited.stdout.count("\n") == 1 and "%" in waited.stderr and "%" not in waited.stdout
    assert _json("jobs", "cancel", job["id"])["state"] == "cancelled"
    assert _json("jobs", "retry", job["id"])["run"] == 2
    assert _json("models", "rollback", "rand", "1")["id"] == 1
    exported = _json("models", "export", "rand", str(tmp_path / "export"))
    assert exported["version_id"] == 1 and Path(exported["path"]).is_dir()
    diff = _json("models", "diff", "rand", "--from", "1", "--to", "1")
    assert (diff["from"], diff["to"], diff["revert"], diff["apply"]) == (1, 1, [], [])
    human = runner.invoke(app, ["models", "diff", "rand", "--from", "1", "--to", "1"])
    assert human.exit_code == 0 and "version 1 → 1" in human.stdout
    assert not human.stdout.lstrip().startswith("{")


def test_errors_go_to_stderr_and_leave_stdout_empty(job_settings):  # noqa: F811
    out = runner.invoke(app, ["jobs", "show", "nope", "--json"])
    assert out.exit_code == 2
    assert out.stdout == "" and "no job with id" in out.stderr


def test_import_summary_is_readable_lines(tmp_path):
    url = f"sqlite:///{tmp_path / 'kg.sqlite'}"
    args = ["import", "synthetic", "--graph", url, "--people", "10"]
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "{" not in out.stdout and "'" not in out.stdout
    assert "added: entities " in out.stdout
    dest = tmp_path / "facts.jsonl"
    exported = _json("export", str(dest), "--graph", url)
    assert exported["path"] == str(dest) and exported["facts"] > 0


def test_train_model_names_its_preset_and_time():
    from editor.knowledge.presets import DEFAULT_PRESET, training_time

    assert DEFAULT_PRESET == "small" and "6-9 minutes" in training_time(DEFAULT_PRESET)
    assert "no measured time" in training_time("base")
