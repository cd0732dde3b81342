"""Console sessions: an API key exchanged once for a signed, expiring cookie, and CSRF tokens.

The session cookie holds the key's id (never the key), a random session id and an expiry,
signed with HMAC-SHA256 under the server's console secret. Every request re-reads the key's
record, so revoking a key ends its sessions. The cookie is `HttpOnly`, `SameSite=Strict`,
scoped to `/ui`, and `Secure` when the request came over HTTPS.

Every state-changing form carries a CSRF token: the HMAC of the session id (or, on the
sign-in form, of a short-lived pre-session nonce kept in its own cookie). A POST without the
matching token is refused with 403 before anything is read or changed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request, Response

from api.keys import Principal
from workers.settings import Settings

SESSION_COOKIE = "kgedit_session"
LOGIN_COOKIE = "kgedit_login"
COOKIE_PATH = "/ui"
LOGIN_SECONDS = 600
SECRET_FILE = "console-secret"


def console_secret(settings: Settings) -> bytes:
    """Return the signing key: the configured one, else a random one kept (0600) in var_dir."""
    if settings.console_secret is not None:
        return settings.console_secret.get_secret_value().encode()
    path = Path(settings.var_dir) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process wrote it first
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, purpose: str, data: str) -> str:
    """Return the HMAC of `data` for one purpose (a session cookie, a CSRF token, ...)."""
    return _b64(hmac.new(secret, f"{purpose}:{data}".encode(), hashlib.sha256).digest())


def sign(secret: bytes, purpose: str, payload: dict[str, Any]) -> str:
    """Return `payload` as a signed token."""
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(secret, purpose, body)}"


def unsign(secret: bytes, purpose: str, token: str | None) -> dict[str, Any] | None:
    """Return the payload of a token signed for `purpose` that has not expired, else None."""
    if not token or token.count(".") != 1:
        return None
    body, mac = token.split(".")
    if not hmac.compare_digest(mac, _mac(secret, purpose, body)):
        return None
    try:
        payload = json.loads(_unb64(body))
    except ValueError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int | float):
        return None
    return payload if payload["exp"] > time.time() else None


@dataclass(frozen=True)
class Session:
    """A signed-in console user: the key's caller and the session's CSRF token."""

    principal: Principal
    csrf: str
    expires: float


def _secret(request: Request) -> bytes:
    return request.app.state.console_secret


def _set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def current_session(request: Request) -> Session | None:
    """Return the request's session when its cookie is valid and its key is not revoked."""
    payload = unsign(_secret(request), "session", request.cookies.get(SESSION_COOKIE))
    if payload is None or not isinstance(payload.get("key"), str):
        return None
    principal = request.app.state.keys.principal(payload["key"])
    if principal is None:
        return None
    csrf = _mac(_secret(request), "csrf", str(payload.get("sid")))
    return Session(principal, csrf, float(payload["exp"]))


def start_session(request: Request, response: Response, principal: Principal) -> None:
    """Sign `principal` in: set the session cookie, drop the sign-in nonce."""
    age = int(request.app.state.settings.console_session_minutes) * 60
    payload = {
        "key": principal.key_id,
        "sid": secrets.token_urlsafe(16),
        "exp": int(time.time()) + age,
    }
    _set_cookie(request, response, SESSION_COOKIE, sign(_secret(request), "session", payload), age)
    response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")


def end_session(response: Response) -> None:
    """Sign out: expire the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")


def login_token(request: Request, response: Response) -> str:
    """Return the sign-in form's CSRF token, setting (or keeping) its nonce cookie."""
    payload = unsign(_secret(request), "login", request.cookies.get(LOGIN_COOKIE))
    if payload is None:
        payload = {"nonce": secrets.token_urlsafe(16), "exp": int(time.time()) + LOGIN_SECONDS}
        token = sign(_secret(request), "login", payload)
        _set_cookie(request, response, LOGIN_COOKIE, token, LOGIN_SECONDS)
    return _mac(_secret(request), "login-csrf", str(payload["nonce"]))


def login_token_valid(request: Request, sent: str | None) -> bool:
    """Return whether `sent` is the CSRF token of the request's sign-in nonce."""
    payload = unsign(_secret(request), "login", request.cookies.get(LOGIN_COOKIE))
    if payload is None or not sent:
        return False
    return hmac.compare_digest(sent, _mac(_secret(request), "login-csrf", str(payload["nonce"])))


def csrf_valid(session: Session, sent: str | None) -> bool:
    """Return whether `sent` is the session's CSRF token."""
    return bool(sent) and hmac.compare_digest(str(sent), session.csrf)
