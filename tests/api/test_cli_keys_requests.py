"""`kgedit keys …`, `kgedit edit` and `kgedit unlearn`: real metadata database, clear errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from api.cli import app
from workers.db import reset_databases
from workers.settings import get_settings

runner = CliRunner()


@pytest.fixture
def var_env(tmp_path, monkeypatch):
    """Point the settings at a temporary var directory."""
    monkeypatch.setenv("KGEDIT_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    reset_databases()
    yield tmp_path
    reset_databases()
    get_settings.cache_clear()


def test_keys_create_list_revoke(var_env):
    out = runner.invoke(app, ["keys", "create", "--role", "reviewer", "--name", "rita", "--json"])
    assert out.exit_code == 0, out.output
    created = json.loads(out.output)
    assert created["key"].startswith("kge_") and created["role"] == "reviewer"
    listed = json.loads(runner.invoke(app, ["keys", "list", "--json"]).output)
    assert [(k["name"], k["revoked"]) for k in listed] == [("rita", False)]
    assert created["key"] not in runner.invoke(app, ["keys", "list"]).output
    assert runner.invoke(app, ["keys", "revoke", created["key_id"]]).exit_code == 0
    assert json.loads(runner.invoke(app, ["keys", "list", "--json"]).output)[0]["revoked"]
    bad = runner.invoke(app, ["keys", "create", "--role", "god", "--name", "x"])
    assert bad.exit_code != 0
    assert runner.invoke(app, ["keys", "revoke", "0badc0de"]).exit_code == 2


def test_edit_and_unlearn_refuse_bad_input(var_env):
    out = runner.invoke(
        app, ["edit", "--model", "ghost", "--subject", "A", "--prompt", "{} is", "--new", "B"]
    )
    assert out.exit_code == 2 and "not registered" in out.output
    out = runner.invoke(
        app, ["edit", "--model", "ghost", "--subject", "A", "--prompt", "no slot", "--new", "B"]
    )
    assert out.exit_code == 2 and "{}" in out.output
    out = runner.invoke(app, ["unlearn", "--model", "ghost", "--concept", "X"])
    assert out.exit_code == 2
