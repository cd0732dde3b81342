"""The compose healthchecks: the API's /readyz over HTTP, a local worker's ping over Redis."""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from jobs_helpers import WorkerProcess, job_settings, random_model_dir  # noqa: F401
from service_checks import require_redis

from workers import healthcheck
from workers.db import reset_databases
from workers.ledger import register_model
from workers.settings import get_settings

REDIS_URL = os.environ.get("KGEDIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")


@pytest.fixture
def readyz():
    """A local server whose /readyz answers `state["status"]`; yields (url, state)."""
    state = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(state["status"] if self.path == "/readyz" else 404)
            self.end_headers()
            self.wfile.write(b'{"ready": false, "checks": {"broker": "down"}}')

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/readyz", state
    server.shutdown()
    server.server_close()


def test_api_check_follows_readyz(readyz):
    url, state = readyz
    assert healthcheck.api_problem(url) is None and healthcheck.main(["api", url]) == 0
    state["status"] = 503
    problem = healthcheck.api_problem(url)
    assert problem is not None and "503" in problem and "broker" in problem
    assert healthcheck.main(["api", url]) == 1
    gone = url.replace("/readyz", "/nothing")
    assert "404" in healthcheck.api_problem(gone)
    assert "unreachable" in healthcheck.api_problem("http://127.0.0.1:9/readyz", timeout=2)


@pytest.fixture
def redis_settings(job_settings, monkeypatch):  # noqa: F811
    """Process-wide settings on the test Redis (skipped, failed under CI, when it is down)."""
    monkeypatch.setenv("KGEDIT_BROKER_URL", require_redis(REDIS_URL))
    monkeypatch.setenv("KGEDIT_RESULT_BACKEND", REDIS_URL)
    get_settings.cache_clear()
    reset_databases()
    yield get_settings()
    get_settings.cache_clear()


@pytest.mark.service
def test_worker_check_pings_the_worker_of_this_host(redis_settings, random_model_dir, tmp_path):  # noqa: F811
    register_model("rand", random_model_dir)
    problem = healthcheck.worker_problem(timeout=1)
    assert problem is not None and "no Celery worker" in problem
    worker = WorkerProcess(redis_settings, ["rand"], tmp_path / "worker.log").start()
    try:
        assert healthcheck.worker_problem(timeout=5) is None
        other = healthcheck.worker_problem(timeout=2, hostname="elsewhere")
        assert other is not None and "elsewhere" in other
    finally:
        worker.stop()
