"""Key routes (admin only): create, list and revoke API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, status
from pydantic import Field

from api.deps import CallerDep, key_store, roles
from api.errors import ApiError
from api.keys import KeyInfo, KeyStore, LastAdminError, Role, UnknownKeyError
from api.schemas.common import Strict, derive_public

router = APIRouter(prefix="/v1/keys", tags=["keys"])
KeysDep = Annotated[KeyStore, Depends(key_store)]
KeyId = Annotated[str, Path(min_length=8, max_length=8, pattern="^[0-9a-f]{8}$")]


class KeyCreate(Strict):
    """A new key for a person or a service."""

    name: str = Field(..., min_length=1, max_length=200, pattern=r"\S")
    role: Role


KeyPublic = derive_public(
    "KeyPublic", KeyInfo, types={"created_at": datetime, "revoked_at": datetime | None}
)
"""A key's record (never its secret)."""


class KeyCreated(KeyPublic):
    """A new key's record plus the key itself, shown this once."""

    key: str


@router.post("", status_code=status.HTTP_201_CREATED, **roles(Role.ADMIN))
def create_key(body: KeyCreate, keys: KeysDep, caller: CallerDep) -> KeyCreated:
    """Create a key; the response is the only time its secret is shown."""
    key, info = keys.create(body.name, body.role, created_by=caller.actor)
    return KeyCreated(key=key, **info.__dict__)


@router.get("", **roles(Role.ADMIN))
def list_keys(keys: KeysDep) -> list[KeyPublic]:
    """List every key, newest first."""
    return [KeyPublic.of(k) for k in keys.list()]


@router.delete("/{key_id}", **roles(Role.ADMIN))
def revoke_key(key_id: KeyId, keys: KeysDep) -> KeyPublic:
    """Revoke a key; it never authenticates again (409 for the last active admin key)."""
    try:
        return KeyPublic.of(keys.revoke(key_id))
    except UnknownKeyError as exc:
        raise ApiError(404, str(exc)) from None
    except LastAdminError as exc:
        raise ApiError(409, str(exc)) from None
