"""A worker started before a model was registered serves it without a restart.

A real `kgedit worker` (no `--model`) starts with no registered model; a model registered
afterwards gets its queue consumed within a few refresh periods, the worker logs it, and a
job for the model runs to its end. On the embedded broker (blocking loop, timer thread) and on
Redis (event loop).
"""

from __future__ import annotations

import os
import uuid
from types import SimpleNamespace

import pytest
from jobs_helpers import (  # noqa: F401
    WorkerProcess,
    checked,
    edit_payload,
    job_settings,
    random_model_dir,
    wait_for,
)
from service_checks import require_amqp, require_redis

from workers.celery_app import queue_name
from workers.db import reset_databases
from workers.jobs import get_job, submit_job
from workers.ledger import register_model
from workers.settings import get_settings

REDIS_URL = os.environ.get("KGEDIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
AMQP_URL = os.environ.get("KGEDIT_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
SERVING = "now serving model {} (registered after start)"


@pytest.fixture(
    params=[
        pytest.param("embedded", id="embedded"),
        pytest.param("redis", id="redis", marks=pytest.mark.service),
        pytest.param("amqp", id="amqp", marks=pytest.mark.service),
    ]
)
def refresh_settings(request, job_settings, monkeypatch):  # noqa: F811
    """Isolated settings on one broker, with a one-second refresh."""
    monkeypatch.setenv("KGEDIT_WORKER_REFRESH_SECONDS", "1")
    if request.param == "redis":
        monkeypatch.setenv("KGEDIT_BROKER_URL", require_redis(REDIS_URL))
        monkeypatch.setenv("KGEDIT_RESULT_BACKEND", REDIS_URL)
    if request.param == "amqp":  # results stay in the embedded SQLite backend
        monkeypatch.setenv("KGEDIT_BROKER_URL", require_amqp(AMQP_URL))
    get_settings.cache_clear()
    reset_databases()
    yield get_settings()
    reset_databases()
    get_settings.cache_clear()


@pytest.mark.slow
def test_a_model_registered_after_start_is_served(refresh_settings, random_model_dir, tmp_path):  # noqa: F811
    log = tmp_path / "worker.log"
    worker = WorkerProcess(refresh_settings, [], log).start()  # the environment has the 1 s
    try:
        assert "no registered models yet" in log.read_text()
        name = f"late-{uuid.uuid4().hex[:8]}"  # a fresh queue, whatever an earlier run left
        register_model(name, random_model_dir)
        edit = [("Ada Lovelace", "{} was born in", "Tokyo")]
        job = submit_job(checked(edit_payload(name, edit, method="ft")))
        wait_for(lambda: get_job(job.id).done, 240, f"job {job.id} to finish (log: {log})")
        info = get_job(job.id)
        assert info.state == "succeeded", (info.state, info.error)
        text = log.read_text()
        assert SERVING.format(name) in text, text
        assert text.count(SERVING.format(name)) == 1  # once, not on every refresh
    finally:
        worker.stop()


class _Consumer:
    """The parts of a Celery consumer the step uses: its queues, timer and `call_soon`."""

    def __init__(self, consumed: list[str]) -> None:
        self.app = SimpleNamespace(amqp=SimpleNamespace(queues=SimpleNamespace(consume_from={})))
        self.app.amqp.queues.consume_from = {queue_name(n): None for n in consumed}
        self.timer = SimpleNamespace(call_repeatedly=lambda *a, **k: SimpleNamespace())
        self.pending: list = []
        self.added: list[str] = []
        self.fail = False

    def call_soon(self, fn, *args):
        self.pending.append(lambda: fn(*args))

    def add_task_queue(self, queue: str) -> None:
        if self.fail:
            raise ConnectionError("broker gone")
        self.added.append(queue)

    def run_pending(self) -> None:
        """What the consumer's own loop does on its next turn."""
        pending, self.pending = self.pending, []
        for fn in pending:
            fn()


def test_the_refresh_hands_new_queues_to_the_consumer_thread(job_settings, random_model_dir):  # noqa: F811
    from workers.queue_refresh import QueueRefresh

    register_model("early", random_model_dir)
    c = _Consumer(["early"])
    step = QueueRefresh(c)
    step.start(c)
    step.tick(c)
    assert c.pending == []  # a model served from the start is not added again
    register_model("late", random_model_dir)
    step.tick(c)
    assert c.added == []  # the timer never touches the channel itself
    c.fail = True
    c.run_pending()
    assert c.added == []
    c.fail = False
    step.tick(c)  # a failed start is tried again on the next tick
    c.run_pending()
    assert c.added == [queue_name("late")]
    step.tick(c)
    assert c.pending == []  # once served, never again
