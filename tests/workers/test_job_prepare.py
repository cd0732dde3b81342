"""A job's method is prepared by `editor.prepare` on the model's own graph: statistics over
its facts, and the graph's facts for methods whose declared resources draw on them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from jobs_helpers import random_model_dir  # noqa: F401

from editor.loading import load_model
from editor.methods import get, names
from workers.errors import InvalidInputError
from workers.graph_models import graph_facts
from workers.jobs.resources import prepare_job
from workers.settings import Settings


def _warm(model_dir, graph_url: str) -> SimpleNamespace:
    """A warm model at its root version, as the worker's cache holds it."""
    model, tok = load_model(model_dir)
    return SimpleNamespace(
        model=model, tokenizer=tok, meta={}, graph_url=graph_url, weights_sha256="w",
        version_id="root", root_id="root",
    )  # fmt: skip


def test_declared_resources_get_the_models_graph(random_model_dir, tiny_graph, tmp_path):  # noqa: F811
    settings = Settings(var_dir=tmp_path)
    warm = _warm(random_model_dir, tiny_graph.url)
    methods = [n for n in names(None) if get(n).resources is not None]
    assert methods
    cached = []
    for name in methods:
        samples = {"mom2_n_samples": 200} if get(name).needs_second_moment else {}
        spec = SimpleNamespace(method=name, hparams={**get(name).tiny, **samples})
        ready = prepare_job(spec, get(name), warm, None, settings, lambda f, m: None)
        if "cache_dir" in ready.resources:  # the hooks that keep a cache get their own
            assert ready.resources["cache_dir"] == settings.cache_dir / name
            cached.append(name)
        if "facts" in ready.resources:  # before: the runner gave such methods no facts
            assert ready.resources["facts"] == graph_facts(tiny_graph)
    assert cached


def test_a_graph_without_facts_is_refused(random_model_dir, tmp_path):  # noqa: F811
    from kg.store.sql import SqlGraphStore

    empty = SqlGraphStore(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    warm = _warm(random_model_dir, empty.url)
    name = next(n for n in names("edit") if get(n).needs_second_moment)
    spec = SimpleNamespace(method=name, hparams={})
    with pytest.raises(InvalidInputError, match="holds no facts"):
        prepare_job(spec, get(name), warm, None, Settings(var_dir=tmp_path), lambda f, m: None)
