"""`kgedit audit`: edit-and-audit, the sample audit of a saved version, show and schema."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from api.cli import app
from workers.audit.schema import SCHEMA, validate_report

runner = CliRunner()


def test_schema_command_prints_the_schema():
    out = runner.invoke(app, ["audit", "schema"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == SCHEMA


def test_show_refuses_what_is_not_a_report(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "something else"}))
    out = runner.invoke(app, ["audit", "show", str(bad)])
    assert out.exit_code == 2 and "not a valid audit report" in out.output
    out = runner.invoke(app, ["audit", "show", str(tmp_path / "missing.json")])
    assert out.exit_code == 2 and "no such file" in out.output


@pytest.mark.slow
def test_run_then_audit_the_saved_version(tmp_path, tiny_model_dir, tiny_graph, tiny_cases):
    url = tiny_graph.engine.url.render_as_string(hide_password=False)
    deltas = tmp_path / "deltas"
    report = tmp_path / "run.json"
    small = ["--sample", "60", "--bootstrap", "50"]
    args = ["audit", "run", "--model", str(tiny_model_dir), "--graph", url, "--edits", "2"]
    args += ["--cases", str(tiny_cases), "--save-deltas", str(deltas), "-o", str(report)]
    out = runner.invoke(app, args + small)
    assert out.exit_code == 0, out.output
    data = json.loads(report.read_text())
    validate_report(data)
    assert data["kind"] == "edit" and len(data["changes"]) == 2
    assert "rewrite" in out.output and "whole-graph sample" in out.output
    files = sorted(deltas.glob("*.safetensors"))
    assert len(files) == 2

    version = tmp_path / "version.json"
    page = tmp_path / "version.html"
    args = ["audit", "sample", "--model", str(tiny_model_dir), "--graph", url]
    args += [arg for f in files for arg in ("--delta", str(f))]
    out = runner.invoke(app, [*args, *small, "--output", str(version), "--html", str(page)])
    assert out.exit_code == 0, out.output
    data = json.loads(version.read_text())
    assert data["kind"] == "sample" and data["sample"]["n"] == 60
    assert [p["version"] for p in data["trend"]] == [0, 1, 2]
    changes = [c["id"] for c in json.loads(report.read_text())["changes"]]
    assert [d["request_ids"] for d in data["model"]["deltas"]] == [[c] for c in changes]
    assert page.read_text().startswith("<!DOCTYPE html>")

    out = runner.invoke(app, ["audit", "show", str(version)])
    assert out.exit_code == 0 and "sample" in out.output
    shown = runner.invoke(app, ["audit", "show", str(version), "--json"])
    assert json.loads(shown.stdout) == data
