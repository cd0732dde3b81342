"""`kgedit models ...` and `kgedit jobs ...` on the embedded defaults (no worker needed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workers"))
from jobs_helpers import job_settings, random_model_dir  # noqa: F401

from api.cli import app

runner = CliRunner()


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_models_and_jobs_commands(job_settings, random_model_dir, tmp_path):  # noqa: F811
    assert "model rand" in _ok("models", "register", "rand", str(random_model_dir))
    models = json.loads(_ok("models", "list", "--json"))
    assert [m["name"] for m in models] == ["rand"] and models[0]["n_versions"] == 1

    payload = tmp_path / "job.json"
    payload.write_text(
        json.dumps(
            {
                "model": "rand",
                "method": "rome",
                "requests": [{"subject": "Ada", "prompt": "{} was born in", "target_new": "Rome"}],
            }
        )
    )
    job = json.loads(_ok("jobs", "submit", str(payload), "--key", "k1", "--json"))
    assert job["state"] == "queued" and job["idempotency_key"] == "k1"
    shown = json.loads(_ok("jobs", "show", job["id"], "--json"))
    assert shown["transitions"][0]["to"] == "queued"
    assert job["id"][:8] in _ok("jobs", "list")
    assert "cancelled" in _ok("jobs", "cancel", job["id"])
    assert "run 2" in _ok("jobs", "retry", job["id"])
    versions = json.loads(_ok("models", "versions", "rand", "--json"))
    assert versions[0]["is_head"]
    out = tmp_path / "export"
    assert "exported version" in _ok("models", "export", "rand", str(out))
    assert (out / "model.safetensors").is_file() and (out / "kgedit_version.json").is_file()


def test_errors_are_reported_cleanly(job_settings, tmp_path):  # noqa: F811
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for args, message in [
        (["jobs", "show", "nope"], "no job with id"),
        (["jobs", "submit", str(tmp_path / "missing.json")], "no such file"),
        (["jobs", "submit", str(bad)], "not valid JSON"),
        (["models", "versions", "ghost"], "no registered model"),
        (["models", "rollback", "ghost", "1"], "no registered model"),
        (["worker", "--pool", "threads"], "--pool must be"),
        (["worker"], "no registered models"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
