"""Resuming a stateful method: its declared rebuilder (AlphaEdit: the keys of earlier
batches) recomputes the state from the ledger, or the job refuses to resume."""

from __future__ import annotations

import dataclasses
import subprocess

import pytest
import torch
from jobs_helpers import checked, job_settings, random_model_dir  # noqa: F401

import editor.methods as registry
import editor.methods.registry as method_registry
from workers.jobs import get_job, submit_job
from workers.jobs.lease import HOST
from workers.jobs.runner import RunContext, execute_job
from workers.ledger import list_versions, register_model

REQUESTS = [
    {"subject": "Ada Lovelace", "prompt": "{} was born in", "target_new": "Tokyo"},
    {"subject": "Marie Curie", "prompt": "{} is located in", "target_new": "London"},
    {"subject": "Mount Fuji", "prompt": "{} speaks", "target_new": "Paris"},
]


# The stateful edit methods that declare a rebuilder; the tests run the first.
REBUILT = [n for n in registry.names("edit") if registry.get(n).rebuild is not None]
RESUMABLE = REBUILT[0]


class SimulatedCrash(BaseException):
    """Stands in for SIGKILL inside one process."""


@pytest.fixture
def models(job_settings, random_model_dir, tiny_graph):  # noqa: F811
    threads = torch.get_num_threads()
    for name in ("ae", "ae-ref"):
        register_model(name, random_model_dir, graph_url=tiny_graph.url)
    yield job_settings
    torch.set_num_threads(threads)


def _payload(model: str) -> dict:
    return checked(
        {
            "model": model,
            "method": RESUMABLE,
            "requests": REQUESTS,
            "hparams": {"v_num_grad_steps": 5, "mom2_n_samples": 1000},
        }
    )


def _crash_after_two(settings) -> tuple[str, subprocess.Popen]:
    """Run the batch until two steps are committed, then 'kill' its worker."""
    job = submit_job(_payload("ae"), enqueue=False)

    def crash(job_id: str, step: int) -> None:
        if step == 1:
            raise SimulatedCrash

    stand_in = subprocess.Popen(["sleep", "600"])
    ctx = RunContext.create(settings, worker_id=f"{HOST}:{stand_in.pid}", after_step=crash)
    with pytest.raises(SimulatedCrash):
        execute_job(job.id, ctx)
    stand_in.kill()
    stand_in.wait()
    return job.id, stand_in


def _head(model: str) -> str:
    return next(v for v in list_versions(model) if v.is_head).checksum


def test_a_stateful_method_resumes_to_the_uninterrupted_weights(models):
    assert registry.get(RESUMABLE).stateful
    ref = submit_job(_payload("ae-ref"), enqueue=False)
    assert execute_job(ref.id, RunContext.create(models)).status == "succeeded"
    job_id, _ = _crash_after_two(models)
    assert get_job(job_id).steps_done == 2
    assert execute_job(job_id, RunContext.create(models)).status == "succeeded"
    assert _head("ae") == _head("ae-ref")


def test_a_stateful_method_without_a_rebuilder_refuses_to_resume(models, monkeypatch):
    job_id, _ = _crash_after_two(models)
    without = dataclasses.replace(registry.get(RESUMABLE), rebuild=None)
    monkeypatch.setitem(method_registry._REGISTRY, RESUMABLE, without)
    assert execute_job(job_id, RunContext.create(models)).status == "failed"
    info = get_job(job_id)
    assert "keeps state across batches and cannot resume" in info.message
    assert "2 delta(s) rolled back" in info.message
    assert {v.status for v in list_versions("ae") if v.job_id == job_id} == {"discarded"}
