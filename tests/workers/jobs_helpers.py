"""Helpers and fixtures of the job-system tests: isolated settings, a tiny random model.

Test modules import the fixtures they use from here (`from jobs_helpers import ...`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from workers.settings import Settings, get_settings

CORPUS = [
    f"{s} {t} {o}."
    for s in ("Ada Lovelace", "Marie Curie", "Mount Fuji", "Toko Yasuda")
    for t in ("was born in", "is located in", "speaks")
    for o in ("Paris", "London", "Tokyo")
]


def save_random_gpt2(path: Path, seed: int = 0, hidden: int = 32) -> Path:
    """Save a random 2-layer GPT-2 with a BPE tokenizer trained on `CORPUS` as an HF dir."""
    from editor.knowledge.random_gpt2 import save_random_gpt2 as save

    return save(path, CORPUS, 300, seed=seed, hidden=hidden)


def make_settings(root: Path, **overrides) -> Settings:
    """Return settings with every database, broker and file under `root`."""
    return Settings(var_dir=root, threads=1, **overrides)


@pytest.fixture
def job_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings isolated under a temporary directory, also as the process-wide settings."""
    from workers.db import reset_databases

    var = tmp_path / "var"
    monkeypatch.setenv("KGEDIT_VAR_DIR", str(var))
    monkeypatch.setenv("KGEDIT_THREADS", "1")
    get_settings.cache_clear()
    reset_databases()
    yield get_settings()
    reset_databases()
    get_settings.cache_clear()


@pytest.fixture
def tiny(job_settings, tiny_model_dir, tiny_graph) -> Iterator[Settings]:
    """The tiny knowledge model registered as `tiny`, following the tiny graph."""
    import torch

    from workers.ledger import register_model

    threads = torch.get_num_threads()
    register_model("tiny", tiny_model_dir, graph_url=tiny_graph.url)
    yield job_settings
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 directory (no training)."""
    return save_random_gpt2(tmp_path_factory.mktemp("random-gpt2") / "model")


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.1
) -> None:
    """Poll `condition` until true; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


# Tests of delivery, resumption, crashes and queues check the job machinery, not edit
# quality: their jobs carry each request's rewrite probe and a gate that only asks for it to
# be measured (a job is never `succeeded` without a gate that measured something).
MECHANICS_GATE = [{"group": "rewrite", "min_after": 0.0}]


def checked(payload: dict) -> dict:
    """Return an edit payload with a rewrite probe per request and `MECHANICS_GATE`."""
    probes = [
        {
            "prompt": r["prompt"].replace("{}", r["subject"], 1),
            "expected": r["target_new"],
            "kind": "rewrite",
        }
        for r in payload["requests"]
    ]
    return {**payload, "probes": probes, "thresholds": MECHANICS_GATE}


def edit_payload(model: str, subjects: list[tuple[str, str, str]], **extra) -> dict:
    """Return a job payload of ROME edits: (subject, prompt with {}, new object) triples."""
    requests = [
        {"subject": s, "prompt": p, "target_new": o, "request_id": f"req-{i}"}
        for i, (s, p, o) in enumerate(subjects)
    ]
    return {"model": model, "method": "rome", "requests": requests, **extra}


def pid_alive(pid: int) -> bool:
    """Return whether a process exists and is not a zombie."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def env_for(settings: Settings) -> dict[str, str]:
    """Return an environment that gives a subprocess the same settings."""
    env = dict(os.environ)
    env.update(
        {
            "KGEDIT_VAR_DIR": str(settings.var_dir),
            "KGEDIT_METADATA_URL": settings.metadata_db_url,
            "KGEDIT_BROKER_URL": settings.broker,
            "KGEDIT_RESULT_BACKEND": settings.results,
            "KGEDIT_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
        }
    )
    return env


class WorkerProcess:
    """A real `kgedit worker` process tree (prefork: a parent and its pool child)."""

    READY = "ready."

    def __init__(self, settings: Settings, models: list[str], log_path: Path) -> None:
        self.settings, self.models, self.log_path = settings, models, log_path
        self.proc: subprocess.Popen | None = None
        self.pids: set[int] = set()

    def start(self, timeout: float = 120.0) -> WorkerProcess:
        """Launch the worker and wait until Celery says it is ready."""
        import sys

        cmd = [sys.executable, "-m", "api.cli", "worker", "--loglevel", "info"]
        for m in self.models:
            cmd += ["--model", m]
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            cmd,
            env=env_for(self.settings),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
        self.pids.add(self.proc.pid)
        wait_for(self._ready, timeout, f"worker ready (log: {self.log_path})", interval=0.2)
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(f"worker exited with {self.proc.returncode}: {self.log_path.read_text()}")
        return self.READY in self.log_path.read_text(errors="replace")

    def tree(self) -> set[int]:
        """Return the PIDs of the worker and its children (recorded for the final wait)."""
        import psutil

        if self.proc is None:
            return set()
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        self.pids |= {self.proc.pid} | {c.pid for c in children}
        return set(self.pids)

    def kill(self) -> None:
        """SIGKILL every process of the worker at once, then wait until all are gone."""
        for pid in self.tree():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.wait_gone(60)

    def stop(self, timeout: float = 60.0) -> None:
        """Warm shutdown (SIGTERM); SIGKILL whatever is left after `timeout`."""
        pids = self.tree()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.wait_gone(timeout)
        except pytest.fail.Exception:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.wait_gone(30)

    def wait_gone(self, timeout: float) -> None:
        """Wait until every PID of the worker has exited (and reap the parent)."""
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
        wait_for(lambda: not any(pid_alive(p) for p in self.pids), timeout, "worker PIDs to exit")
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None


def broker_messages(settings: Settings, model: str) -> int:
    """Count messages in the embedded broker's queue of `model`."""
    import sqlite3

    from workers.celery_app import queue_name

    path = settings.broker.split("sqlite:///", 1)[1]
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT count(*) FROM kombu_message m JOIN kombu_queue q ON m.queue_id = q.id "
            "WHERE q.name = ?",
            (queue_name(model),),
        ).fetchone()[0]
