"""Request dependencies: the settings, the graph store, the key store, and role checks.

Every route but health and readiness declares the roles it admits with `roles(...)`, which
adds the check and writes the roles into the OpenAPI operation as `x-required-roles`. A
missing or unknown key is 401; a valid key of another role is 403.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from api.keys import API_KEY_HEADER, KeyStore, Principal, Role

_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="an API key")
_bearer = HTTPBearer(auto_error=False, description="an API key as a bearer token")


def app_state(request: Request) -> Any:
    """Return the app's state (settings, stores)."""
    return request.app.state


def key_store(request: Request) -> KeyStore:
    """Return the key store of the app."""
    return request.app.state.keys


def graph_store(request: Request) -> Any:
    """Return the graph store of the app."""
    return request.app.state.store


def current_principal(
    request: Request,
    header: Annotated[str | None, Depends(_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Return the caller of the request's key; 401 when it is missing or not valid."""
    key = header or (bearer.credentials if bearer else None)
    if not key:
        raise ApiError(401, f"an API key is required (header {API_KEY_HEADER})")
    principal = request.app.state.keys.authenticate(key)
    if principal is None:
        raise ApiError(401, "the API key is not valid or has been revoked")
    return principal


class RoleGuard:
    """A dependency admitting only callers of the given roles."""

    def __init__(self, allowed: tuple[Role, ...]) -> None:
        self.allowed = allowed

    def __call__(self, principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        """Return the caller when its role is admitted; 403 otherwise."""
        if principal.role not in self.allowed:
            names = ", ".join(r.value for r in self.allowed)
            raise ApiError(403, f"role {principal.role.value!r} may not do this (needs: {names})")
        return principal


def roles(*allowed: Role, openapi_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return route-decorator arguments that admit only `allowed` roles."""
    return {
        "dependencies": [Depends(RoleGuard(tuple(allowed)))],
        "openapi_extra": {**(openapi_extra or {}), "x-required-roles": [r.value for r in allowed]},
    }


CallerDep = Annotated[Principal, Depends(current_principal)]
StoreDep = Annotated[Any, Depends(graph_store)]
"""The app's graph store, as a route parameter."""

READERS = (Role.CURATOR, Role.REVIEWER, Role.OPERATOR, Role.AUDITOR)
