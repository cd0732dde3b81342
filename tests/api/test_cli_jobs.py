"""`kgedit models ...` and `kgedit jobs ...` on the embedded defaults (no worker needed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workers"))
from jobs_helpers import job_settings, random_model_dir  # noqa: F401

from api.cli import app
from workers.settings import get_settings

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


def test_errors_are_reported_cleanly(job_settings, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("KGEDIT_WORKER_REFRESH_SECONDS", "0")  # no refresh: no model, no worker
    get_settings.cache_clear()
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


def test_submit_takes_yaml_or_json_overrides_for_the_method(
    job_settings,  # noqa: F811
    random_model_dir,  # noqa: F811
    tmp_path,
):
    from sqlalchemy import select

    from workers.db import JobRow, get_database

    _ok("models", "register", "rand", str(random_model_dir))
    payload = tmp_path / "job.json"
    payload.write_text(
        json.dumps(
            {
                "model": "rand",
                "method": "rome",
                "hparams": {"v_lr": 0.1, "v_num_grad_steps": 7},
                "requests": [{"subject": "Ada", "prompt": "{} was born in", "target_new": "Rome"}],
            }
        )
    )
    yaml_file = tmp_path / "hp.yaml"
    yaml_file.write_text("rome:\n  v_num_grad_steps: 12\n  kl_factor: 0.5\nmemit:\n  v_lr: 9\n")
    job = json.loads(_ok("jobs", "submit", str(payload), "--hparams", str(yaml_file), "--json"))
    with get_database(job_settings.metadata_db_url).session() as session:
        row = session.scalars(select(JobRow).where(JobRow.id == job["id"])).one()
        stored = row.payload["hparams"]
    # the file's fields for this method replace the payload's; the other method's are ignored
    assert stored == {"v_lr": 0.1, "v_num_grad_steps": 12, "kl_factor": 0.5}

    flat = tmp_path / "hp.json"
    flat.write_text(json.dumps({"no_such_field": 1}))
    unsafe = tmp_path / "unsafe.yml"
    unsafe.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    for path, message in [
        (flat, "no_such_field"),
        (unsafe, "not valid YAML"),
        (listed, "must be an object"),
        (tmp_path / "missing.yaml", "no such hyper-parameter file"),
    ]:
        result = runner.invoke(app, ["jobs", "submit", str(payload), "--hparams", str(path)])
        assert result.exit_code == 2, (path, result.output)
        assert message in " ".join(result.output.split()), (path, result.output)


def test_cli_takes_the_json_the_api_takes(job_settings, random_model_dir, tmp_path):  # noqa: F811
    _ok("models", "register", "rand", str(random_model_dir))
    payload = tmp_path / "job.json"
    request = {"type": "edit", "subject": "Ada", "prompt": "{} was born in", "target_new": "Rome"}
    payload.write_text(json.dumps({"model": "rand", "method": "rome", "requests": [request]}))
    job = json.loads(_ok("jobs", "submit", str(payload), "--json"))
    assert job["state"] == "queued"
    payload.write_text(json.dumps({"model": "rand", "method": "rome", "requests": [], "x": 1}))
    result = runner.invoke(app, ["jobs", "submit", str(payload)])
    assert result.exit_code == 2 and "not valid" in result.output
