"""The FastAPI application: routers under /v1, one error shape, body limits, API-key auth.

`create_app()` builds the app from the one settings object; tests pass their own stores.
Serve it with `kgedit serve` (loopback by default).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from sqlalchemy import text
from starlette.routing import Match

from api.console import install_console
from api.docs_pages import install_docs
from api.errors import ApiError, install_error_handlers
from api.keys import KeyStore
from api.limits import BodyLimitMiddleware
from api.routes import audits, changesets, graph, health, jobs, keys, models
from api.schemas.common import ERROR_RESPONSES
from api.url_guard import UrlGuardMiddleware
from workers.settings import Settings, get_settings
from workers.sync.agreement import AgreementChecker

API_VERSION = "0.1.0"
UPLOAD_PATHS = ("/v1/jobs/upload",)
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _open_graph_store(settings: Settings) -> Any:
    """Open the graph store the settings name."""
    from kg.store import open_store

    return open_store(settings.graph_store_url)


def _graph_check(store: Any) -> Callable[[], object]:
    """Return a readiness check that the graph store answers a query."""
    return lambda: store.count_relations()


def _db_check(keys_store: KeyStore) -> Callable[[], object]:
    """Return a readiness check that the metadata database answers."""

    def check() -> None:
        with keys_store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    return check


def _broker_check(settings: Settings) -> Callable[[], object]:
    """Return a readiness check that the Celery broker accepts a connection."""

    def check() -> None:
        from workers.celery_app import get_app

        with get_app(settings).connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)

    return check


def _options(app: FastAPI) -> Callable[[Request], Response]:
    """Return the OPTIONS handler: 204 with every method any route of the path allows."""

    def options(request: Request) -> Response:
        allowed = {"OPTIONS"}
        for method in METHODS:
            scope = {**request.scope, "method": method}
            if any(route.matches(scope)[0] == Match.FULL for route in app.routes):
                allowed.add(method)
        if allowed == {"OPTIONS"}:
            raise ApiError(404, f"no route {request.url.path}")
        return Response(status_code=204, headers={"Allow": ", ".join(sorted(allowed))})

    return options


def create_app(
    settings: Settings | None = None, *, store: Any = None, key_store: KeyStore | None = None
) -> FastAPI:
    """Return the API app wired to the given (or configured) stores."""
    settings = settings or get_settings()
    app = FastAPI(
        title="kgedit",
        version=API_VERSION,
        description="Keep a language model's knowledge in line with a curated knowledge graph.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store if store is not None else _open_graph_store(settings)
    app.state.keys = key_store or KeyStore(settings.metadata_db_url)
    app.state.agreement = AgreementChecker(settings)
    app.state.readiness_checks = {
        "database": _db_check(app.state.keys),
        "graph": _graph_check(app.state.store),
        "broker": _broker_check(settings),
    }
    install_error_handlers(app)

    def limit_for(path: str) -> int:
        if path in UPLOAD_PATHS:
            return settings.api_max_upload_bytes
        return settings.api_max_body_bytes

    app.add_middleware(BodyLimitMiddleware, limit_for=limit_for)
    app.add_middleware(UrlGuardMiddleware)
    app.include_router(health.router)
    install_docs(app)
    app.add_api_route("/{path:path}", _options(app), methods=["OPTIONS"], include_in_schema=False)
    for module in (keys, graph, changesets, jobs, models, audits):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    install_console(app)
    return app
