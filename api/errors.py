"""One JSON shape for every error the API returns, and the mapping from domain errors.

Every error body is `{"error": {"status": int, "code": str, "message": str, "details": ...}}`;
`details` is a list (validation errors, conflicting facts) or null.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError as PydanticValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.keys import principal_of
from kg.errors import (
    ConflictError,
    DuplicateError,
    ImportFormatError,
    KGError,
    NotFoundError,
    StateError,
    ValidationError,
)
from workers.errors import ChecksumMismatchError, InvalidInputError, WorkersError
from workers.errors import ConflictError as WorkersConflict
from workers.errors import NotFoundError as WorkersNotFound

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    500: "internal",
    503: "unavailable",
}


class ApiError(Exception):
    """An error with an HTTP status, a stable code, a message and optional details."""

    def __init__(
        self, status: int, message: str, details: Any = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.code = code or _CODES.get(status, "error")


def error_body(status: int, message: str, details: Any = None, code: str | None = None) -> dict:
    """Return the error JSON body for a status and message."""
    return {
        "error": {
            "status": status,
            "code": code or _CODES.get(status, "error"),
            "message": message,
            "details": jsonable_encoder(details),
        }
    }


def error_response(
    status: int, message: str, details: Any = None, headers: dict | None = None
) -> JSONResponse:
    """Return a JSONResponse carrying the error body."""
    return JSONResponse(error_body(status, message, details), status_code=status, headers=headers)


def _domain_status(exc: KGError) -> int:
    """Return the HTTP status of a `kg` error (conflicts 409, unknown ids 404, bad input 422)."""
    if isinstance(exc, NotFoundError):
        return 404
    if getattr(exc, "http_status", None):
        return int(exc.http_status)  # type: ignore[attr-defined]
    if isinstance(exc, DuplicateError | ConflictError | StateError):
        return 409
    if isinstance(exc, ValidationError | ImportFormatError | ValueError):
        return 422
    return 400


def _workers_status(exc: WorkersError) -> int:
    """Return the HTTP status of a job-system or ledger error."""
    if isinstance(exc, WorkersNotFound):
        return 404
    if isinstance(exc, WorkersConflict | ChecksumMismatchError):
        return 409
    if isinstance(exc, InvalidInputError):
        return 422
    return 500


def error_of(exc: Exception) -> ApiError | None:
    """Return the API's answer to an error a route raises (status, message, details), or None
    for an unexpected error: the same mapping the handlers below apply."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, KGError):
        details = getattr(exc, "details", None) or getattr(exc, "facts", None)
        return ApiError(_domain_status(exc), str(exc), jsonable_encoder(details))
    if isinstance(exc, WorkersError):
        return ApiError(_workers_status(exc), str(exc))
    if isinstance(exc, PydanticValidationError):
        return ApiError(422, "the request is not valid", _validation_details(exc.errors()))
    return None


def _validation_details(errors: list[Any]) -> list[dict[str, Any]]:
    """Return pydantic's validation errors as (loc, msg, type) records."""
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Register handlers so every error, including unexpected ones, uses the one shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.status, exc.message, exc.details, exc.code), status_code=exc.status
        )

    @app.exception_handler(KGError)
    async def _kg_error(_: Request, exc: KGError) -> JSONResponse:
        details = getattr(exc, "details", None) or getattr(exc, "facts", None)
        return error_response(_domain_status(exc), str(exc), details)

    @app.exception_handler(WorkersError)
    async def _workers_error(_: Request, exc: WorkersError) -> JSONResponse:
        return error_response(_workers_status(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if request.url.path.startswith("/v1/") and principal_of(request) is None:
            return error_response(401, "a valid API key is required before the body is read")
        return error_response(422, "the request is not valid", _validation_details(exc.errors()))

    @app.exception_handler(PydanticValidationError)
    async def _invalid_model(_: Request, exc: PydanticValidationError) -> JSONResponse:
        return error_response(422, "the request is not valid", _validation_details(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), None, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        return error_response(500, f"internal error ({type(exc).__name__})")
