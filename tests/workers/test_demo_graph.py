"""The demo's graph: the synthetic world on a clone without data, EVOKE when it is there."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import pytest
from data_sets import data_set_or_skip

from workers.demo_graph import EVOKE, SYNTHETIC, demo_graph
from workers.settings import Settings


def _settings(tmp_path, data_dir) -> Settings:
    return Settings(var_dir=tmp_path / "var", data_dir=data_dir)


def test_without_data_the_demo_uses_the_synthetic_world(tmp_path):
    settings = _settings(tmp_path, tmp_path / "no-data")
    graph = demo_graph(settings, n_people=40)
    assert graph.source == SYNTHETIC and graph.summary is not None
    assert graph.summary.facts == len(graph.facts) > 150
    assert "synthetic world" in graph.describe() and "KGEDIT_DATA_DIR" in graph.describe()
    objects = defaultdict(set)
    for f in graph.facts:
        objects[f.relation].add(f.object)
    subjects = [c.subject for c in graph.cases]
    assert len(graph.cases) >= 40 and len(set(subjects)) == len(subjects)
    for case in graph.cases:
        assert case.target_new != case.target_true
        assert case.target_new in objects[case.relation]  # the model can learn to say it
        assert "{}" in case.prompt
    again = demo_graph(settings, n_people=40)  # the filled store is reused, same edits
    assert again.summary is None and again.cases == graph.cases
    assert str(len(graph.facts)) in again.describe()


def test_with_evoke_the_demo_uses_it(tmp_path):
    folder = data_set_or_skip("evoke")
    graph = demo_graph(_settings(tmp_path, folder.parent), n_cases=5)
    assert graph.source == EVOKE and graph.summary is not None
    assert graph.summary.cases_main == 5
    assert graph.cases and all(c.request_id.startswith("evoke-") for c in graph.cases)
    known = {f.object for f in graph.facts}
    assert all(c.target_new in known for c in graph.cases)


@pytest.mark.slow
def test_a_model_trained_on_the_synthetic_world_knows_demo_edits(tmp_path):
    from editor.knowledge.presets import get_preset
    from editor.loading import load_model
    from workers.edit_run import select_known_edits
    from workers.graph_models import train_or_reuse

    graph = demo_graph(_settings(tmp_path, tmp_path / "no-data"), n_people=40)
    cache = Path(os.environ.get("KGEDIT_TEST_CACHE", Path(__file__).parents[2] / "var/test-cache"))
    model_dir, _ = train_or_reuse(graph.facts, get_preset("tiny"), cache / "models")
    model, tok = load_model(model_dir)
    known = select_known_edits(model, tok, graph.cases, 10)
    assert len(known) >= 5, f"the tiny model knows {len(known)} of {len(graph.cases)} edits"
