"""Shared body parts: pages, the error shape, and the reason every write must give."""

from __future__ import annotations

import dataclasses
import typing
import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
)

from workers.jobs.spec import NAME_RE

T = TypeVar("T")

NAME_PATTERN = NAME_RE.pattern
MAX_DB_ID = 2**31 - 1  # the largest value of a 32-bit INTEGER column on every backend
DbId = Annotated[int, Field(ge=1, le=MAX_DB_ID)]
"""A row id (version, fact): positive and within every backend's INTEGER column."""
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff")


def clean_text(value: str) -> str:
    """Return `value` in NFC; refuse control characters (but tab and newline) and
    bidirectional overrides."""
    value = unicodedata.normalize("NFC", value)
    for ch in value:
        if unicodedata.category(ch) == "Cc" and ch not in "\t\n":
            raise ValueError(f"control character U+{ord(ch):04X} is not allowed")
        if ch in BIDI_CONTROLS:
            raise ValueError(f"bidirectional control U+{ord(ch):04X} is not allowed")
    return value


def clean_id(value: str) -> str:
    """Return `value` as `clean_text` does; also refuse tabs, newlines and invisible
    (zero-width) characters."""
    value = clean_text(value)
    for ch in value:
        if ch in INVISIBLE or unicodedata.category(ch) == "Cc":
            raise ValueError(f"invisible character U+{ord(ch):04X} is not allowed in an id")
    return value


SafeText = Annotated[str, AfterValidator(clean_text)]
"""Any text the service stores: NFC, no control characters, no bidirectional overrides."""
SafeId = Annotated[str, AfterValidator(clean_id)]
"""An id or path: a `SafeText` without zero-width characters."""
ID_FIELDS = frozenset(
    {"id", "subject", "relation", "object", "new_object", "entity", "concept", "request_id"}
    | {"redirect_to", "alias", "path"}
)
"""Body fields that name an object: held to `clean_id`."""


def _clean(value: Any, as_id: bool) -> Any:
    """Apply the text policy to every string inside a value (lists and dict keys too)."""
    if isinstance(value, str):
        return clean_id(value) if as_id else clean_text(value)
    if isinstance(value, list):
        return [_clean(v, as_id) for v in value]
    if isinstance(value, dict):
        return {_clean(k, True): _clean(v, as_id) for k, v in value.items()}
    return value


class Strict(BaseModel):
    """A body that refuses unknown fields and holds every text to the one text policy."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _text_policy(cls, value: Any, info: ValidationInfo) -> Any:
        return _clean(value, info.field_name in ID_FIELDS)


Name = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN)]
"""A model or method name: letters, digits, '_', '.', '-', starting with a letter or digit."""

Reason = Field(..., min_length=1, max_length=2000, description="why (kept in the change log)")


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int
    limit: int
    offset: int


def page_of(items: list, limit: int, offset: int, public: Callable[[Any], Any]) -> Page:
    """Return the page [offset, offset + limit) of an in-memory list, mapped by `public`."""
    chosen = items[offset : offset + limit]
    return Page(items=[public(x) for x in chosen], total=len(items), limit=limit, offset=offset)


class ErrorDetail(BaseModel):
    """The inside of every error body."""

    status: int
    code: str
    message: str
    details: Any = None


class ErrorPublic(BaseModel):
    """Every error the API returns has this shape."""

    error: ErrorDetail


ERROR_STATUS = {
    400: "the request cannot be processed as sent",
    401: "no API key, or a key that is not valid",
    403: "the key's role may not do this",
    404: "no such object",
    409: "conflicts with the current state",
    413: "the body is too large",
    422: "the request is not valid",
    503: "a backend (database, broker) is unavailable",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorPublic, "description": text} for status, text in ERROR_STATUS.items()
}
"""Every error a /v1 route may answer, in the one error shape (documented on each route)."""


class PublicView(BaseModel):
    """Base of the public views derived from a service record (see `derive_public`)."""

    @classmethod
    def of(cls, info: Any) -> Any:
        """Return the public view of a service record (its `to_dict()`, fields of the view)."""
        data = info.to_dict()
        return cls(**{k: v for k, v in data.items() if k in cls.model_fields})


def _public_type(hint: Any) -> Any:
    """Return the JSON type of a record field: timestamps are ISO strings."""
    if hint is datetime:
        return str
    if hint == datetime | None:
        return str | None
    return hint


def derive_public(
    name: str,
    record: type,
    *,
    exclude: frozenset[str] = frozenset(),
    types: dict[str, Any] | None = None,
    base: type[PublicView] = PublicView,
) -> type[PublicView]:
    """Return a public schema with the fields of the service dataclass `record`, so the API
    never retypes them; `types` narrows a field (a state to its enum), `exclude` hides one."""
    hints = typing.get_type_hints(record)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        if f.name in exclude:
            continue
        hint = (types or {}).get(f.name, _public_type(hints[f.name]))
        has_default = f.default is not dataclasses.MISSING
        fields[f.name] = (hint, f.default if has_default else ...)
    model = create_model(name, __base__=base, __doc__=record.__doc__, **fields)
    return model
