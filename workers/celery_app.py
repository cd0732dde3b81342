"""The Celery application: broker and results from the settings, one queue per model.

Embedded default: kombu's SQLAlchemy transport on a SQLite file, results in SQLite, so a
fresh checkout needs no server. `redis://` and `amqp://` URLs work the same. kombu 5.7 hands
every `broker_transport_options` entry of the SQLAlchemy transport to `create_engine()`, so
its poll interval is set on the transport class instead (`Transport.polling_interval`).

Delivery is at least once (`acks_late`, `reject_on_worker_lost`, prefetch 1); the job table
and the ledger make the effect exactly once (`workers.jobs.runner`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from celery import Celery
from sqlalchemy.engine import make_url

from workers.settings import Settings, get_settings

R = TypeVar("R")

TASK_RUN_JOB = "kgedit.run_job"
QUEUE_PREFIX = "kgedit.model."
DEFAULT_QUEUE = "kgedit.default"

_APPS: dict[tuple[str, str], Celery] = {}
_LOCK = threading.Lock()


def queue_name(model: str) -> str:
    """Return the queue of one model: every job of a model goes through it, one at a time."""
    return f"{QUEUE_PREFIX}{model}"


def _prepare_sqlite(url: str, prefix: str) -> None:
    """Create the parent directory of a SQLite broker or backend file."""
    parsed = make_url(url[len(prefix) :])
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def make_app(settings: Settings) -> Celery:
    """Build a Celery app for the settings' broker and result backend."""
    broker, backend = settings.broker, settings.results
    transport_options: dict = {}
    if broker.startswith(("sqla+", "sqlalchemy+")):
        import kombu.transport.sqlalchemy as sqla

        sqla.Transport.polling_interval = settings.broker_poll_interval
        _prepare_sqlite(broker, broker.split("+", 1)[0] + "+")
    elif broker.startswith(("redis://", "rediss://")):
        transport_options["visibility_timeout"] = settings.broker_visibility_timeout
    if backend.startswith("db+"):
        _prepare_sqlite(backend, "db+")
    app = Celery("kgedit", broker=broker, backend=backend, include=["workers.tasks"])
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=DEFAULT_QUEUE,
        task_create_missing_queues=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options,
        result_expires=7 * 24 * 3600,
        result_extended=False,
        worker_hijack_root_logger=False,
        worker_max_tasks_per_child=None,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_time_limit=None,
    )
    return app


def get_app(settings: Settings | None = None) -> Celery:
    """Return the process-wide app of these settings' broker and backend (built once)."""
    settings = settings or get_settings()
    key = (settings.broker, settings.results)
    with _LOCK:
        app = _APPS.get(key)
        if app is None:
            app = make_app(settings)
            _APPS[key] = app
        return app


def send_to_model(settings: Settings | None, task: str, row_id: str, model: str) -> None:
    """Send a task naming one row (an audit, a calibration) to the model's queue."""
    get_app(settings).send_task(task, args=[row_id], queue=queue_name(model))


def record_and_send(
    settings: Settings | None, row: Any, view: Callable[[Any], R], task: str, send: bool = True
) -> R:
    """Insert a row of requested work (an audit, a calibration) and, with `send`, send `task`
    naming it to its model's queue; return `view(row)`."""
    from workers.db import get_database

    with get_database((settings or get_settings()).metadata_db_url).session() as session:
        session.add(row)
        info = view(row)
    if send:
        send_to_model(settings, task, row.id, row.model_name)
    return info


def enqueue(job_id: str, model: str, settings: Settings | None = None, countdown: float = 0.0):
    """Send one `run_job` message for a job to its model's queue; return the AsyncResult."""
    app = get_app(settings)
    return app.send_task(
        TASK_RUN_JOB, args=[job_id], queue=queue_name(model), countdown=countdown or None
    )
