"""Refuse URLs whose path or query holds a control or bidi character, before any route runs.

Ids and names in a URL are looked up in the stores; PostgreSQL cannot even hold a NUL in a
text value, so such a lookup would fail inside the driver. The one text policy of the
bodies (`api.schemas.common.clean_id`) applies to the decoded path and query as well: any
violation is a 422 in the one error shape.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from api.errors import error_body
from api.schemas.common import clean_id


def url_problem(path: str, query: bytes) -> str | None:
    """Return why a request's decoded path or query is refused, or None when it is clean."""
    try:
        clean_id(path)  # the server hands the path over percent-decoded
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            clean_id(key)
            clean_id(value)
    except ValueError as exc:
        return f"the URL is not valid: {exc}"
    return None


class UrlGuardMiddleware:
    """Answer 422 to requests whose URL breaks the text policy."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        """Check the path and query of HTTP requests, then pass them on."""
        if scope["type"] == "http":
            problem = url_problem(scope.get("path", ""), scope.get("query_string", b""))
            if problem is not None:
                body = json.dumps(error_body(422, problem)).encode()
                headers = [(b"content-type", b"application/json")]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({"type": "http.response.start", "status": 422, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
