"""The job state machine (docs/jobs.md, "States") and the one function that moves a job along it.

    queued → planning → running → auditing → succeeded | rolled_back
                                 ↘ unverified (the change stays; there was nothing to check it by)
       ↘ cancelled / failed from any live state; failed and cancelled → queued (manual retry)

A live state may also move to itself: that records a resumption after a lost worker.
Active states go back to `queued` when a transient error schedules an automatic retry.
Every change is a row in `job_transitions` with its UTC timestamp.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.orm import Session

from workers.db import JobRow, JobTransitionRow, utcnow
from workers.errors import InvalidTransitionError


class JobState(StrEnum):
    """The states of a job."""

    QUEUED = "queued"
    PLANNING = "planning"
    RUNNING = "running"
    AUDITING = "auditing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"
    UNVERIFIED = "unverified"


S = JobState
ACTIVE = frozenset({S.PLANNING, S.RUNNING, S.AUDITING})
TERMINAL = frozenset({S.SUCCEEDED, S.FAILED, S.ROLLED_BACK, S.CANCELLED, S.UNVERIFIED})
RETRYABLE = frozenset({S.FAILED, S.CANCELLED})

ALLOWED: dict[JobState, frozenset[JobState]] = {
    S.QUEUED: frozenset({S.PLANNING, S.CANCELLED, S.FAILED}),
    S.PLANNING: frozenset({S.PLANNING, S.RUNNING, S.QUEUED, S.CANCELLED, S.FAILED}),
    S.RUNNING: frozenset({S.RUNNING, S.AUDITING, S.UNVERIFIED, S.QUEUED, S.CANCELLED, S.FAILED}),
    S.AUDITING: frozenset(
        {S.AUDITING, S.SUCCEEDED, S.ROLLED_BACK, S.UNVERIFIED, S.QUEUED, S.CANCELLED, S.FAILED}
    ),
    S.SUCCEEDED: frozenset(),
    S.UNVERIFIED: frozenset(),
    S.ROLLED_BACK: frozenset(),
    S.FAILED: frozenset({S.QUEUED}),
    S.CANCELLED: frozenset({S.QUEUED}),
}


def parse_state(value: str) -> JobState:
    """Return the state called `value`, or raise `ValueError` listing the states."""
    try:
        return JobState(value)
    except ValueError:
        known = ", ".join(s.value for s in JobState)
        raise ValueError(f"unknown job state {value!r}; states: {known}") from None


def check_transition(current: str, target: str) -> None:
    """Raise `InvalidTransitionError` unless the machine allows `current` → `target`."""
    src, dst = parse_state(current), parse_state(target)
    if dst not in ALLOWED[src]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED[src])) or "nothing (final)"
        raise InvalidTransitionError(f"job cannot go from {src} to {dst}; from {src}: {allowed}")


def transition(
    session: Session, job: JobRow, target: JobState, message: str = "", worker_id: str | None = None
) -> None:
    """Move `job` to `target` in `session`, recording the timestamped transition."""
    check_transition(job.state, target)
    now = utcnow()
    session.add(
        JobTransitionRow(
            job_id=job.id,
            from_state=job.state,
            to_state=target.value,
            at=now,
            message=message[:4000],
            worker_id=worker_id,
        )
    )
    job.state = target.value
    job.updated_at = now
    if message:
        job.message = message[:4000]
    if target in TERMINAL:
        job.finished_at = now
        job.worker_id = None
        if target in (S.SUCCEEDED, S.UNVERIFIED):
            job.progress = 1.0


def record_creation(session: Session, job: JobRow) -> None:
    """Record the first transition of a new job (nothing → queued)."""
    session.add(
        JobTransitionRow(job_id=job.id, from_state=None, to_state=S.QUEUED.value, at=job.created_at)
    )
