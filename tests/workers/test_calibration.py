"""Calibration requests: options, cancellation, a graph the model does not know, a full run.

The second graph is the synthetic world (`kg.importers.synthetic`): the tiny model was trained
on EVOKE and knows none of it, so calibrating on it fails and the presets stay.
"""

from __future__ import annotations

import json

import pytest
from jobs_helpers import job_settings, random_model_dir  # noqa: F401
from typer.testing import CliRunner

from api.cli import app
from kg.importers.synthetic import import_synthetic
from kg.store.sql import SqlGraphStore
from workers.calibration import (
    cancel_calibration,
    execute_calibration,
    get_calibration_request,
    list_calibrations,
    model_calibration,
    request_calibration,
)
from workers.errors import InvalidInputError, ModelNotFoundError
from workers.ledger import register_model


def test_options_are_checked_and_unknown_models_refused(job_settings, random_model_dir):  # noqa: F811
    register_model("rand", random_model_dir)
    with pytest.raises(InvalidInputError, match=r"n_trace must be an integer in 2\.\.200"):
        request_calibration("rand", options={"n_trace": 1}, enqueue=False)
    with pytest.raises(InvalidInputError, match="unknown calibration option 'lr'"):
        request_calibration("rand", options={"lr": 3}, enqueue=False)
    with pytest.raises(ModelNotFoundError):
        request_calibration("nobody", enqueue=False)


def test_a_queued_calibration_can_be_cancelled(job_settings, random_model_dir):  # noqa: F811
    register_model("rand", random_model_dir)
    info = request_calibration("rand", options={"n_dev": 3}, enqueue=False)
    assert (info.state, info.options, info.version_id) == ("queued", {"n_dev": 3}, 1)
    cancelled = cancel_calibration(info.id)
    assert cancelled.state == "cancelled" and cancelled.finished_at is not None
    assert execute_calibration(info.id).state == "cancelled"  # nothing runs
    assert [c.id for c in list_calibrations("rand")] == [info.id]
    assert model_calibration("rand") is None


def test_a_graph_the_model_does_not_know_keeps_the_presets(job_settings, tiny_model_dir, tmp_path):  # noqa: F811
    graph = SqlGraphStore(f"sqlite:///{tmp_path / 'world.sqlite'}")
    import_synthetic(graph, 60, seed=3)
    register_model("tiny", tiny_model_dir, graph_url=graph.url)
    info = execute_calibration(request_calibration("tiny", enqueue=False).id)
    assert info.state == "failed"
    assert "calibration needs at least 2 facts the model knows" in info.error
    assert model_calibration("tiny") is None


@pytest.mark.slow
def test_calibrate_stores_the_result_with_the_model(job_settings, tiny_model_dir, tiny_graph):  # noqa: F811
    register_model("tiny", tiny_model_dir, graph_url=tiny_graph.url)
    out = CliRunner().invoke(
        app, ["models", "calibrate", "tiny", "--n-trace", "3", "--n-dev", "2",
              "--samples", "2", "--json"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    info = json.loads(out.stdout)
    assert info["state"] == "succeeded" and info["progress"] == 1.0
    stored = model_calibration("tiny")
    assert stored == info["result"] and stored["version_id"] == 1
    assert stored["fact_token"] in {"subject_first", "subject_last", "subject_all"}
    assert stored["trace"]["n_cases"] == 3 and len(stored["dev"]["grid"]["rome"]) == 8
    assert get_calibration_request(info["id"]).state == "succeeded"
    shown = CliRunner().invoke(app, ["models", "calibrate", "tiny", "--show", "--json"])
    assert json.loads(shown.stdout) == stored
