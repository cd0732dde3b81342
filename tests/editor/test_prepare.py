"""The preparation pipeline: hyper-parameters from the method's rows and the overrides,
second moments with progress and cancellation, context templates, declared resources."""

from __future__ import annotations

import pytest
from editor_helpers import OBJECTS, SUBJECTS, TEMPLATES

from contracts.types import FactText
from editor.errors import EditorError
from editor.loading import load_model
from editor.methods import default_method, get, method_layers, names
from editor.prepare import LayerStats, corpus_statements, hparams_for, prepare

FACTS = [
    FactText(subject=s, relation=f"r{t}", object=OBJECTS[i % len(OBJECTS)], templates=(tpl,))
    for i, s in enumerate(SUBJECTS)
    for t, tpl in enumerate(TEMPLATES[:2])
]


class CancelledError(Exception):
    """Raised by the test's cancel check."""


def test_default_methods_are_registered_of_their_kind() -> None:
    for kind in ("edit", "unlearn"):
        assert default_method(kind) in names(kind)
    with pytest.raises(EditorError, match="kind must be one of"):
        default_method("forget")


def test_corpus_statements_verbalise_each_template() -> None:
    texts = corpus_statements(FACTS[:2])
    assert texts == [f"{TEMPLATES[0].format(SUBJECTS[0])} {OBJECTS[0]}.",
                     f"{TEMPLATES[1].format(SUBJECTS[0])} {OBJECTS[0]}."]  # fmt: skip


def test_prepare_gives_rows_overrides_statistics_and_templates(model_dirs, corpus, tmp_path):
    model, tok = load_model(model_dirs["gpt2"])
    method = next(n for n in names("edit") if get(n).needs_second_moment and get(n).context)
    heard: list[tuple[float, str]] = []
    ready = prepare(
        method, model, tok, corpus, model_key="k", cache_dir=tmp_path, trace_layer=1,
        overrides={"mom2_n_samples": 40}, progress=lambda f, m: heard.append((f, m)),
    )  # fmt: skip
    assert ready.hparams == hparams_for(
        method, model, trace_layer=1, overrides={"mom2_n_samples": 40}
    )
    assert ready.hparams.mom2_n_samples == 40 and ready.resources["model_key"] == "k"
    for layer in method_layers(ready.hparams):
        assert ready.second_moment(layer).meta["n_samples"] == 40
        assert any(m == f"statistics, layer {layer}" for _, m in heard)
    assert all(0.0 < f <= 1.0 for f, _ in heard)
    assert "{}" in ready.context_templates and list((tmp_path / "stats").iterdir())
    again = prepare(method, model, tok, corpus, model_key="k", cache_dir=tmp_path,
                    trace_layer=1, overrides={"mom2_n_samples": 40})  # fmt: skip
    assert all(again.second_moment(x).from_cache for x in method_layers(again.hparams))


def test_declared_resources_get_the_facts_and_their_own_cache_dir(model_dirs, corpus, tmp_path):
    model, tok = load_model(model_dirs["gpt2"])
    with_hooks = [n for n in names(None) if get(n).resources is not None]
    assert with_hooks
    cached = []
    for method in with_hooks:
        ready = prepare(method, model, tok, corpus, model_key="k", cache_dir=tmp_path,
                        overrides=get(method).tiny, facts=FACTS)  # fmt: skip
        if "cache_dir" in ready.resources:  # the hooks that keep a cache get their own
            assert ready.resources["cache_dir"] == tmp_path / method
            cached.append(method)
        if "facts" in ready.resources:
            assert ready.resources["facts"] == FACTS
    assert cached


def test_cancel_stops_the_statistics_and_an_empty_corpus_is_refused(model_dirs, corpus, tmp_path):
    model, tok = load_model(model_dirs["gpt2"])
    method = next(n for n in names("edit") if get(n).needs_second_moment)

    def cancel() -> None:
        raise CancelledError

    with pytest.raises(CancelledError):
        prepare(method, model, tok, corpus, model_key="k", cache_dir=tmp_path,
                overrides=get(method).tiny,
                cancel=cancel)  # fmt: skip
    assert not (tmp_path / "stats").exists() or not list((tmp_path / "stats").iterdir())
    with pytest.raises(EditorError, match="non-empty corpus"):
        prepare(method, model, tok, [], model_key="k", cache_dir=tmp_path, trace_layer=0)


def test_layer_stats_compute_each_layer_once(model_dirs, corpus, tmp_path):
    model, tok = load_model(model_dirs["gpt2"])
    calls: list[str] = []
    stats = LayerStats(model, tok, corpus, "k", 30, tmp_path, progress=lambda f, m: calls.append(m))
    first = stats(0)
    n = len(calls)
    assert stats(0) is first and len(calls) == n > 0
    assert stats(1).meta["layer"] == 1
