"""Helpers and fixtures of the job-system tests: isolated settings, a tiny random model.

Test modules import the fixtures they use from here (`from jobs_helpers import ...`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from workers.settings import Settings, get_settings

CORPUS = [
    f"{s} {t} {o}."
    for s in ("Ada Lovelace", "Marie Curie", "Mount Fuji", "Toko Yasuda")
    for t in ("was born in", "is located in", "speaks")
    for o in ("Paris", "London", "Tokyo")
]


def save_random_gpt2(path: Path, seed: int = 0, hidden: int = 32) -> Path:
    """Save a random 2-layer GPT-2 with a BPE tokenizer trained on `CORPUS` as an HF dir."""
    import transformers as tf

    from editor.knowledge.tokenizer import train_tokenizer

    tok = train_tokenizer(CORPUS, 300, bos=True)
    torch.manual_seed(seed)
    config = tf.GPT2Config(
        n_embd=hidden,
        n_layer=2,
        n_head=4,
        n_positions=64,
        vocab_size=len(tok),
        bos_token_id=0,
        eos_token_id=0,
        initializer_range=0.2,
    )
    model = tf.GPT2LMHeadModel(config)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


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
