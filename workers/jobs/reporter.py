"""Progress and cancellation of a running job, through its row in the job table.

`Reporter(fraction, message)` writes the job's progress at most every `interval` seconds
(and always when forced), and on every write reads whether cancellation was requested or
another worker took the job over; both stop the job at that point. `poll` is the check the
runner installs in the editor's loops (`editor.cancel`), so a cancel stops even a step that
never reports progress within about `interval` seconds.
"""

from __future__ import annotations

import time

from workers.db import Database, JobRow, retry_stale, utcnow
from workers.errors import JobCancelledError, WorkersError


class LeaseLostError(WorkersError):
    """Another worker took the job over (this one was presumed lost); stop without writing."""


class Reporter:
    """Throttled progress writes and cancellation checks for one claimed job."""

    def __init__(self, db: Database, job_id: str, worker_id: str, interval: float = 0.5) -> None:
        self.db, self.job_id, self.worker_id, self.interval = db, job_id, worker_id, interval
        self._last = self._last_poll = 0.0
        self.low, self.high = 0.0, 1.0  # the current stage's share of the whole job

    def stage(self, low: float, high: float) -> None:
        """Map later fractions into [low, high] of the job's progress."""
        self.low, self.high = low, high

    def __call__(self, fraction: float, message: str, force: bool = False) -> None:
        """Record progress within the current stage; raise if cancelled or taken over."""
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        value = self.low + (self.high - self.low) * min(1.0, max(0.0, fraction))

        def write() -> None:
            with self.db.session() as session:
                row = session.get(JobRow, self.job_id)
                self._check(row)
                row.progress, row.message, row.updated_at = round(value, 4), message, utcnow()

        retry_stale(write)

    def poll(self) -> None:
        """`check`, at most once every `interval` seconds (the editor's loops call it often)."""
        now = time.monotonic()
        if now - self._last_poll < self.interval:
            return
        self._last_poll = now
        self.check()

    def check(self) -> None:
        """Raise `JobCancelledError` or `LeaseLostError` if the job should stop now."""
        with self.db.session() as session:
            self._check(session.get(JobRow, self.job_id))

    def _check(self, row: JobRow | None) -> None:
        """Raise when the row says this worker must stop."""
        if row is None or row.worker_id != self.worker_id:
            raise LeaseLostError(f"job {self.job_id} is no longer held by {self.worker_id}")
        if row.cancel_requested:
            raise JobCancelledError(f"job {self.job_id} was cancelled")
