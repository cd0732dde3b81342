"""Refuse early over HTTP: a request lacking what its method needs is a 422, nothing queued."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workers"))
from jobs_helpers import random_model_dir  # noqa: F401

from workers.jobs import list_jobs
from workers.ledger import register_model


@pytest.fixture
def model(api_settings, random_model_dir):  # noqa: F811
    """A registered random model named `tiny`."""
    return register_model("tiny", random_model_dir, settings=api_settings).name


EDIT = {"subject": "Ada Lovelace", "prompt": "{} was born in", "target_new": "Tokyo"}


@pytest.mark.parametrize(
    ("kind", "method", "request_body", "lacks"),
    [
        ("unlearn", "rocr", {"concept": "Mount Fuji"}, "anchor"),
        ("edit", "glame", EDIT, "subgraph"),
        ("unlearn", "npo", {"concept": "Mount Fuji", "forget_texts": ["x y z"]}, "retain_texts"),
    ],
)
def test_job_lacking_a_method_input_is_422_and_queues_nothing(
    client, as_role, model, api_settings, kind, method, request_body, lacks
):
    body = {"model": model, "kind": kind, "method": method, "requests": [request_body]}
    r = client.post("/v1/jobs", json=body, headers=as_role("operator"))
    assert r.status_code == 422, r.text
    assert lacks in r.text and method in r.text and "requests[0]" in r.text
    assert list_jobs(settings=api_settings) == []


def test_upload_with_an_unanchored_concept_queues_nothing(client, as_role, model, api_settings):
    """The default unlearning method needs an anchor: the whole upload is refused."""
    lines = [{"type": "edit", **EDIT}, {"type": "unlearn", "concept": "Mount Fuji"}]
    body = "\n".join(json.dumps(x) for x in lines).encode()
    r = client.post(
        "/v1/jobs/upload", params={"model": model}, content=body, headers=as_role("operator")
    )
    assert r.status_code == 422, r.text
    assert "anchor" in r.text
    assert list_jobs(settings=api_settings) == []


def test_complete_request_is_accepted(client, as_role, model):
    body = {
        "model": model,
        "kind": "unlearn",
        "method": "rocr",
        "requests": [{"concept": "Mount Fuji", "anchor": "Paris"}],
    }
    r = client.post("/v1/jobs", json=body, headers=as_role("operator"))
    assert r.status_code == 201, r.text


def test_cli_unlearn_without_anchor_is_refused(tmp_path, monkeypatch, random_model_dir):  # noqa: F811
    """`kgedit unlearn` goes through the same submission check: exit 2, nothing queued."""
    from typer.testing import CliRunner

    from api.cli import app
    from workers.db import reset_databases
    from workers.settings import get_settings

    monkeypatch.setenv("KGEDIT_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    reset_databases()
    try:
        register_model("rand", random_model_dir)
        out = CliRunner().invoke(app, ["unlearn", "--model", "rand", "--concept", "Mount Fuji"])
        assert out.exit_code == 2 and "anchor" in out.output, out.output
        assert list_jobs(model="rand") == []
    finally:
        reset_databases()
        get_settings.cache_clear()
