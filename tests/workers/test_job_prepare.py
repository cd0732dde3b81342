"""A job's method is prepared by `editor.prepare` on the model's own graph: statistics over
its facts, and the graph's facts for methods whose declared resources draw on them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from jobs_helpers import job_settings, random_model_dir  # noqa: F401

from editor.errors import EditorError
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


def test_the_stats_corpus_setting_replaces_the_graphs_facts(random_model_dir, tmp_path):  # noqa: F811
    from kg.store.sql import SqlGraphStore

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(
        "".join(f"Sentence number {i} about a town and a river.\n" for i in range(60))
    )
    empty = SqlGraphStore(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    warm = _warm(random_model_dir, empty.url)  # no facts: the graph is never read
    name = next(n for n in names("edit") if get(n).needs_second_moment)
    spec = SimpleNamespace(method=name, hparams=dict(get(name).tiny, mom2_n_samples=50))
    settings = Settings(var_dir=tmp_path, stats_corpus=corpus)
    ready = prepare_job(spec, get(name), warm, None, settings, lambda f, m: None)
    assert ready.corpus == {"source": str(corpus), "samples": 50, "available": 60,
                            "sha256": ready.corpus["sha256"]}  # fmt: skip
    missing = Settings(var_dir=tmp_path, stats_corpus=tmp_path / "gone.jsonl")
    with pytest.raises(EditorError, match="statistics corpus not found"):
        prepare_job(spec, get(name), warm, None, missing, lambda f, m: None)


def test_jobs_use_the_calibrated_edit_point(random_model_dir, tiny_graph, job_settings):  # noqa: F811
    from workers.db import ModelRow
    from workers.ledger import register_model
    from workers.ledger.registry import db_of

    register_model("rand", random_model_dir)
    db = db_of(job_settings)
    with db.session() as session:
        session.get(ModelRow, "rand").calibration = {
            "edit_layer": 1, "fact_token": "subject_first", "settings": {"rome": {"v_lr": 0.1}},
        }  # fmt: skip
    warm = _warm(random_model_dir, tiny_graph.url)
    spec = SimpleNamespace(model="rand", method="rome", hparams={"mom2_n_samples": 200})
    ready = prepare_job(spec, get("rome"), warm, db, job_settings, lambda f, m: None)
    assert (ready.hparams.layer, ready.hparams.fact_token, ready.hparams.v_lr) == (
        1, "subject_first", 0.1,
    )  # fmt: skip
    spec.hparams = {"mom2_n_samples": 200, "fact_token": "subject_last"}  # the user's wins
    again = prepare_job(spec, get("rome"), warm, db, job_settings, lambda f, m: None)
    assert (again.hparams.layer, again.hparams.fact_token) == (1, "subject_last")
