"""API keys: created once, shown once, stored only as a SHA-256 hash, each with one role.

A key reads `kge_<key id>_<secret>`. The key id (8 hex digits) finds the row; the secret is
32 random bytes (urlsafe base64), so a plain SHA-256 of it is as safe as a slow password hash
and costs microseconds per request. Comparison is constant-time. Revoked keys stay in the
table (who made them and when is audit history) but never authenticate again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from workers.db import ApiKeyRow, Database, get_database

KEY_PREFIX = "kge"


class Role(StrEnum):
    """What a key may do."""

    CURATOR = "curator"  # graph writes and change-set drafts
    REVIEWER = "reviewer"  # approve or reject change sets
    OPERATOR = "operator"  # jobs and model versions
    AUDITOR = "auditor"  # reads audit reports
    ADMIN = "admin"  # manages keys


class UnknownKeyError(LookupError):
    """A key id names no key."""


class LastAdminError(RuntimeError):
    """Revoking the key would leave no active admin key."""


@dataclass(frozen=True)
class Principal:
    """The caller a key stands for."""

    key_id: str
    name: str
    role: Role

    @property
    def actor(self) -> str:
        """Return the name the change log records for this caller."""
        return f"{self.name} (key {self.key_id})"


@dataclass(frozen=True)
class KeyInfo:
    """A key's public record (never the secret)."""

    key_id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """Return the record's fields (timestamps stay `datetime`)."""
        return dict(self.__dict__)


def _hash(secret: str) -> str:
    """Return the hex SHA-256 of a key's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    """Return (key id, secret) of a well-formed key, else None."""
    parts = key.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 8 or not parts[2]:
        return None
    return parts[1], parts[2]


class KeyStore:
    """API keys in the metadata database (table `api_keys`, created by its migrations)."""

    def __init__(self, db: Database | str) -> None:
        self._db = get_database(db) if isinstance(db, str) else db
        self._engine = self._db.engine
        self._sessions = self._db.sessions
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        """Return the metadata database engine."""
        return self._engine

    def create(self, name: str, role: Role | str, created_by: str = "cli") -> tuple[str, KeyInfo]:
        """Create a key; return the full key (shown once) and its record."""
        role = Role(role)
        name = name.strip()
        if not name or len(name) > 200:
            raise ValueError("a key needs a name of 1 to 200 characters")
        secret = secrets.token_urlsafe(32)
        with self._lock, self._sessions.begin() as session:
            key_id = secrets.token_hex(4)
            while session.get(ApiKeyRow, key_id) is not None:
                key_id = secrets.token_hex(4)
            row = ApiKeyRow(
                key_id=key_id,
                name=name,
                role=role.value,
                secret_sha256=_hash(secret),
                created_at=datetime.now(UTC),
                created_by=created_by,
                revoked_at=None,
            )
            session.add(row)
            info = self._info(row)
        return f"{KEY_PREFIX}_{key_id}_{secret}", info

    def authenticate(self, key: str) -> Principal | None:
        """Return the caller of a valid, unrevoked key, else None."""
        parts = split_key(key)
        if parts is None:
            return None
        key_id, secret = parts
        with self._sessions() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None or row.revoked_at is not None:
                return None
            if not hmac.compare_digest(row.secret_sha256, _hash(secret)):
                return None
            return Principal(row.key_id, row.name, Role(row.role))

    def principal(self, key_id: str) -> Principal | None:
        """Return the caller of an unrevoked key by its id (a console session), else None."""
        with self._sessions() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None or row.revoked_at is not None:
                return None
            return Principal(row.key_id, row.name, Role(row.role))

    def list(self) -> list[KeyInfo]:
        """Return every key's record, newest first."""
        with self._sessions() as session:
            rows = session.execute(select(ApiKeyRow).order_by(ApiKeyRow.created_at.desc()))
            return [self._info(r) for r in rows.scalars()]

    def revoke(self, key_id: str) -> KeyInfo:
        """Revoke a key; UnknownKeyError if unknown."""
        with self._sessions.begin() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                raise UnknownKeyError(f"unknown key id {key_id!r}")
            if row.revoked_at is None:
                if row.role == Role.ADMIN and self._active_admins(session) <= 1:
                    raise LastAdminError(
                        f"key {key_id} is the last active admin key; create another first"
                    )
                row.revoked_at = datetime.now(UTC)
            return self._info(row)

    @staticmethod
    def _active_admins(session: Any) -> int:
        """Return how many admin keys are not revoked (rows locked where the backend can)."""
        rows = session.scalars(
            select(ApiKeyRow.key_id)
            .where(ApiKeyRow.role == Role.ADMIN.value, ApiKeyRow.revoked_at.is_(None))
            .with_for_update()
        )
        return len(rows.all())

    @staticmethod
    def _info(row: ApiKeyRow) -> KeyInfo:
        """Return the public record of a row."""
        return KeyInfo(
            row.key_id, row.name, Role(row.role), row.created_at, row.created_by, row.revoked_at
        )


API_KEY_HEADER = "X-API-Key"


def request_key(request: Any) -> str | None:
    """Return the API key a request carries (header or bearer token), if any."""
    key = request.headers.get(API_KEY_HEADER)
    if key:
        return key
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def principal_of(request: Any) -> Principal | None:
    """Return the caller of the request's key when it is valid, else None (never raises)."""
    key = request_key(request)
    return request.app.state.keys.authenticate(key) if key else None
