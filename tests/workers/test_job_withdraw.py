"""Cancelling a queued job takes its message off the queue (embedded broker and Redis), so
cancelled jobs never make a later job wait behind them."""

from __future__ import annotations

import os
import uuid

import pytest
from jobs_helpers import broker_messages, edit_payload, random_model_dir  # noqa: F401

from workers.celery_app import queue_name
from workers.db import reset_databases
from workers.jobs import cancel_job, submit_job
from workers.ledger import register_model
from workers.settings import Settings

REDIS = os.environ.get("KGEDIT_TEST_REDIS_URL", "redis://127.0.0.1:6379")
EDITS = [("Ada Lovelace", "{} was born in", "Tokyo")]


def _redis_messages(settings: Settings, model: str) -> int:
    import redis

    client = redis.Redis.from_url(settings.broker)
    try:
        return int(client.llen(queue_name(model)))
    finally:
        client.close()


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.service)])
def broker(request, tmp_path):
    """Settings on the embedded broker, or on a Redis DB under a unique model queue."""
    reset_databases()
    if request.param == "sqlite":
        yield Settings(var_dir=tmp_path / "var"), broker_messages
    else:
        url = f"{REDIS}/{1 + uuid.uuid4().int % 15}"
        yield (
            Settings(var_dir=tmp_path / "var", broker_url=url, result_backend=url),
            (_redis_messages),
        )
    reset_databases()


def test_cancelling_a_queued_job_removes_its_message(broker, random_model_dir):  # noqa: F811
    settings, messages = broker
    model = f"m-{uuid.uuid4().hex[:8]}"  # a queue of its own, also on a shared Redis
    register_model(model, random_model_dir, settings=settings)
    jobs = [submit_job(edit_payload(model, EDITS), settings=settings) for _ in range(3)]
    assert messages(settings, model) == 3
    for job in jobs[:2]:
        assert cancel_job(job.id, settings=settings).state == "cancelled"
    assert messages(settings, model) == 1
    cancel_job(jobs[2].id, settings=settings)
    assert messages(settings, model) == 0
