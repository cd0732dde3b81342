"""Bolt connections shared per process, and the string codec FalkorDB needs.

One driver per (server, user) serves every `Neo4jGraphStore` of a process: after a driver
closes its connections, FalkorDB fails the next Bolt handshake, so its drivers stay open for
the life of the process. FalkorDB splices parameters into the query text without escaping
`'` and `\\`, so strings travel with `%`, `'` and `\\` percent-encoded and are decoded on the
way back.
"""

from __future__ import annotations

import atexit
import contextlib
import re
import threading
from typing import Any

_FALKOR_ESCAPES = {"%": "%25", "'": "%27", "\\": "%5C"}
_FALKOR_UNESCAPE = re.compile(r"%(25|27|5C)")
_UNESCAPED = {"25": "%", "27": "'", "5C": "\\"}


def falkor_encode(value: Any) -> Any:
    """Return `value` with `%`, `'` and `\\` percent-encoded in every string it holds."""
    if isinstance(value, str):
        if "%" in value or "'" in value or "\\" in value:
            return "".join(_FALKOR_ESCAPES.get(ch, ch) for ch in value)
        return value
    if isinstance(value, dict):
        return {k: falkor_encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [falkor_encode(v) for v in value]
    return value


def falkor_decode(value: Any) -> Any:
    """Undo `falkor_encode` on values read back."""
    if isinstance(value, str):
        if "%" in value:
            return _FALKOR_UNESCAPE.sub(lambda m: _UNESCAPED[m.group(1)], value)
        return value
    if isinstance(value, dict):
        return {k: falkor_decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [falkor_decode(v) for v in value]
    return value


_DRIVERS: dict[tuple[str, str | None], list[Any]] = {}  # (uri, user) -> [driver, holders]
_DRIVERS_LOCK = threading.Lock()


def shared_driver(
    uri: str, auth: tuple[str, str] | None, connect_timeout: float, pinned: str
) -> Any:
    """Return the process-wide driver of (uri, user), creating it on first use.

    Sharing matters on FalkorDB: after a driver closes its connections, the server fails the
    next Bolt handshake, so its drivers stay open for the life of the process.
    """
    import neo4j

    key = (uri, auth[0] if auth else None)
    with _DRIVERS_LOCK:
        entry = _DRIVERS.get(key)
        if entry is None:
            acquire = 3.0 if pinned == "falkordb" else 30.0
            driver = neo4j.GraphDatabase.driver(
                uri,
                auth=auth,
                connection_timeout=connect_timeout,
                connection_acquisition_timeout=acquire,
                max_transaction_retry_time=5,
            )
            entry = _DRIVERS[key] = [driver, 0]
        entry[1] += 1
        return entry[0]


@atexit.register
def _close_drivers() -> None:
    """Close every shared driver when the process ends."""
    with _DRIVERS_LOCK:
        for driver, _ in _DRIVERS.values():
            with contextlib.suppress(Exception):  # best effort at exit
                driver.close()
        _DRIVERS.clear()


def release_driver(driver: Any, keep_open: bool) -> None:
    """Drop one hold on a shared driver; close it when none is left (unless `keep_open`)."""
    with _DRIVERS_LOCK:
        for key, entry in list(_DRIVERS.items()):
            if entry[0] is driver:
                entry[1] -= 1
                if entry[1] <= 0 and not keep_open:
                    del _DRIVERS[key]
                    driver.close()
                return
