"""Errors raised by the `kg` package.

Every error derives from `KGError`; the ones caused by bad input also derive from `ValueError`
(or `LookupError` for unknown ids) so callers that only know the builtins still catch them.
"""

from __future__ import annotations


class KGError(Exception):
    """Base class of every error raised by `kg`."""


class ValidationError(KGError, ValueError):
    """A value breaks a rule of the data model (empty name, control characters, ...)."""


class NotFoundError(KGError, LookupError):
    """An id names nothing in the store."""

    def __init__(self, kind: str, ident: str) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(f"unknown {kind} id {ident!r}")

    def __str__(self) -> str:
        """Return the message without the quoting `LookupError` would add."""
        return str(self.args[0])


class DuplicateError(KGError, ValueError):
    """The item already exists (same id, or the same current fact)."""


class ImportFormatError(KGError, ValueError):
    """A line of an import file cannot be read; `line_no` is 1-based."""

    def __init__(self, line_no: int, message: str) -> None:
        self.line_no = line_no
        self.message = message
        super().__init__(f"line {line_no}: {message}")


class ConflictError(KGError):
    """A change is based on a stale view of the graph; `facts` names what changed since.

    Each item of `facts` is a dict with `subject`, `relation`, `expected` (the facts of that
    (subject, relation) slot the change was based on) and `current` (what the graph holds now).
    """

    def __init__(self, message: str, facts: list[dict] | None = None) -> None:
        self.facts = list(facts or [])
        super().__init__(message)


class StateError(KGError, ValueError):
    """An operation is not allowed in the item's current state (approving a draft, ...)."""


class BackendError(KGError):
    """The graph server failed a query; the message names the store operation that failed."""
