"""Shared body parts: pages, the error shape, and the reason every write must give."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from workers.jobs.spec import NAME_RE

T = TypeVar("T")

NAME_PATTERN = NAME_RE.pattern
MAX_DB_ID = 2**31 - 1  # the largest value of a 32-bit INTEGER column on every backend
DbId = Annotated[int, Field(ge=1, le=MAX_DB_ID)]
"""A row id (version, fact): positive and within every backend's INTEGER column."""
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN)]
"""A model or method name: letters, digits, '_', '.', '-', starting with a letter or digit."""

Reason = Field(..., min_length=1, max_length=2000, description="why (kept in the change log)")


class Strict(BaseModel):
    """A body that refuses unknown fields."""

    model_config = ConfigDict(extra="forbid")


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
