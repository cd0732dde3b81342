"""The curator console at `/ui`: server-rendered pages over the API's own route functions.

`install_console(app)` adds the pages and their stylesheet; see docs/console.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.console.routes import router
from api.console.session import console_secret


def install_console(app: FastAPI) -> None:
    """Serve the console under `/ui` (its assets under `/ui/static`)."""
    app.state.console_secret = console_secret(app.state.settings)
    static = Path(__file__).parent / "static"
    app.mount("/ui/static", StaticFiles(directory=str(static)), name="console-static")
    app.include_router(router)
