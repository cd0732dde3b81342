"""The metadata database: engine and sessions, the declarative base and every metadata table.

Tables: `models` (registered base models), `model_versions` (the ledger: one row per version,
each version its parent plus one delta), `jobs` (the source of truth of the job system),
`job_transitions` (every state change, timestamped), `api_keys` (hashed API keys),
`audit_reports` (requested audits of model versions), `agreement_snapshots` (what a model
version answers for the graph's facts) and `sync_attempts` (the jobs of the sync loop).
SQLite (WAL) by default, PostgreSQL in production; the schema is created and upgraded by
the Alembic migrations under `migrations/`.

Rows of `jobs` carry a version counter (SQLAlchemy `version_id_col`): an update made from a
stale read raises `StaleDataError`, so concurrent writers (a worker's progress, an operator's
cancel) never overwrite each other silently; `retry_stale` re-runs such an operation.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

REPO_ROOT = Path(__file__).resolve().parents[1]
ALEMBIC_INI = REPO_ROOT / "alembic.ini"
MIGRATIONS = REPO_ROOT / "migrations"

NAME_LEN = 64
KEY_LEN = 200
SHA_LEN = 64
_JSON = JSON().with_variant(JSONB(), "postgresql")

T = TypeVar("T")
R = TypeVar("R")


def record_of(row: Any, record: Callable[..., T], **computed: Any) -> T:
    """Return the service record (a dataclass) of a metadata row: each field not given in
    `computed` is the row's column of the same name."""
    fields = dataclasses.fields(record)  # type: ignore[arg-type]
    read = {f.name: getattr(row, f.name) for f in fields if f.name not in computed}
    return record(**read, **computed)


def utcnow() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Normalise to UTC before storing."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use workers.db.utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Attach UTC to what SQLite returns naive."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every metadata table."""


class ModelRow(Base):
    """Table `models`: a registered base model directory and the head of its version chain."""

    __tablename__ = "models"

    name: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    weights_sha256: Mapped[str] = mapped_column(String(SHA_LEN))
    param_hashes: Mapped[dict[str, str]] = mapped_column(_JSON)
    head_version_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    graph_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column(_JSON, default=dict)
    follows_graph: Mapped[bool] = mapped_column(Boolean, default=False)
    # the model's calibration (editor.calibrate.Calibration as a dict, with the version it
    # was measured on); None: the per-family presets apply
    calibration: Mapped[dict[str, Any] | None] = mapped_column(_JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class VersionRow(Base):
    """Table `model_versions`: a version is its parent plus one delta (the root has none).

    `checksum` is the ledger checksum of the weights (sha256 over every parameter's own
    sha256, `workers.ledger.checksums`). A version made by a job carries the job, its run,
    step and position in the step; that triple is unique, so no delta enters twice.
    """

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("job_id", "job_run", "step", "step_index", name="uq_versions_job_step"),
        Index("ix_versions_model", "model_name", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("models.name", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id"), nullable=True, index=True
    )
    depth: Mapped[int] = mapped_column(Integer, default=0)
    checksum: Mapped[str] = mapped_column(String(SHA_LEN))
    status: Mapped[str] = mapped_column(String(16), default="active")
    delta_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    delta_sha256: Mapped[str | None] = mapped_column(String(SHA_LEN), nullable=True)
    method: Mapped[str | None] = mapped_column(String(NAME_LEN), nullable=True)
    request_ids: Mapped[list[str]] = mapped_column(_JSON, default=list)
    norm: Mapped[float | None] = mapped_column(Float, nullable=True)
    params: Mapped[dict[str, str]] = mapped_column(_JSON, default=dict)  # param -> sha after
    job_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True, index=True
    )
    job_run: Mapped[int | None] = mapped_column(Integer, nullable=True)
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    step_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobRow(Base):
    """Table `jobs`: one batch of edit or unlearning requests on one model."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_model_state", "model_name", "state"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(KEY_LEN), unique=True)
    payload_sha256: Mapped[str] = mapped_column(String(SHA_LEN))
    model_name: Mapped[str] = mapped_column(ForeignKey("models.name"))
    kind: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(NAME_LEN))
    payload: Mapped[dict[str, Any]] = mapped_column(_JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    run: Mapped[int] = mapped_column(Integer, default=1)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker_id: Mapped[str | None] = mapped_column(String(KEY_LEN), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    base_version_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    result_version_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    steps_total: Mapped[int] = mapped_column(Integer, default=0)
    steps_done: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any]] = mapped_column(_JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    row_version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": row_version}  # noqa: RUF012


class JobTransitionRow(Base):
    """Table `job_transitions`: every state change of a job, in order, with its time."""

    __tablename__ = "job_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    message: Mapped[str] = mapped_column(Text, default="")
    worker_id: Mapped[str | None] = mapped_column(String(KEY_LEN), nullable=True)


class ApiKeyRow(Base):
    """Table `api_keys`: an API key's role and the SHA-256 of its secret (never the secret)."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(KEY_LEN))
    role: Mapped[str] = mapped_column(String(20))
    secret_sha256: Mapped[str] = mapped_column(String(SHA_LEN))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(KEY_LEN))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RequestedWork:
    """Columns of work a user requested on one model version: who, when, its state, its error."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("models.name", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    requested_by: Mapped[str] = mapped_column(String(KEY_LEN))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditReportRow(RequestedWork, Base):
    """Table `audit_reports`: a requested audit of a model version, its state and its report."""

    __tablename__ = "audit_reports"
    __table_args__ = (Index("ix_audit_reports_model", "model_name", "created_at"),)

    sample_size: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict[str, Any]] = mapped_column(_JSON, default=dict)
    path: Mapped[str | None] = mapped_column(Text, nullable=True)


class CalibrationRow(RequestedWork, Base):
    """Table `calibrations`: a requested calibration of a model, its state and its result."""

    __tablename__ = "calibrations"
    __table_args__ = (Index("ix_calibrations_model", "model_name", "created_at"),)

    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    options: Mapped[dict[str, Any]] = mapped_column(_JSON, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(_JSON, default=dict)


class AgreementSnapshotRow(Base):
    """Table `agreement_snapshots`: what one model version answers for a graph's facts.

    `observations` maps a fact id to `[subject, relation, object, exact, answer, answer id,
    probability]` as scored at `graph_version`; classification happens when it is read.
    """

    __tablename__ = "agreement_snapshots"
    __table_args__ = (Index("ix_agreement_model_version", "model_name", "version_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("models.name", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(Integer)
    graph_url: Mapped[str] = mapped_column(Text)
    graph_version: Mapped[int] = mapped_column(Integer)
    observations: Mapped[dict[str, Any]] = mapped_column(_JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SyncAttemptRow(Base):
    """Table `sync_attempts`: one job that tries to bring one batch of a plan into a model.

    A plan (`plan_key`: a change set's approval on one model, a re-plan, or a `sync apply`)
    has batches; each batch has attempts 0, 1, … along the model's method chain.
    """

    __tablename__ = "sync_attempts"
    __table_args__ = (
        UniqueConstraint("plan_key", "batch_index", "attempt", name="uq_sync_attempt"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    change_set_id: Mapped[str] = mapped_column(String(NAME_LEN), index=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("models.name", ondelete="CASCADE"))
    plan_key: Mapped[str] = mapped_column(String(KEY_LEN))
    batch_index: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(NAME_LEN))
    chain: Mapped[list[str]] = mapped_column(_JSON, default=list)  # the steps, as labels
    # the planner's capacity-aware choice for the batch: {role, method, reason}
    choice: Mapped[dict[str, Any] | None] = mapped_column(_JSON, nullable=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL journal, foreign keys and a busy timeout on every SQLite connection."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine: SQLite files get WAL and a parent directory, servers a pre-ping."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if not database or database == ":memory:":
            raise ValueError("the metadata database must be a file or a server, not in memory")
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def update_row(
    db: Database,
    cls: type[T],
    row_id: str,
    missing: Exception,
    view: Callable[[T], R],
    **values: Any,
) -> R:
    """Set `values` on the row of `cls` with this id and return `view(row)`; raise `missing`
    when there is no such row."""
    with db.session() as session:
        row = session.get(cls, row_id)
        if row is None:
            raise missing
        for key, value in values.items():
            setattr(row, key, value)
        return view(row)


class Database:
    """An engine plus a session factory for one metadata database URL."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.pid = os.getpid()
        if migrate:
            self.upgrade()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Yield a session in one transaction: committed on success, rolled back on error."""
        with self.sessions() as session, session.begin():
            yield session

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema up to `revision` with the Alembic migrations (idempotent)."""
        self._migrate("upgrade", revision)

    def downgrade(self, revision: str) -> None:
        """Take the schema down to `revision` ("base": no tables)."""
        self._migrate("downgrade", revision)

    def _migrate(self, direction: str, revision: str) -> None:
        """Run an Alembic upgrade or downgrade over this engine."""
        from workers.settings import get_settings

        # alembic.ini is not read when a connection is passed (and alembic logs its plugins
        # as it is imported), so the level is set first, from the settings
        logging.getLogger("alembic").setLevel(get_settings().log_level.upper())
        from alembic import command
        from alembic.config import Config

        config = Config(str(ALEMBIC_INI))
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        for attempt in range(5):
            try:
                with self.engine.begin() as connection:
                    config.attributes["connection"] = connection
                    getattr(command, direction)(config, revision)
                return
            except OperationalError:  # another process is migrating the same SQLite file
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


_DATABASES: dict[str, Database] = {}
_LOCK = threading.Lock()


def get_database(url: str | None = None, *, migrate: bool | None = None) -> Database:
    """Return the process-wide `Database` of `url` (default: the settings' metadata URL)."""
    from workers.settings import get_settings

    settings = get_settings()
    url = url or settings.metadata_db_url
    with _LOCK:
        db = _DATABASES.get(url)
        if db is not None and db.pid != os.getpid():  # inherited over fork: reconnect
            db.engine.dispose(close=False)
            db = None
        if db is None:
            db = Database(url, migrate=settings.auto_migrate if migrate is None else migrate)
            _DATABASES[url] = db
        return db


def reset_databases() -> None:
    """Forget every cached engine (after a fork, or between tests)."""
    with _LOCK:
        for db in _DATABASES.values():
            db.engine.dispose(close=db.pid == os.getpid())
        _DATABASES.clear()


def retry_stale(operation: Callable[[], T], attempts: int = 20) -> T:
    """Run `operation`, re-running it when a concurrent writer made its read stale."""
    for attempt in range(attempts):
        try:
            return operation()
        except StaleDataError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")
