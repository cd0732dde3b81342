"""Take a cancelled job's waiting message off its model's queue.

A message only says "look at job X", and a worker skips a finished job without loading a
model; but on a queue of thousands of cancelled jobs even a cheap skip per message makes a
later job wait (the embedded broker hands out a few messages per poll). So cancelling a
queued job also removes its message where the broker allows it: the embedded SQLAlchemy
transport (a row of `kombu_message`) and Redis (an element of the queue's lists). On other
brokers (AMQP) the message stays and the worker skips it.
"""

from __future__ import annotations

import json
import logging

from workers.celery_app import queue_name
from workers.settings import Settings

log = logging.getLogger(__name__)
REDIS_PRIORITY_SEP = "\x06\x16"
REDIS_PRIORITY_STEPS = (0, 3, 6, 9)


def _marker(job_id: str) -> str:
    """Return the text every message of the job carries in its headers (`argsrepr`)."""
    return f'"argsrepr": "[\'{job_id}\']"'


def _withdraw_sqla(url: str, queue: str, job_id: str) -> int:
    """Delete the job's visible messages from the SQLAlchemy transport's tables."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(
                text(
                    "DELETE FROM kombu_message WHERE visible = :visible AND payload LIKE :pattern"
                    " AND queue_id IN (SELECT id FROM kombu_queue WHERE name = :queue)"
                ),
                {"visible": True, "pattern": f"%{_marker(job_id)}%", "queue": queue},
            )
            return int(result.rowcount or 0)
    finally:
        engine.dispose()


def _withdraw_redis(url: str, queue: str, job_id: str) -> int:
    """Remove the job's messages from the queue's Redis lists (one per priority step)."""
    import redis

    client = redis.Redis.from_url(url)
    removed = 0
    try:
        for step in REDIS_PRIORITY_STEPS:
            key = queue if step == 0 else f"{queue}{REDIS_PRIORITY_SEP}{step}"
            for item in client.lrange(key, 0, -1):
                try:
                    headers = json.loads(item).get("headers", {})
                except ValueError:
                    continue
                if headers.get("argsrepr") == f"['{job_id}']":
                    removed += int(client.lrem(key, 0, item))
    finally:
        client.close()
    return removed


def withdraw(job_id: str, model: str, settings: Settings) -> int:
    """Remove a queued job's messages from its queue; return how many were removed.

    Best effort: a broker that cannot remove a message (or is down) leaves it to the worker,
    which skips finished jobs.
    """
    broker, queue = settings.broker, queue_name(model)
    try:
        if broker.startswith(("sqla+", "sqlalchemy+")):
            return _withdraw_sqla(broker.split("+", 1)[1], queue, job_id)
        if broker.startswith(("redis://", "rediss://")):
            return _withdraw_redis(broker, queue, job_id)
    except Exception as exc:
        log.warning("could not withdraw the message of cancelled job %s: %s", job_id, exc)
    return 0
