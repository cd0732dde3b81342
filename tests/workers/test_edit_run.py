"""The default editing method on the tiny knowledge model through the edit runner, prepared
as the service prepares it: edits land and revert exactly."""

from __future__ import annotations

import pytest

from editor.loading import load_model, state_checksum
from editor.methods import default_method
from kg.importers.evoke import evoke_cases
from workers.edit_run import probes_for, run_edits, select_known_edits

pytestmark = pytest.mark.slow


@pytest.fixture
def prepared(tiny_model_dir, tiny_graph, tiny_facts, evoke_paths, tiny_cases, prepare_tiny):
    """Return model, tokenizer, edits, probes and the prepared default method."""
    model, tok = load_model(tiny_model_dir)
    cases = evoke_cases(*evoke_paths, limit=tiny_cases)
    edits = select_known_edits(model, tok, cases, 4)
    assert len(edits) >= 3, "the tiny model should know several EVOKE edit subjects"
    probes = [probes_for(tiny_graph, tok, r, batch=edits) for r in edits]
    return model, tok, edits, probes, prepare_tiny(default_method("edit"), model, tok)


def test_independent_edits_flip_the_rewrite_and_restore_the_weights(prepared):
    model, tok, edits, probes, ready = prepared
    before = state_checksum(model)
    run = run_edits(model, tok, edits, probes, ready, mode="independent")
    assert state_checksum(model) == before
    rates = run.rates()
    assert rates["rewrite"]["before"] == 0.0
    assert rates["rewrite"]["after"] >= 0.75
    assert rates["paraphrase"]["after"] > rates["paraphrase"]["before"]
    assert set(run.mean_timings()) >= {"key", "v_star", "solve", "total"}


def test_sequential_edits_revert_bit_for_bit(prepared):
    model, tok, edits, probes, ready = prepared
    before = state_checksum(model)
    run = run_edits(model, tok, edits, probes, ready, mode="sequential")
    assert len(run.deltas) == len(edits)
    assert state_checksum(model) != before
    for delta in reversed(run.deltas):
        delta.revert(model)
    assert state_checksum(model) == before


def test_unknown_mode_is_refused(tiny_model_dir):
    with pytest.raises(ValueError, match="mode"):
        run_edits(None, None, [], [], None, mode="parallel")
