"""`/docs` (Swagger UI) and `/redoc` served from assets installed with the package, no CDN.

The JavaScript and CSS come from the `fastapi-offline` distribution's static folder and are
served under `/static/docs/`; the pages are FastAPI's own HTML pointed at them (ReDoc without
its web fonts). Each page carries a Content-Security-Policy that allows only this origin, so a
page that still asked a CDN for anything would fail visibly instead of leaking requests.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_ASSETS = "/static/docs"
# Swagger UI's and ReDoc's pages start themselves with an inline script, and ReDoc runs a
# worker from a blob URL; nothing may be fetched from another origin
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; font-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)


def assets_dir() -> str:
    """Return the folder that holds the vendored Swagger UI and ReDoc assets."""
    return str(resources.files("fastapi_offline") / "static")


def install_docs(app: FastAPI) -> None:
    """Mount the assets and add `/docs`, its OAuth2 redirect and `/redoc` (the app must have
    been built with `docs_url=None, redoc_url=None`)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets_dir()), name="docs-assets")
    headers = {"Content-Security-Policy": DOCS_CSP}

    def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
        )
        return HTMLResponse(page.body, headers=headers)

    def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        return HTMLResponse(page.body, headers=headers)

    app.add_api_route("/docs", swagger, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        "/docs/oauth2-redirect", oauth2_redirect, methods=["GET"], include_in_schema=False
    )
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
