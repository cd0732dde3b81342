"""Who works on a job: claiming it, heartbeats, and finding jobs whose worker was lost.

A worker claims a job before touching it; the claim names the worker (`host:pid`) and is
kept fresh by a heartbeat thread. Another delivery of the same job (a redelivered or
duplicated message) backs off while the owner lives. The owner counts as lost when its
process is gone (same host) or its heartbeat is older than the lease (other hosts).

Brokers do not all give a message back when a worker dies: kombu's SQLAlchemy transport
marks a fetched message invisible and never restores it after SIGKILL, and Redis waits for
the visibility timeout. So `orphans` reads the job table, the source of truth, and every
worker re-sends messages for lost jobs at start-up and then periodically; duplicates are
harmless because of the claim and the ledger.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import psutil
from sqlalchemy import or_, select, update

from workers.db import Database, JobRow, retry_stale, utcnow
from workers.jobs.states import ACTIVE, TERMINAL, JobState

log = logging.getLogger(__name__)
HOST = socket.gethostname()


def worker_identity() -> str:
    """Return this process's worker id, `host:pid`."""
    return f"{HOST}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """Return whether a local process exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def owner_alive(
    worker_id: str | None, heartbeat_at: datetime | None, lease_s: float, now: datetime
) -> bool:
    """Return whether the worker holding a job is still alive."""
    if not worker_id:
        return False
    host, _, pid = worker_id.rpartition(":")
    if host == HOST and pid.isdigit():
        return pid_alive(int(pid))
    return heartbeat_at is not None and (now - heartbeat_at).total_seconds() < lease_s


@dataclass(frozen=True)
class Claim:
    """A successful claim: the job's state then, and whom it was taken from."""

    job_id: str
    state: str
    run: int
    attempts: int
    previous_owner: str | None

    @property
    def resumed(self) -> bool:
        """Return whether another delivery had started this run (the job was live)."""
        return self.state in ACTIVE


def claim(db: Database, job_id: str, worker_id: str, lease_s: float) -> tuple[str, Claim | None]:
    """Try to take a job: ("claimed", Claim) or (reason, None) with reason missing/final/held."""

    def attempt() -> tuple[str, Claim | None]:
        with db.session() as session:
            row = session.get(JobRow, job_id)
            if row is None:
                return "missing", None
            if row.state in TERMINAL:
                return "final", None
            now = utcnow()
            if row.worker_id not in (None, worker_id) and owner_alive(
                row.worker_id, row.heartbeat_at, lease_s, now
            ):
                return "held", None
            previous = row.worker_id
            row.worker_id, row.heartbeat_at = worker_id, now
            row.attempts += 1
            row.started_at = row.started_at or now
            row.next_attempt_at = None
            return "claimed", Claim(row.id, row.state, row.run, row.attempts, previous)

    return retry_stale(attempt)


class Heartbeat:
    """A daemon thread that refreshes a claimed job's heartbeat every `interval` seconds."""

    def __init__(self, db: Database, job_id: str, worker_id: str, interval: float) -> None:
        self.db, self.job_id, self.worker_id, self.interval = db, job_id, worker_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.db.session() as session:
                    session.execute(
                        update(JobRow)
                        .where(JobRow.id == self.job_id, JobRow.worker_id == self.worker_id)
                        .values(heartbeat_at=utcnow())
                        .execution_options(synchronize_session=False)
                    )
            except Exception as exc:  # a missed beat is not fatal; the lease is generous
                log.warning("heartbeat of job %s failed: %s", self.job_id, exc)


def orphans(db: Database, lease_s: float, grace_s: float | None = None) -> list[tuple[str, str]]:
    """Return (job id, model) of jobs needing a new message: lost owner, never sent, lost retry.

    A job re-sent less than `grace_s` ago (default: the lease) is left alone, so a periodic
    scan does not flood a queue with duplicates of a job still waiting its turn.
    """
    grace = timedelta(seconds=lease_s if grace_s is None else grace_s)
    now = utcnow()
    out = []
    with db.session() as session:
        live = session.scalars(
            select(JobRow).where(JobRow.state.in_([s.value for s in ACTIVE]))
        ).all()
        for row in live:
            if owner_alive(row.worker_id, row.heartbeat_at, lease_s, now):
                continue
            if row.enqueued_at is not None and now - row.enqueued_at < grace:
                continue
            out.append((row.id, row.model_name))
        queued = session.scalars(
            select(JobRow).where(
                JobRow.state == JobState.QUEUED.value,
                or_(JobRow.enqueued_at.is_(None), JobRow.next_attempt_at.is_not(None)),
            )
        ).all()
        for row in queued:
            due = row.next_attempt_at or row.created_at
            if now - due >= grace and (row.enqueued_at is None or now - row.enqueued_at >= grace):
                out.append((row.id, row.model_name))
    return out


def unclaimed(
    db: Database, wait_s: float, job_id: str | None = None
) -> list[tuple[str, str, float]]:
    """Return (job id, model, seconds) of sent queued jobs no worker took within `wait_s`.

    A job behind a running job of its own model is waiting its turn, so it is left out; a
    retry counts from when it fell due. `job_id` narrows the answer to one job.
    """
    now = utcnow()
    out = []
    with db.session() as session:
        busy = set(
            session.scalars(
                select(JobRow.model_name).where(JobRow.state.in_([s.value for s in ACTIVE]))
            )
        )
        query = select(JobRow.id, JobRow.model_name, JobRow.enqueued_at, JobRow.next_attempt_at)
        query = query.where(JobRow.state == JobState.QUEUED.value, JobRow.enqueued_at.is_not(None))
        if job_id is not None:
            query = query.where(JobRow.id == job_id)
        for jid, model, enqueued, due in session.execute(query):
            waited = (now - max(enqueued, due or enqueued)).total_seconds()
            if model not in busy and waited >= wait_s:
                out.append((jid, model, waited))
    return out


def mark_enqueued(db: Database, job_id: str) -> None:
    """Stamp a job as (re)sent now."""

    def stamp() -> None:
        with db.session() as session:
            row = session.get(JobRow, job_id)
            if row is not None:
                row.enqueued_at = utcnow()

    retry_stale(stamp)
