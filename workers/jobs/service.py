"""Entry points of the job system for the API and the command line.

`submit_job` validates a payload, writes the job row (state `queued`, first transition) and
sends one message to the model's queue; `get_job`, `list_jobs`, `cancel_job` and
`retry_job` read and steer it. The job table is the source of truth: a message only says
"look at job X", so a lost or duplicated message never loses or repeats work.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from workers.db import (
    Database,
    JobRow,
    JobTransitionRow,
    ModelRow,
    get_database,
    record_of,
    retry_stale,
)
from workers.db import utcnow as _now
from workers.errors import (
    IdempotencyConflictError,
    InvalidInputError,
    InvalidTransitionError,
    JobNotFoundError,
    ModelNotFoundError,
    TransientJobError,
)
from workers.jobs.dispatch import check_overrides, check_requests, resolve
from workers.jobs.sayable import target_warnings
from workers.jobs.spec import JobSpec, parse_spec
from workers.jobs.states import ACTIVE, RETRYABLE, TERMINAL, JobState, record_creation, transition
from workers.jobs.withdraw import withdraw
from workers.settings import Settings, get_settings

log = logging.getLogger(__name__)
MAX_KEY = 200
MAX_LIST = 1000
INTERNAL_RESULT = frozenset({"gate_before"})  # per-probe scores kept for resumption only


@dataclass(frozen=True)
class TransitionInfo:
    """One recorded state change."""

    from_state: str | None
    to_state: str
    at: datetime
    message: str
    worker_id: str | None

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data."""
        return {
            "from": self.from_state,
            "to": self.to_state,
            "at": self.at.isoformat(),
            "message": self.message,
            "worker_id": self.worker_id,
        }


@dataclass(frozen=True)
class JobInfo:
    """The public view of a job row (and, from `get_job`, its transitions)."""

    id: str
    idempotency_key: str
    model: str
    kind: str
    method: str
    state: str
    progress: float
    message: str
    run: int
    attempts: int
    retries: int
    cancel_requested: bool
    worker_id: str | None
    base_version_id: int | None
    result_version_id: int | None
    steps_total: int
    steps_done: int
    n_requests: int
    result: dict[str, Any]
    error: str | None
    created_at: datetime
    updated_at: datetime
    enqueued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    transitions: tuple[TransitionInfo, ...] = field(default=())

    @property
    def done(self) -> bool:
        """Return whether the job reached a final state."""
        return self.state in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data (ISO timestamps)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif name == "transitions":
                value = [t.to_dict() for t in value]
            out[name] = value
        return out


def job_info(row: JobRow, transitions: list[JobTransitionRow] | None = None) -> JobInfo:
    """Return the public view of a job row."""
    return record_of(
        row,
        JobInfo,
        model=row.model_name,
        progress=float(row.progress),
        cancel_requested=bool(row.cancel_requested),
        n_requests=len(row.payload.get("requests", [])),
        result={k: v for k, v in (row.result or {}).items() if k not in INTERNAL_RESULT},
        transitions=tuple(
            TransitionInfo(t.from_state, t.to_state, t.at, t.message, t.worker_id)
            for t in transitions or []
        ),
    )


def _db(settings: Settings | None) -> Database:
    """Return the metadata database of the settings."""
    return get_database((settings or get_settings()).metadata_db_url)


def _load(session: Any, job_id: str) -> JobRow:
    """Return the job row or raise `JobNotFoundError`."""
    if not isinstance(job_id, str) or len(job_id) > 64:
        raise JobNotFoundError(f"no job with id {job_id!r}")
    row = session.get(JobRow, job_id)
    if row is None:
        raise JobNotFoundError(f"no job with id {job_id!r}")
    return row


def _send(row_id: str, model: str, settings: Settings | None) -> None:
    """Enqueue a job's message and stamp `enqueued_at`; broker errors become transient."""
    from workers.celery_app import enqueue

    try:
        enqueue(row_id, model, settings)
    except Exception as exc:  # the broker is down: the job waits, recovery re-sends it
        log.warning("could not enqueue job %s: %s", row_id, exc)
        raise TransientJobError(
            f"job {row_id} is recorded as queued but the broker refused it ({exc}); "
            "submit again with the same idempotency key, or a worker's recovery sends it"
        ) from exc

    def stamp() -> None:
        with _db(settings).session() as session:
            session.get(JobRow, row_id).enqueued_at = _now()

    retry_stale(stamp)


def check_job(spec: JobSpec | Mapping[str, Any]) -> JobSpec:
    """Return the validated spec (payload, method, hyper-parameters); raise `InvalidInputError`.

    Each request must carry what the method declares it needs (`check_requests`), and a
    configured statistics corpus must exist for a method that needs one. Callers
    that submit several jobs as one unit check them all before submitting any.
    """
    parsed = parse_spec(spec)
    method = resolve(parsed.kind, parsed.method)
    check_overrides(method, parsed.hparams)
    check_requests(method, parsed.requests, parsed.hparams)
    corpus = get_settings().stats_corpus
    if method.needs_second_moment and corpus is not None and not corpus.exists():
        raise InvalidInputError(
            f"{method.name} needs second moments and the statistics corpus KGEDIT_STATS_CORPUS "
            f"({corpus}) does not exist"
        )
    return parsed


@dataclass(frozen=True)
class Submission:
    """The job a submission names, whether this call created it, and whether it was sent.

    `sent` is False when the broker refused the message: the job is recorded as queued and a
    worker's recovery (or a resubmission with the same idempotency key) sends it later.
    """

    job: JobInfo
    created: bool
    sent: bool


def submit_job(
    spec: JobSpec | Mapping[str, Any],
    *,
    idempotency_key: str | None = None,
    settings: Settings | None = None,
    enqueue: bool = True,
) -> JobInfo:
    """Validate and record a job, then queue it; a known key with the same payload returns it.

    Raises `InvalidInputError` for a malformed payload, `ModelNotFoundError` for an
    unregistered model, `IdempotencyConflictError` when the key was used for another
    payload, and `TransientJobError` when the broker refused the message (the job is kept).
    """
    result = submit(spec, idempotency_key=idempotency_key, settings=settings, enqueue=enqueue)
    if enqueue and not result.sent:
        raise TransientJobError(
            f"job {result.job.id} is recorded as queued but the broker refused it; "
            "submit again with the same idempotency key, or a worker's recovery sends it"
        )
    return result.job


def submit(
    spec: JobSpec | Mapping[str, Any],
    *,
    idempotency_key: str | None = None,
    settings: Settings | None = None,
    enqueue: bool = True,
) -> Submission:
    """Like `submit_job`, but a broker outage is reported in the result instead of raised."""
    parsed = check_job(spec)
    key = idempotency_key if idempotency_key is not None else f"auto:{uuid.uuid4()}"
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY or not key.isprintable():
        raise InvalidInputError(f"idempotency key must be 1-{MAX_KEY} printable characters")
    payload, digest = parsed.to_payload(), parsed.payload_sha256()
    existing = _by_key(key, _db(settings))
    warnings = [] if existing is not None else target_warnings(parsed, settings or get_settings())
    try:
        row, existing = _insert(parsed, key, payload, digest, _db(settings), warnings)
    except IntegrityError:  # a concurrent submit with the same key won the race
        row, existing = None, _by_key(key, _db(settings))
        if existing is None:
            raise
    if existing is not None:
        sent = _existing(existing, digest, settings, enqueue)
        return Submission(get_job(existing.id, settings=settings), created=False, sent=sent)
    assert row is not None
    sent = _try_send(row.id, row.model_name, settings) if enqueue else True
    return Submission(get_job(row.id, settings=settings), created=True, sent=sent)


def _try_send(row_id: str, model: str, settings: Settings | None) -> bool:
    """Send a job's message; return False (the job stays queued, unsent) if the broker is down."""
    try:
        _send(row_id, model, settings)
    except TransientJobError:
        return False
    return True


def _by_key(key: str, db: Database) -> JobRow | None:
    """Return the job holding an idempotency key, if any."""
    with db.session() as session:
        return session.scalars(select(JobRow).where(JobRow.idempotency_key == key)).first()


def _insert(
    spec: JobSpec, key: str, payload: dict, digest: str, db: Database, warnings: list | None = None
) -> tuple[JobRow | None, JobRow | None]:
    """Insert a new queued job (with its submission warnings in `result["warnings"]`), or
    return (None, existing job) when the key is taken."""
    with db.session() as session:
        existing = session.scalars(select(JobRow).where(JobRow.idempotency_key == key)).first()
        if existing is not None:
            return None, existing
        if session.get(ModelRow, spec.model) is None:
            raise ModelNotFoundError(f"model {spec.model!r} is not registered; register it first")
        row = add_queued_job(session, spec, key, payload, digest)
        if warnings:
            row.result = {"warnings": list(warnings)}
        return row, None


def add_queued_job(session: Any, spec: JobSpec, key: str, payload: dict, digest: str) -> JobRow:
    """Insert a queued job row for `spec` (no checks) and its creation transition."""
    now = _now()
    row = JobRow(
        id=str(uuid.uuid4()),
        idempotency_key=key,
        payload_sha256=digest,
        model_name=spec.model,
        kind=spec.kind,
        method=spec.method,
        payload=payload,
        state=JobState.QUEUED.value,
        progress=0.0,
        message="queued",
        steps_total=spec.steps,
        result={},
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    record_creation(session, row)
    return row


def _existing(row: JobRow, digest: str, settings: Settings | None, enqueue: bool) -> bool:
    """Check a job submitted before with the same key, re-sending it if it never left; return
    whether its message is (now) with the broker."""
    if row.payload_sha256 != digest:
        raise IdempotencyConflictError(
            f"idempotency key {row.idempotency_key!r} belongs to job {row.id} "
            "with a different payload"
        )
    if enqueue and row.state == JobState.QUEUED and row.enqueued_at is None:
        return _try_send(row.id, row.model_name, settings)
    return True


def get_job(job_id: str, *, settings: Settings | None = None) -> JobInfo:
    """Return a job with its transitions, or raise `JobNotFoundError`."""
    with _db(settings).session() as session:
        row = _load(session, job_id)
        transitions = session.scalars(
            select(JobTransitionRow)
            .where(JobTransitionRow.job_id == job_id)
            .order_by(JobTransitionRow.id)
        ).all()
        return job_info(row, list(transitions))


def list_jobs(
    *,
    model: str | None = None,
    state: str | None = None,
    limit: int = 100,
    offset: int = 0,
    settings: Settings | None = None,
) -> list[JobInfo]:
    """Return jobs, newest first, optionally of one model and one state."""
    from workers.jobs.states import parse_state

    if not 1 <= limit <= MAX_LIST or offset < 0:
        raise InvalidInputError(f"limit must be 1..{MAX_LIST} and offset ≥ 0")
    query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id)
    if model is not None:
        query = query.where(JobRow.model_name == model)
    if state is not None:
        try:
            query = query.where(JobRow.state == parse_state(state).value)
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from None
    with _db(settings).session() as session:
        rows = session.scalars(query.limit(limit).offset(offset)).all()
        return [job_info(r) for r in rows]


def cancel_job(job_id: str, *, settings: Settings | None = None) -> JobInfo:
    """Cancel a job: a queued one at once; a running one at its next checkpoint.

    The worker then rolls back the deltas the job applied and marks it `cancelled`. A queued
    job's message is taken off the queue where the broker allows it (`withdraw`).
    Raises `InvalidTransitionError` for a job that already finished.
    """

    def mark() -> str | None:
        with _db(settings).session() as session:
            row = _load(session, job_id)
            if row.state in TERMINAL:
                raise InvalidTransitionError(f"job {job_id} already finished ({row.state})")
            row.cancel_requested = True
            if row.state == JobState.QUEUED:
                transition(session, row, JobState.CANCELLED, "cancelled while queued")
                return row.model_name
            row.message = "cancellation requested"
            row.updated_at = _now()
            return None

    model = retry_stale(mark)
    if model is not None:  # its message need not wait in the queue for a worker to skip it
        withdraw(job_id, model, settings or get_settings())
    return get_job(job_id, settings=settings)


def retry_job(job_id: str, *, settings: Settings | None = None) -> JobInfo:
    """Queue a failed or cancelled job again as a new run from the model's current head."""

    def requeue() -> str:
        with _db(settings).session() as session:
            row = _load(session, job_id)
            if row.state not in RETRYABLE:
                raise InvalidTransitionError(
                    f"job {job_id} is {row.state}; only failed or cancelled jobs are retried"
                )
            row.run += 1
            row.cancel_requested = False
            row.progress, row.steps_done, row.retries = 0.0, 0, 0
            row.base_version_id = row.result_version_id = None
            row.result = {k: v for k, v in (row.result or {}).items() if k == "warnings"}
            row.error = None
            row.started_at = row.finished_at = row.next_attempt_at = row.enqueued_at = None
            transition(session, row, JobState.QUEUED, f"retry requested (run {row.run})")
            return row.model_name

    model = retry_stale(requeue)
    _send(job_id, model, settings)
    return get_job(job_id, settings=settings)


def is_active(state: str) -> bool:
    """Return whether a state is one a worker is working in."""
    return state in ACTIVE
