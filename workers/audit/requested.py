"""Audits of ledger versions on request: queued, run on the model's worker, stored, served.

`request_audit` records an audit of one version (default: the head) and sends the
`kgedit.run_audit` task to the model's queue, so the audit runs on the worker that holds
the model, one job at a time. `execute_audit` loads the version from the ledger (weights
verified), recovers the requests of every delta between the model's root version and it
from the deltas' jobs (`workers.audit.chain`), derives their probes from the model's graph,
audits base vs version (per-change groups, subgraphs, and the whole-graph sample of the
facts no change touches), and writes the report JSON under `var/reports/` (written to a
temporary name, then renamed).
The API serves it as JSON or as the self-contained HTML page.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from workers.db import AuditReportRow, update_row, utcnow
from workers.errors import ConflictError, InvalidInputError, NotFoundError
from workers.ledger.registry import db_of, model_row
from workers.ledger.versions import version_row
from workers.settings import Settings, get_settings

TASK_RUN_AUDIT = "kgedit.run_audit"
MAX_SAMPLE = 20_000
STATES = ("queued", "running", "succeeded", "failed")


class ReportNotFoundError(NotFoundError):
    """No audit has this id."""


class ReportNotReadyError(ConflictError):
    """The audit has not produced its report (yet)."""


@dataclass(frozen=True)
class AuditInfo:
    """The public record of a requested audit."""

    id: str
    model: str
    version_id: int
    state: str
    sample_size: int
    requested_by: str
    summary: dict[str, Any]
    error: str | None
    created_at: datetime
    finished_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data."""
        out = dict(self.__dict__)
        out["created_at"] = self.created_at.isoformat()
        out["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        return out


def _info(row: AuditReportRow) -> AuditInfo:
    """Return the public record of a row."""
    return AuditInfo(
        row.id,
        row.model_name,
        row.version_id,
        row.state,
        row.sample_size,
        row.requested_by,
        dict(row.summary or {}),
        row.error,
        row.created_at,
        row.finished_at,
    )


def reports_dir(settings: Settings | None = None) -> Path:
    """Return the directory of report files."""
    return (settings or get_settings()).var_dir.resolve() / "reports"


def request_audit(
    model: str,
    version_id: int | None = None,
    *,
    sample_size: int = 1000,
    requested_by: str = "system",
    settings: Settings | None = None,
    enqueue: bool = True,
) -> AuditInfo:
    """Record an audit of a version (default: the head) and queue it on the model's worker."""
    if not 1 <= sample_size <= MAX_SAMPLE:
        raise InvalidInputError(f"sample_size must be 1..{MAX_SAMPLE}, not {sample_size}")
    with db_of(settings).session() as session:
        row = model_row(session, model)
        version_id = row.head_version_id if version_id is None else version_id
        if version_id is None:
            raise InvalidInputError(f"model {model!r} has no version to audit")
        version_row(session, model, version_id)
    audit = AuditReportRow(
        id=str(uuid.uuid4()),
        model_name=model,
        version_id=version_id,
        state="queued",
        sample_size=sample_size,
        requested_by=requested_by,
        summary={},
        created_at=utcnow(),
    )
    from workers.celery_app import record_and_send

    return record_and_send(settings, audit, _info, TASK_RUN_AUDIT, enqueue)


def _set(report_id: str, settings: Settings | None, **values: Any) -> AuditInfo:
    """Update an audit row and return its record."""
    missing = ReportNotFoundError(f"no audit has id {report_id!r}")
    return update_row(db_of(settings), AuditReportRow, report_id, missing, _info, **values)


def summary_of(report: dict) -> dict[str, Any]:
    """Return the headline of a report: passed, failures, probe counts, per-group figures."""
    groups = []
    for g in report.get("groups", []):
        metric = g.get("success") or g.get("entropy") or {}
        groups.append(
            {
                "group": g.get("group"),
                "n": g.get("n"),
                "before": (metric.get("before") or {}).get("value"),
                "after": (metric.get("after") or {}).get("value"),
                "status": g.get("status"),
            }
        )
    return {
        "passed": report.get("passed"),
        "failures": report.get("failures", []),
        "n_probes": report.get("n_probes"),
        "groups": groups,
    }


def execute_audit(report_id: str, settings: Settings | None = None) -> AuditInfo:
    """Run a queued audit to completion (idempotent: a finished audit is returned as is)."""
    from kg.store import open_store
    from kg.view import GraphView
    from workers.audit.chain import chain_requests, derive_changes, relabel_deltas
    from workers.audit.run import AuditConfig, run_audit
    from workers.ledger.store import load_version
    from workers.ledger.versions import chain

    settings = settings or get_settings()
    info = get_audit(report_id, settings=settings)
    if info.state in ("succeeded", "failed"):
        return info
    _set(report_id, settings, state="running")
    try:
        with db_of(settings).session() as session:
            row = model_row(session, info.model)
            graph_url, path = row.graph_url or settings.graph_store_url, row.path
            found = chain_requests(session, chain(session, info.model, info.version_id))
        lm, tok, loaded = load_version(info.model, info.version_id, settings=settings)
        deltas = relabel_deltas(loaded, found.ids)
        config = AuditConfig(sample_size=info.sample_size)
        store = open_store(graph_url)
        try:
            view = GraphView(store)
            t0 = time.perf_counter()
            changes = derive_changes(view, found.requests, config.probes)
            report = run_audit(
                lm,
                tok,
                view,
                changes,
                deltas,
                applied=True,
                config=config,
                model_info={
                    "name": info.model,
                    "path": path,
                    "version_id": info.version_id,
                    "base_version_id": found.base_version_id,
                    "version_ids": [found.base_version_id, *(vid for vid, _ in loaded)],
                },
                derive_seconds=time.perf_counter() - t0,
            )
        finally:
            store.close()
        notes = found.notes + [f"change {c.change_id}: {c.note}" for c in changes if c.note]
        if notes:
            report["notes"] = notes
    except Exception as exc:
        return _set(
            report_id, settings, state="failed", error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=utcnow(),
        )  # fmt: skip
    directory = reports_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{report_id}.json"
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(report))
    os.replace(tmp, path)
    return _set(
        report_id, settings, state="succeeded", path=str(path), summary=summary_of(report),
        finished_at=utcnow(),
    )  # fmt: skip


def get_audit(report_id: str, *, settings: Settings | None = None) -> AuditInfo:
    """Return one audit's record."""
    with db_of(settings).session() as session:
        row = session.get(AuditReportRow, report_id)
        if row is None:
            raise ReportNotFoundError(f"no audit has id {report_id!r}")
        return _info(row)


def list_audits(
    *, model: str | None = None, limit: int = 50, offset: int = 0, settings: Settings | None = None
) -> list[AuditInfo]:
    """Return audits, newest first, optionally of one model."""
    query = select(AuditReportRow).order_by(AuditReportRow.created_at.desc(), AuditReportRow.id)
    if model is not None:
        query = query.where(AuditReportRow.model_name == model)
    with db_of(settings).session() as session:
        return [_info(r) for r in session.scalars(query.limit(limit).offset(offset))]


def load_report(report_id: str, *, settings: Settings | None = None) -> dict:
    """Return a finished audit's report; ReportNotReadyError while it is queued or running."""
    with db_of(settings).session() as session:
        row = session.get(AuditReportRow, report_id)
        if row is None:
            raise ReportNotFoundError(f"no audit has id {report_id!r}")
        state, path, error = row.state, row.path, row.error
    if state != "succeeded" or path is None:
        detail = f": {error}" if error else ""
        raise ReportNotReadyError(f"audit {report_id} is {state}{detail}")
    return json.loads(Path(path).read_text())
