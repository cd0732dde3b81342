"""Request-size limits as a pure ASGI middleware: oversized bodies get 413 before parsing.

A declared `Content-Length` over the limit is refused at once; a chunked body is counted as it
streams and refused as soon as it passes the limit. Upload routes get their own, larger limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.exceptions import HTTPException

from api.errors import error_body


class BodyTooLargeError(HTTPException):
    """The streamed body passed its limit (an HTTP 413, so the error handlers shape it)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes")


def _reply_413(limit: int) -> tuple[dict, dict]:
    """Return the ASGI start and body messages of a 413 response."""
    body = json.dumps(error_body(413, f"request body exceeds {limit} bytes")).encode()
    start = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class BodyLimitMiddleware:
    """Refuse request bodies larger than `limit_for(path)` bytes with a 413 JSON error."""

    def __init__(self, app, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope, receive, send) -> None:
        """Check the declared length, then count the streamed bytes."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            for message in _reply_413(limit):
                await send(message)
            return
        seen = 0
        started = False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLargeError:
            if not started:
                for message in _reply_413(limit):
                    await send(message)
