"""Calibration of a registered model, requested like an audit and stored in its record.

`request_calibration` records a calibration of the model's head version and sends the
`kgedit.run_calibration` task to the model's queue (or the command line runs it in place).
`execute_calibration` loads that version from the ledger, reads the model's graph, runs
`editor.calibrate.calibrate` with progress and cancellation, and stores the result in the
request row and in `models.calibration`, where `editor.prepare` reads it for every job
(docs/calibration.md). A failed calibration leaves the model's previous one in place.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from workers.db import CalibrationRow, ModelRow, record_of, update_row, utcnow
from workers.errors import InvalidInputError, JobCancelledError, NotFoundError
from workers.ledger.registry import db_of, model_row
from workers.settings import Settings, get_settings

TASK_RUN_CALIBRATION = "kgedit.run_calibration"
ACTIVE = ("queued", "running")
OPTIONS = {"n_trace": (2, 200), "n_dev": (2, 100), "samples": (1, 50)}  # name -> (min, max)
PROGRESS_EVERY = 1.0  # seconds between progress writes


class CalibrationNotFoundError(NotFoundError):
    """No calibration request has this id, or the model has no calibration."""


@dataclass(frozen=True)
class CalibrationInfo:
    """The public record of a calibration request."""

    id: str
    model: str
    version_id: int
    state: str
    progress: float
    message: str
    cancel_requested: bool
    requested_by: str
    options: dict[str, Any]
    result: dict[str, Any]
    error: str | None
    created_at: datetime
    finished_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data (ISO timestamps)."""
        items = self.__dict__.items()
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in items}


def _info(row: CalibrationRow) -> CalibrationInfo:
    """Return the public record of a row."""
    return record_of(
        row, CalibrationInfo, model=row.model_name, progress=float(row.progress),
        cancel_requested=bool(row.cancel_requested), options=dict(row.options or {}),
        result=dict(row.result or {}),
    )  # fmt: skip


def check_options(options: Mapping[str, Any] | None) -> dict[str, int]:
    """Return the validated calibration options; InvalidInputError names a bad one."""
    out = {}
    for name, value in (options or {}).items():
        if name not in OPTIONS:
            raise InvalidInputError(
                f"unknown calibration option {name!r}; known: {sorted(OPTIONS)}"
            )
        low, high = OPTIONS[name]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise InvalidInputError(f"{name} must be an integer in {low}..{high}, not {value!r}")
        out[name] = value
    return out


def request_calibration(
    model: str,
    *,
    options: Mapping[str, Any] | None = None,
    requested_by: str = "system",
    settings: Settings | None = None,
    enqueue: bool = True,
) -> CalibrationInfo:
    """Record a calibration of the model's head version and queue it on the model's worker."""
    checked = check_options(options)
    with db_of(settings).session() as session:
        row = model_row(session, model)
        if row.head_version_id is None:
            raise InvalidInputError(f"model {model!r} has no version to calibrate")
        head = row.head_version_id
    request = CalibrationRow(
        id=str(uuid.uuid4()), model_name=model, version_id=head, state="queued", progress=0.0,
        message="queued", cancel_requested=False, requested_by=requested_by, options=checked,
        result={}, created_at=utcnow(),
    )  # fmt: skip
    from workers.celery_app import record_and_send

    return record_and_send(settings, request, _info, TASK_RUN_CALIBRATION, enqueue)


def _update(calibration_id: str, settings: Settings | None, **values: Any) -> CalibrationInfo:
    """Update a request row and return its record."""
    missing = CalibrationNotFoundError(f"no calibration has id {calibration_id!r}")
    return update_row(db_of(settings), CalibrationRow, calibration_id, missing, _info, **values)


def get_calibration_request(
    calibration_id: str, *, settings: Settings | None = None
) -> CalibrationInfo:
    """Return one calibration request; CalibrationNotFoundError if the id is unknown."""
    with db_of(settings).session() as session:
        row = session.get(CalibrationRow, calibration_id)
        if row is None:
            raise CalibrationNotFoundError(f"no calibration has id {calibration_id!r}")
        return _info(row)


def list_calibrations(model: str, *, settings: Settings | None = None) -> list[CalibrationInfo]:
    """Return a model's calibration requests, newest first."""
    with db_of(settings).session() as session:
        model_row(session, model)
        query = select(CalibrationRow).where(CalibrationRow.model_name == model)
        rows = session.scalars(query.order_by(CalibrationRow.created_at.desc())).all()
        return [_info(r) for r in rows]


def cancel_calibration(calibration_id: str, *, settings: Settings | None = None) -> CalibrationInfo:
    """Ask a queued or running calibration to stop (a finished one is returned unchanged)."""
    info = get_calibration_request(calibration_id, settings=settings)
    if info.state not in ACTIVE:
        return info
    if info.state == "queued":
        return _update(calibration_id, settings, state="cancelled", cancel_requested=True,
                       message="cancelled before it ran", finished_at=utcnow())  # fmt: skip
    return _update(calibration_id, settings, cancel_requested=True)


def model_calibration(model: str, *, settings: Settings | None = None) -> dict[str, Any] | None:
    """Return the model's stored calibration (None: it has none; the presets apply)."""
    with db_of(settings).session() as session:
        return model_row(session, model).calibration


def _reporter(
    calibration_id: str, settings: Settings | None
) -> tuple[Callable[[float, str], None], Callable[[], None]]:
    """Return (progress, cancel check) callbacks that write and read the request row."""
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY or fraction >= 1.0:
            last[0] = now
            _update(calibration_id, settings, progress=round(fraction, 4), message=message)

    def check() -> None:
        if get_calibration_request(calibration_id, settings=settings).cancel_requested:
            raise JobCancelledError(f"calibration {calibration_id} was cancelled")

    return progress, check


def execute_calibration(
    calibration_id: str,
    settings: Settings | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> CalibrationInfo:
    """Run one requested calibration here and store its result (a finished one is kept)."""
    from editor.calibrate import calibrate
    from editor.cancel import cancellable
    from editor.errors import EditorError
    from editor.knowledge.presets import get_preset
    from editor.prepare import prepare
    from workers.jobs.resources import graph_corpus
    from workers.ledger.store import load_version

    settings = settings or get_settings()
    info = get_calibration_request(calibration_id, settings=settings)
    if info.state not in ACTIVE:
        return info
    _update(calibration_id, settings, state="running", message="loading the model")
    write, check = _reporter(calibration_id, settings)

    def report(fraction: float, message: str) -> None:
        write(fraction, message)
        if progress is not None:
            progress(fraction, message)

    try:
        with db_of(settings).session() as session:
            row = model_row(session, info.model)
            graph_url, meta, key = row.graph_url, dict(row.meta or {}), row.weights_sha256
        model, tok, _ = load_version(info.model, info.version_id, settings=settings)
        facts, corpus = graph_corpus(graph_url, settings)
        preset = meta.get("knowledge_preset")
        trace_layer = get_preset(preset).edit_layer if preset else None

        def prepared(method: str, point: Mapping[str, Any], fields: Mapping[str, Any]) -> Any:
            return prepare(
                method, model, tok, corpus, model_key=key, cache_dir=settings.cache_dir,
                overrides=dict(fields), trace_layer=trace_layer, calibration=dict(point),
                facts=facts,
            )  # fmt: skip

        with cancellable(check):
            result = calibrate(model, tok, facts, prepared, progress=report, **info.options)
    except JobCancelledError:
        return _update(calibration_id, settings, state="cancelled", message="cancelled",
                       finished_at=utcnow())  # fmt: skip
    except (EditorError, InvalidInputError) as exc:
        return _update(calibration_id, settings, state="failed", error=str(exc),
                       message="failed", finished_at=utcnow())  # fmt: skip
    stored = {**result.to_dict(), "version_id": info.version_id, "at": utcnow().isoformat()}
    with db_of(settings).session() as session:
        row = session.get(ModelRow, info.model)
        if row is not None:
            row.calibration = stored
    return _update(calibration_id, settings, state="succeeded", progress=1.0,
                   message="calibrated", result=stored, finished_at=utcnow())  # fmt: skip
