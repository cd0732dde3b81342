"""Unlearning graph concepts on the tiny knowledge model: ROCR and NPO, forms, exact revert."""

from __future__ import annotations

import pytest

from editor.loading import load_model, state_checksum
from editor.methods.gradient_unlearning import GradUnlearnHyperParams
from kg.concepts import unlearn_request
from kg.unlearn_forms import FormConfig
from kg.view import GraphView
from workers.methods import LayerStats, corpus_statements, method_hparams
from workers.unlearn_run import (
    MethodResult,
    bench_concepts,
    choose_alpha,
    grown_request,
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


@pytest.mark.slow
def test_rocr_and_npo_on_graph_concepts(tiny_model_dir, tiny_graph, tiny_facts, tmp_path):
    model, tok = load_model(tiny_model_dir)
    before = state_checksum(model)
    (concept,) = bench_concepts(tiny_graph, 1)
    concept = with_anchor(tiny_graph, concept)
    assert concept.redirect_to and concept.redirect_to not in concept.entities
    stats = LayerStats(model, tok, corpus_statements(tiny_facts), "tiny", 2000, tmp_path)
    hp = method_hparams("rocr", model, 0)
    rocr = run_unlearning(
        model, tok, tiny_graph, [concept], "rocr", hp, {"second_moment": stats}, forms=FORMS
    )
    assert state_checksum(model) == before
    assert set(rocr.rates["forms"]) >= {"cloze", "question", "mc", "tf", "spelled"}
    assert rocr.seconds and rocr.seconds[0] > 0
    npo = GradUnlearnHyperParams(lr=1e-3, epochs=2, batch_size=4, warmup_epochs=0.0)
    result = run_unlearning(model, tok, tiny_graph, [concept], "npo", npo, forms=FORMS)
    assert result.rates["forms"]["cloze"]["forget_known"] >= 1
    assert state_checksum(model) == before
    request = unlearn_request(GraphView(tiny_graph), concept)
    grown, reasons = grown_request(GraphView(tiny_graph), concept, request)
    assert len(grown.forget_texts) >= len(request.forget_texts) and len(reasons) >= 1
    uipe = run_unlearning(
        model, tok, tiny_graph, [concept], "npo", npo, forms=FORMS, grow=True, uipe_alpha=0.5
    )
    assert uipe.rates["forget_rate"] is not None
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
