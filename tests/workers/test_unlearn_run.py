"""Unlearning graph concepts on the tiny knowledge model: every unlearning method prepared as
the service prepares it, forms, exact revert, grown forget sets and the extrapolation sweep."""

from __future__ import annotations

import pytest

from editor.loading import load_model, state_checksum
from editor.methods import get, names
from editor.prepare import corpus_statements, prepare
from kg.concepts import unlearn_request
from kg.unlearn_forms import FormConfig
from kg.view import GraphView
from workers.unlearn_run import (
    MethodResult,
    bench_concepts,
    choose_alpha,
    grown_request,
    run_extrapolation_sweep,
    run_unlearning,
    with_anchor,
)

FORMS = FormConfig(n_facts=3, n_neighbours=2)


def test_choose_alpha_keeps_ninety_percent_of_retain():
    def result(forget: float, retain: float) -> MethodResult:
        return MethodResult("uipe", {"forget_rate": forget, "retain_rate": retain})

    results = {0.0: result(0.5, 0.95), 0.5: result(0.7, 0.90), 1.0: result(0.9, 0.80)}
    assert choose_alpha(results, base_retain=1.0) == 0.5
    assert choose_alpha(results, base_retain=1.0, keep=0.8) == 1.0
    assert choose_alpha({0.0: result(0.1, 0.2)}, base_retain=1.0) is None


def _prepared(method, model, tok, facts, tmp_path, **overrides):
    """The method prepared on the tiny model: its knowledge rows (traced layer 0), then the
    tiny settings its module declares and a short second-moment corpus."""
    fields = {**get(method).tiny, **overrides}
    if get(method).needs_second_moment:
        fields["mom2_n_samples"] = 2000
    return prepare(
        method, model, tok, corpus_statements(facts), model_key="tiny", cache_dir=tmp_path,
        overrides=fields, trace_layer=0, facts=facts,
    )  # fmt: skip


@pytest.mark.slow
def test_every_unlearning_method_on_graph_concepts(
    tiny_model_dir, tiny_graph, tiny_facts, tmp_path
):
    model, tok = load_model(tiny_model_dir)
    before = state_checksum(model)
    (concept,) = bench_concepts(tiny_graph, 1)
    concept = with_anchor(tiny_graph, concept)
    assert concept.redirect_to and concept.redirect_to not in concept.entities
    for method in names("unlearn"):
        ready = _prepared(method, model, tok, tiny_facts, tmp_path)
        result = run_unlearning(model, tok, tiny_graph, [concept], ready, forms=FORMS)
        assert state_checksum(model) == before, method
        assert set(result.rates["forms"]) >= {"cloze", "question", "mc", "tf", "spelled"}
        assert result.rates["forms"]["cloze"]["forget_known"] >= 1
        assert result.seconds and result.seconds[0] > 0 and result.method == method
    request = unlearn_request(GraphView(tiny_graph), concept)
    grown, reasons = grown_request(GraphView(tiny_graph), concept, request)
    assert len(grown.forget_texts) >= len(request.forget_texts) and len(reasons) >= 1
    base = next(n for n in names("unlearn") if not get(n).needs_second_moment)
    ready = _prepared(base, model, tok, tiny_facts, tmp_path)
    sweep = run_extrapolation_sweep(model, tok, tiny_graph, [concept], ready, (0.0, 0.5))
    assert set(sweep) == {0.0, 0.5} and sweep[0.5].rates["forget_rate"] is not None
    assert state_checksum(model) == before


@pytest.mark.slow
def test_concept_bench_loads_the_model_and_anchors_the_concepts(
    tiny_model_dir, tiny_graph, tiny_facts, monkeypatch
):
    from workers import unlearn_run

    monkeypatch.setattr(
        unlearn_run,
        "prepare_graph_model",
        lambda limit, preset: (tiny_graph, tiny_facts, tiny_model_dir),
    )
    bench = unlearn_run.concept_bench(40, "tiny", 2)
    assert bench.store is tiny_graph and bench.facts is tiny_facts
    assert bench.base_sha == state_checksum(load_model(tiny_model_dir)[0])
    assert [c.id for c in bench.concepts] == [c.id for c in bench_concepts(tiny_graph, 2)]
    assert all(c.redirect_to for c in bench.concepts)
