"""Health (the process answers) and readiness (its database, broker and graph store answer)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.keys import principal_of

router = APIRouter(tags=["health"])


class HealthPublic(BaseModel):
    """The process is up."""

    status: str
    version: str


class ReadinessPublic(BaseModel):
    """Each dependency's check: 'ok' or the error it gave."""

    ready: bool
    checks: dict[str, str]


@router.get("/healthz")
def health(request: Request) -> HealthPublic:
    """Return 200 while the process serves requests."""
    return HealthPublic(status="ok", version=request.app.version)


@router.get("/readyz", response_model=ReadinessPublic, responses={503: {"model": ReadinessPublic}})
def readiness(request: Request) -> JSONResponse:
    """Return 200 when every dependency answers, else 503 naming the one that did not.

    The error's text (hosts, ports) is shown only to a caller with a valid API key.
    """
    detailed = principal_of(request) is not None
    checks: dict[str, Callable[[], object]] = request.app.state.readiness_checks
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # each check's failure is the report, not a crash
            results[name] = f"{type(exc).__name__}: {exc}"[:300] if detailed else "unavailable"
    ready = all(v == "ok" for v in results.values())
    body = ReadinessPublic(ready=ready, checks=results).model_dump()
    return JSONResponse(body, status_code=200 if ready else 503)
