"""Celery tasks and worker hooks: `run_job`, the recovery of jobs whose worker was lost, and
a warning for queued jobs of a model this worker does not serve that nobody has claimed.

Start a worker with `kgedit worker` (or `celery -A workers.tasks worker -Q kgedit.model.NAME
-c 1`). Each worker process keeps one `RunContext` (settings, warm models) for its life.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import signals

from workers.audit.requested import TASK_RUN_AUDIT, execute_audit
from workers.calibration import TASK_RUN_CALIBRATION, execute_calibration
from workers.celery_app import QUEUE_PREFIX, TASK_RUN_JOB, enqueue, get_app
from workers.db import get_database, reset_databases
from workers.jobs.lease import mark_enqueued, orphans, unclaimed
from workers.jobs.runner import RunContext, backoff_seconds, execute_job
from workers.settings import Settings, get_settings
from workers.sync.loop import RETRY_STATES, after_job

log = logging.getLogger(__name__)
app = get_app()

_CONTEXT: RunContext | None = None
_RECOVERY: threading.Event | None = None


def context() -> RunContext:
    """Return this process's run context (created on first use)."""
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = RunContext.create(get_settings())
    return _CONTEXT


@app.task(
    name=TASK_RUN_JOB, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None
)
def run_job(self: Any, job_id: str) -> dict[str, str]:
    """Run one delivery of a job (idempotent: the job table and the ledger decide)."""
    settings = context().settings
    try:
        outcome = execute_job(job_id, context())
    except Exception as exc:  # the outcome could not be recorded (database down): later
        delay = backoff_seconds(self.request.retries + 1, settings.job_retry_backoff_max)
        log.exception("job %s: delivery failed, redelivering in %.1fs", job_id, delay)
        raise self.retry(exc=exc, countdown=delay) from exc
    if outcome.status == "retry":
        raise self.retry(countdown=outcome.countdown)
    if outcome.status in RETRY_STATES:
        try:
            after_job(job_id, settings=settings)
        except Exception:  # the job's own outcome stands; `replan` can try again
            log.exception("job %s: could not submit the sync loop's next attempt", job_id)
    return {"job_id": job_id, "status": outcome.status, "detail": outcome.detail}


def recover(settings: Settings | None = None, grace_s: float | None = None) -> list[str]:
    """Send a message again for every job whose worker was lost or whose message never left."""
    settings = settings or get_settings()
    db = get_database(settings.metadata_db_url)
    sent = []
    for job_id, model in orphans(db, settings.job_lease_seconds, grace_s):
        try:
            enqueue(job_id, model, settings)
        except Exception as exc:
            log.warning("recovery could not enqueue job %s: %s", job_id, exc)
            continue
        mark_enqueued(db, job_id)
        sent.append(job_id)
    if sent:
        log.warning("recovered %d job(s): %s", len(sent), ", ".join(sent))
    return sent


def served_models() -> set[str]:
    """Return the models whose queues this worker consumes now."""
    queues = list(app.amqp.queues.consume_from)  # one C-level copy: safe beside the consumer
    return {q[len(QUEUE_PREFIX) :] for q in queues if q.startswith(QUEUE_PREFIX)}


def warn_unclaimed(settings: Settings, warned: set[str]) -> list[str]:
    """Log once per job a queued job unclaimed for a lease whose model this worker skips."""
    waiting = unclaimed(get_database(settings.metadata_db_url), settings.job_lease_seconds)
    warned &= {job_id for job_id, _, _ in waiting}  # forget jobs that moved on
    served, new = served_models(), []
    for job_id, model, waited in waiting:
        if job_id in warned or model in served:
            continue
        warned.add(job_id)
        new.append(job_id)
        log.warning(
            "job %s for model %s has waited %.0f s and no worker has claimed it; this worker "
            "does not serve %s: start `kgedit worker` (every model) or `kgedit worker --model %s`",
            job_id,
            model,
            waited,
            model,
            model,
        )
    return new


def _recovery_loop(stop: threading.Event, settings: Settings) -> None:
    """Scan for lost and unclaimed jobs every half lease until `stop` is set."""
    warned: set[str] = set()
    while not stop.wait(max(1.0, settings.job_lease_seconds / 2)):
        try:
            recover(settings)
            warn_unclaimed(settings, warned)
        except Exception as exc:
            log.warning("recovery scan failed: %s", exc)


@signals.worker_ready.connect
def _on_ready(**_: Any) -> None:
    """At start-up, re-send lost jobs at once, then keep scanning in the background."""
    global _RECOVERY
    settings = get_settings()
    recover(settings, grace_s=0.0)
    _RECOVERY = threading.Event()
    threading.Thread(
        target=_recovery_loop, args=(_RECOVERY, settings), name="kgedit-recovery", daemon=True
    ).start()


@signals.worker_shutdown.connect
def _on_shutdown(**_: Any) -> None:
    """Stop the recovery scan."""
    if _RECOVERY is not None:
        _RECOVERY.set()


@signals.worker_process_init.connect
def _on_child(**_: Any) -> None:
    """A forked pool process must not share its parent's database connections."""
    global _CONTEXT
    reset_databases()
    _CONTEXT = None


@app.task(name=TASK_RUN_AUDIT, acks_late=True, reject_on_worker_lost=True)
def run_audit_task(report_id: str) -> dict[str, str]:
    """Run one requested audit on this worker (idempotent: a finished audit is kept)."""
    info = execute_audit(report_id, context().settings)
    return {"report_id": report_id, "state": info.state}


@app.task(name=TASK_RUN_CALIBRATION, acks_late=True, reject_on_worker_lost=True)
def run_calibration_task(calibration_id: str) -> dict[str, str]:
    """Run one requested calibration on this worker (a finished one is kept)."""
    info = execute_calibration(calibration_id, context().settings)
    return {"calibration_id": calibration_id, "state": info.state}
