"""What a test does when a service it needs is missing: skip, or fail under CI=true."""

from __future__ import annotations

import os

import pytest


def skip_or_fail(reason: str) -> None:
    """Skip the test, or fail it when CI=true (a missing service must not pass silently)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def require_redis(url: str) -> str:
    """Return `url` when a Redis server answers there; otherwise skip (fail under CI=true)."""
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except Exception as exc:
        skip_or_fail(f"Redis unreachable at {url}: {exc}")
    return url


def require_amqp(url: str) -> str:
    """Return `url` when a RabbitMQ broker answers there; otherwise skip (fail under CI=true)."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        skip_or_fail(f"RabbitMQ unreachable at {url}: {exc}")
    return url
