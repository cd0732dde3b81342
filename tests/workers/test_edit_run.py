"""ROME on the tiny knowledge model through the edit runner: edits land and revert exactly."""

from __future__ import annotations

import pytest

from editor.context import context_templates
from editor.loading import load_model, state_checksum, weights_sha256
from editor.stats import layer_second_moment
from kg.importers.evoke import evoke_cases
from workers.demo import corpus_statements, rome_hparams_for
from workers.edit_run import probes_for, run_edits, select_known_edits

pytestmark = pytest.mark.slow


@pytest.fixture
def prepared(tiny_model_dir, tiny_graph, tiny_facts, evoke_paths, tiny_cases, tmp_path):
    """Return model, tokenizer, edits, probes, hparams, statistics and context templates."""
    cache = tmp_path
    model, tok = load_model(tiny_model_dir)
    cases = evoke_cases(*evoke_paths, limit=tiny_cases)
    edits = select_known_edits(model, tok, cases, 4)
    assert len(edits) >= 3, "the tiny model should know several EVOKE edit subjects"
    probes = [probes_for(tiny_graph, tok, tiny_facts, r) for r in edits]
    hparams = rome_hparams_for("tiny")
    key = weights_sha256(tiny_model_dir)
    sm = layer_second_moment(
        model, tok, hparams.layer, corpus_statements(tiny_facts), cache_dir=cache, model_key=key
    )
    ctx = context_templates(model, tok, hparams.context_template_length_params, model_key=key)
    return model, tok, edits, probes, hparams, sm, ctx


def test_independent_edits_flip_the_rewrite_and_restore_the_weights(prepared):
    model, tok, edits, probes, hparams, sm, ctx = prepared
    before = state_checksum(model)
    run = run_edits(model, tok, edits, probes, hparams, sm, ctx, mode="independent")
    assert state_checksum(model) == before
    rates = run.rates()
    assert rates["rewrite"]["before"] == 0.0
    assert rates["rewrite"]["after"] >= 0.75
    assert rates["paraphrase"]["after"] > rates["paraphrase"]["before"]
    assert set(run.mean_timings()) >= {"key", "v_star", "solve", "total"}


def test_sequential_edits_revert_bit_for_bit(prepared):
    model, tok, edits, probes, hparams, sm, ctx = prepared
    before = state_checksum(model)
    run = run_edits(model, tok, edits, probes, hparams, sm, ctx, mode="sequential")
    assert len(run.deltas) == len(edits)
    assert state_checksum(model) != before
    for delta in reversed(run.deltas):
        delta.revert(model)
    assert state_checksum(model) == before


def test_unknown_mode_is_refused(tiny_model_dir):
    with pytest.raises(ValueError, match="mode"):
        run_edits(None, None, [], [], None, None, [], mode="parallel")
