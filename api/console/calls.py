"""How the console reaches data: by calling the API's own route functions, under the roles
each route declares (`x-required-roles`), so a console page can never do more than the API
lets the same key do."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute

from api.errors import ApiError, error_of
from api.keys import Principal, Role

_ROLES: dict[Callable[..., Any], tuple[Role, ...]] = {}


def route_roles(endpoint: Callable[..., Any]) -> tuple[Role, ...]:
    """Return the roles the API route served by `endpoint` admits (read from the `router` of
    the endpoint's module, where `api.deps.roles` wrote them)."""
    if endpoint not in _ROLES:
        router = getattr(sys.modules[endpoint.__module__], "router", None)
        found = [
            r
            for r in getattr(router, "routes", ())
            if isinstance(r, APIRoute) and r.endpoint is endpoint
        ]
        if not found:
            raise LookupError(f"{endpoint.__qualname__} serves no API route")
        declared = (found[0].openapi_extra or {}).get("x-required-roles", [])
        _ROLES[endpoint] = tuple(Role(r) for r in declared)
    return _ROLES[endpoint]


def may(request: Request, principal: Principal, endpoint: Callable[..., Any]) -> bool:
    """Return whether the caller's role may use the API route served by `endpoint`."""
    return principal.role in route_roles(endpoint)


def call(request: Request, principal: Principal, endpoint: Callable[..., Any], **given: Any) -> Any:
    """Call an API route function as `principal` would through HTTP: 403 for a role the
    route does not admit; the route's dependencies (request, store, caller) filled in; its
    errors mapped to the API's `ApiError`."""
    allowed = route_roles(endpoint)
    if principal.role not in allowed:
        names = ", ".join(r.value for r in allowed)
        raise ApiError(403, f"role {principal.role.value!r} may not do this (needs: {names})")
    kwargs: dict[str, Any] = {}
    for name, param in inspect.signature(endpoint).parameters.items():
        if name in given:
            kwargs[name] = given[name]
        elif name == "request":
            kwargs[name] = request
        elif name == "store":
            kwargs[name] = request.app.state.store
        elif name in ("caller", "_"):
            kwargs[name] = principal
        elif param.default is not inspect.Parameter.empty:
            default = param.default
            kwargs[name] = getattr(default, "default", default)  # Query(...) holds its default
        else:
            raise TypeError(f"{endpoint.__qualname__} needs {name!r}")
    try:
        return endpoint(**kwargs)
    except Exception as exc:
        mapped = error_of(exc)
        if mapped is None:
            raise
        raise mapped from exc
