"""A worker picks up models registered after it started: a consumer bootstep on its timer.

`kgedit worker` without `--model` adds `QueueRefresh` to the Celery consumer. Every
`worker_refresh_seconds` the consumer's timer reads the registered model names; each new one
is handed to `Consumer.call_soon`, which runs `add_task_queue` on the thread that drives the
consumer: the event loop itself on Redis and AMQP (the timer is the hub's, so the read, too,
runs there), and on the embedded SQLAlchemy transport, whose blocking loop has a timer thread
of its own, the loop's next turn (`perform_pending_operations`, at most one `drain_events`
timeout later). So the broker channel is only ever touched by the consumer's own thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery, bootsteps

from workers.celery_app import QUEUE_PREFIX, queue_name
from workers.settings import get_settings

log = logging.getLogger(__name__)


def registered_names() -> list[str]:
    """Return the names of the registered models (one cheap query, no torch)."""
    from sqlalchemy import select

    from workers.db import ModelRow
    from workers.ledger.registry import db_of

    with db_of(None).session() as session:
        return list(session.scalars(select(ModelRow.name).order_by(ModelRow.name)))


class QueueRefresh(bootsteps.StartStopStep):
    """Consumer step: start consuming the queue of every model registered after start-up."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.interval = get_settings().worker_refresh_seconds
        self.known: set[str] = set()
        self.lock = threading.Lock()
        self.tref: Any = None

    def start(self, c: Any) -> None:
        """Note the queues served now and schedule the periodic read (again after a reconnect)."""
        served = {q for q in c.app.amqp.queues.consume_from if q.startswith(QUEUE_PREFIX)}
        with self.lock:
            self.known |= {q[len(QUEUE_PREFIX) :] for q in served}
        self.tref = c.timer.call_repeatedly(self.interval, self.tick, (c,), priority=10)

    def stop(self, c: Any) -> None:
        """Cancel the periodic read."""
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def tick(self, c: Any) -> None:
        """Read the registered models; hand each new one to the consumer's thread."""
        try:
            names = registered_names()
        except Exception as exc:  # the metadata database is down: try again next tick
            log.warning("queue refresh could not read the registered models: %s", exc)
            return
        with self.lock:
            new = [n for n in names if n not in self.known]
            self.known.update(new)
        for name in new:
            c.call_soon(self.serve, c, name)

    def serve(self, c: Any, name: str) -> None:
        """Consume one more model's queue (runs on the consumer's thread)."""
        try:
            c.add_task_queue(queue_name(name))
        except Exception as exc:  # a broker error: the next tick tries again
            with self.lock:
                self.known.discard(name)
            log.warning("could not start serving model %s: %s", name, exc)
            return
        log.info("now serving model %s (registered after start)", name)


def enable_queue_refresh(app: Celery) -> bool:
    """Add `QueueRefresh` to the app's consumer unless the setting turns it off (0)."""
    if get_settings().worker_refresh_seconds <= 0:
        return False
    app.steps["consumer"].add(QueueRefresh)
    return True
