"""Real worker processes on the embedded broker and on Redis: the crash test, and cancel.

The crash test starts a `kgedit worker`, submits a batch of ROME edits, SIGKILLs every
process of the worker once the ledger holds a committed step, and starts a new worker.
The job must finish, end at the same weights as an uninterrupted run of the same batch,
and hold every request's delta exactly once. Every test waits for all worker PIDs to exit,
so a worker still shutting down cannot take the next test's task.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter

import pytest
import torch
from jobs_helpers import WorkerProcess, checked, pid_alive, wait_for
from service_checks import require_redis

from editor.loading import load_model
from kg.importers.evoke import evoke_cases
from workers.db import reset_databases
from workers.edit_run import select_known_edits
from workers.jobs import cancel_job, get_job, submit_job
from workers.jobs.codec import to_plain
from workers.jobs.runner import RunContext, execute_job
from workers.ledger import list_versions, register_model
from workers.settings import get_settings

pytestmark = pytest.mark.slow
REDIS_URL = os.environ.get("KGEDIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
N_EDITS = 6


def _redis() -> str:
    """Return the test Redis URL; skip when unreachable (fail under CI=true)."""
    return require_redis(REDIS_URL)


@pytest.fixture(scope="module")
def batch(tiny_model_dir, evoke_paths, tiny_cases):
    """EVOKE edits the tiny model knows."""
    model, tok = load_model(tiny_model_dir)
    edits = select_known_edits(model, tok, evoke_cases(*evoke_paths, limit=tiny_cases), N_EDITS)
    assert len(edits) == N_EDITS
    return edits


@pytest.fixture(
    params=[
        pytest.param("embedded", id="embedded"),
        pytest.param("redis", id="redis", marks=pytest.mark.service),
    ]
)
def broker_env(request, tmp_path, monkeypatch, tiny_model_dir, tiny_graph):
    """Settings on one broker, with the tiny model registered under a fresh name."""
    monkeypatch.setenv("KGEDIT_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KGEDIT_THREADS", "1")
    if request.param == "redis":
        url = _redis()
        monkeypatch.setenv("KGEDIT_BROKER_URL", url)
        monkeypatch.setenv("KGEDIT_RESULT_BACKEND", url)
    get_settings.cache_clear()
    reset_databases()
    threads = torch.get_num_threads()
    name = f"tiny-{uuid.uuid4().hex[:8]}"  # a fresh queue, whatever an earlier run left
    register_model(name, tiny_model_dir, graph_url=tiny_graph.url)
    register_model(f"{name}-ref", tiny_model_dir, graph_url=tiny_graph.url)
    yield get_settings(), name
    torch.set_num_threads(threads)
    reset_databases()
    get_settings.cache_clear()


def _payload(model, edits):
    return checked({"model": model, "method": "rome", "requests": [to_plain(r) for r in edits]})


def _head(model: str):
    return next(v for v in list_versions(model) if v.is_head)


def test_a_killed_worker_loses_nothing_and_repeats_nothing(broker_env, batch, tmp_path):
    settings, name = broker_env
    # the uninterrupted run of the same batch (in-process, same thread count as the worker)
    ref = submit_job(_payload(f"{name}-ref", batch), enqueue=False)
    assert execute_job(ref.id, RunContext.create(settings)).status == "succeeded"

    first = WorkerProcess(settings, [name], tmp_path / "worker1.log").start()
    try:
        job = submit_job(_payload(name, batch), idempotency_key=f"crash-{name}")
        waiting = submit_job(_payload(name, batch[:1]))
        wait_for(lambda: get_job(job.id).steps_done >= 1, 300, "a committed step")
        first.tree()
    finally:
        first.kill()  # SIGKILL to the parent and its pool child at once
    mid = get_job(job.id)
    assert mid.state == "running" and 1 <= mid.steps_done < N_EDITS, mid
    assert cancel_job(waiting.id).state == "cancelled"  # cancel of a queued job

    second = WorkerProcess(settings, [name], tmp_path / "worker2.log").start()
    try:
        wait_for(lambda: get_job(job.id).done, 300, "the job to finish on the new worker")
        info = get_job(job.id)
        assert info.state == "succeeded", info.error
        assert info.attempts == 2
        assert any(t.message.startswith("resumed on") for t in info.transitions)
        ours = [v for v in list_versions(name) if v.job_id == job.id]
        assert len(ours) == N_EDITS
        assert Counter(r for v in ours for r in v.request_ids) == Counter(
            r.request_id for r in batch
        )
        assert _head(name).checksum == _head(f"{name}-ref").checksum
        skipped = get_job(waiting.id)
        assert skipped.state == "cancelled" and skipped.started_at is None

        # cancel of a running job: its committed deltas are rolled back
        base = _head(name)
        running = submit_job(_payload(name, batch[:4]))
        wait_for(lambda: get_job(running.id).steps_done >= 1, 300, "the job to commit a step")
        cancel_job(running.id)
        wait_for(lambda: get_job(running.id).done, 120, "the cancellation to land")
        cancelled = get_job(running.id)
        assert cancelled.state == "cancelled" and "rolled back" in cancelled.message
        assert _head(name).id == base.id
    finally:
        second.stop()
    assert not any(pid_alive(p) for p in first.pids | second.pids)
