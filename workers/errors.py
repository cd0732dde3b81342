"""Errors of the job system and the ledger, grouped the way an HTTP API reports them.

`NotFoundError` → 404, `ConflictError` → 409, `InvalidInputError` → 422; the others are
raised inside workers. Every message names the object and says what to do.
"""

from __future__ import annotations

from editor.cancel import RunCancelledError


class WorkersError(Exception):
    """Base class of every error the job system and the ledger raise on purpose."""


class NotFoundError(WorkersError):
    """An id or name that does not exist."""


class ConflictError(WorkersError):
    """A request that contradicts the current state (a used key, a finished job, a moved head)."""


class InvalidInputError(WorkersError):
    """Malformed or oversized input; nothing was written."""


class DataSetMissingError(InvalidInputError):
    """A benchmark data set is not under the configured data folder (`KGEDIT_DATA_DIR`)."""


class JobNotFoundError(NotFoundError):
    """No job has this id."""


class ModelNotFoundError(NotFoundError):
    """No registered model has this name."""


class VersionNotFoundError(NotFoundError):
    """No version of this model has this id."""


class IdempotencyConflictError(ConflictError):
    """The idempotency key was used before with a different payload."""


class InvalidTransitionError(ConflictError):
    """The job's state machine does not allow this change."""


class HeadMovedError(ConflictError):
    """The model's head is not the version a writer built on (another writer or a rollback)."""


class ChecksumMismatchError(WorkersError):
    """Weights or a delta file on disk differ from what the ledger recorded; refused."""


class JobCancelledError(WorkersError, RunCancelledError):
    """Raised inside a running job when its cancellation was requested (also from inside
    the editor's loops, which stop at their next checkpoint)."""


class TransientJobError(WorkersError):
    """A failure worth retrying with backoff (database or broker hiccup, out of memory)."""
