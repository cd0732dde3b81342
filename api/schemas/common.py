"""Shared body parts: pages, the error shape, and the reason every write must give."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

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


class ErrorDetail(BaseModel):
    """The inside of every error body."""

    status: int
    code: str
    message: str
    details: Any = None


class ErrorPublic(BaseModel):
    """Every error the API returns has this shape."""

    error: ErrorDetail
