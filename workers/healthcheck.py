"""Container health checks, as docker-compose runs them (exit status 0: healthy).

- `python -m workers.healthcheck api [URL]`: the API's `/readyz` answers 200 (its database,
  broker and graph store answer);
- `python -m workers.healthcheck worker`: a Celery worker of this host answers a ping over
  the broker (it consumes its queues even while it runs a job: the parent process answers).

The images ship neither curl nor wget; these checks need only the installed package.
"""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

READY_URL = "http://127.0.0.1:8000/readyz"
TIMEOUT = 5.0


def api_problem(url: str = READY_URL, timeout: float = TIMEOUT) -> str | None:
    """Return why the API is not ready, or None when `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = response.status
            body = response.read(300).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return f"{url} answered {exc.code}: {exc.read(300).decode('utf-8', 'replace')}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url} unreachable: {exc}"
    return None if status == 200 else f"{url} answered {status}: {body}"


def worker_problem(timeout: float = TIMEOUT, hostname: str | None = None) -> str | None:
    """Return why no Celery worker of this host answers a ping, or None when one does."""
    from workers.celery_app import get_app

    host = hostname or socket.gethostname()
    try:
        replies = get_app().control.ping(timeout=timeout)
    except Exception as exc:  # the broker's own error is the report
        return f"ping over the broker failed: {type(exc).__name__}: {exc}"
    names = [name for reply in replies for name in reply]
    if any(name.endswith(f"@{host}") for name in names):
        return None
    return f"no Celery worker on {host} answered within {timeout:g} s (answered: {names})"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one check (`api [URL]` or `worker`); print the problem and return 1 if unhealthy."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["api"] and len(args) <= 2:
        problem = api_problem(*args[1:])
    elif args == ["worker"]:
        problem = worker_problem()
    else:
        print("usage: python -m workers.healthcheck api [URL] | worker", file=sys.stderr)
        return 2
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
