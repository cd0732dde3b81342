"""Audit routes: run an audit of a model version, list audits, fetch a report (JSON or HTML)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse
from pydantic import Field

from api.deps import CallerDep, roles
from api.keys import Role
from api.schemas.common import DbId, Strict, derive_public
from workers.audit import requested
from workers.audit.html import render_html

router = APIRouter(prefix="/v1/audits", tags=["audits"])
RUNNERS = (Role.OPERATOR, Role.AUDITOR)
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


class AuditCreate(Strict):
    """Audit one version of a registered model (default: its head)."""

    model: str = Field(..., min_length=1, max_length=64)
    version_id: DbId | None = None
    sample_size: int = Field(1000, ge=1, le=requested.MAX_SAMPLE)


AuditPublic = derive_public("AuditPublic", requested.AuditInfo)
"""A requested audit: its state and, once done, the report's headline (`AuditInfo`)."""


@router.post("", status_code=status.HTTP_202_ACCEPTED, **roles(*RUNNERS))
def run_audit(body: AuditCreate, request: Request, caller: CallerDep) -> AuditPublic:
    """Queue an audit of a version on the model's worker (poll it, then fetch the report)."""
    info = requested.request_audit(
        body.model,
        body.version_id,
        sample_size=body.sample_size,
        requested_by=caller.actor,
        settings=request.app.state.settings,
    )
    return AuditPublic.of(info)


@router.get("", **roles(*RUNNERS))
def list_audits(
    request: Request,
    model: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[AuditPublic]:
    """List audits, newest first."""
    infos = requested.list_audits(
        model=model, limit=limit, offset=offset, settings=request.app.state.settings
    )
    return [AuditPublic.of(i) for i in infos]


@router.get("/{audit_id}", **roles(*RUNNERS))
def get_audit(audit_id: str, request: Request) -> AuditPublic:
    """Return one audit's state and headline."""
    return AuditPublic.of(requested.get_audit(audit_id, settings=request.app.state.settings))


@router.get("/{audit_id}/report", **roles(*RUNNERS))
def report_json(audit_id: str, request: Request) -> dict[str, Any]:
    """Return the full report JSON (schema: docs/audit-report.md); 409 until it is done."""
    return requested.load_report(audit_id, settings=request.app.state.settings)


@router.get("/{audit_id}/report.html", response_class=HTMLResponse, **roles(*RUNNERS))
def report_html(audit_id: str, request: Request) -> HTMLResponse:
    """Return the report as one self-contained HTML page (no external assets)."""
    report = requested.load_report(audit_id, settings=request.app.state.settings)
    return HTMLResponse(render_html(report), headers={"Content-Security-Policy": REPORT_CSP})
