"""The worker's warm models: an LRU bounded by memory, moving between versions in place."""

from __future__ import annotations

from jobs_helpers import job_settings, random_model_dir  # noqa: F401

from editor.loading import load_model
from workers.db import get_database
from workers.jobs.warm import WarmModels, module_bytes
from workers.ledger import register_model


def test_least_recently_used_models_go_first(job_settings, random_model_dir):  # noqa: F811
    for name in ("a", "b", "c"):
        register_model(name, random_model_dir)
    size = module_bytes(load_model(random_model_dir)[0])
    warm = WarmModels(max_bytes=int(2.5 * size))
    db = get_database()
    first = warm.get(db, "a")
    warm.get(db, "b")
    assert warm.names() == ["a", "b"] and warm.total_bytes() <= warm.max_bytes
    assert warm.get(db, "a") is first  # a hit: loaded once, now most recently used
    warm.get(db, "c")
    assert warm.names() == ["a", "c"]  # b was the least recently used
    assert warm.total_bytes() <= warm.max_bytes

    tight = WarmModels(max_bytes=size // 2)  # one model alone exceeds the bound: it stays
    tight.get(db, "a")
    tight.get(db, "b")
    assert tight.names() == ["b"]
    tight.drop("b")
    assert tight.names() == []
