"""Consolidation on the tiny knowledge model: it teaches the edited facts (a new name too),
keeps the untouched ones, reverts bit for bit, and stops at a checkpoint when cancelled."""

from __future__ import annotations

import pytest

from contracts.types import EditRequest, FactText, Probe, ProbeKind
from editor.cancel import RunCancelledError, cancellable
from editor.loading import load_model, state_checksum
from editor.methods import get
from editor.methods.consolidate import ConsolidateHyperParams, edited_facts
from editor.probe_scoring import probe_success
from workers.edit_run import select_known_edits
from workers.graph_edits import graph_edits

FAST = ConsolidateHyperParams(steps=80, lr=5e-4, batch_size=16, edit_share=0.3)


def test_edited_facts_rewrite_the_slot_and_add_missing_ones() -> None:
    facts = [
        FactText("Ann", "born", "Paris", ("{} was born in", "{} comes from")),
        FactText("Bob", "born", "Rome", ("{} was born in",)),
    ]
    requests = [
        EditRequest("Ann", "{} was born in", "Oslo", relation="born"),
        EditRequest("Cid", "{} works for", "Acme", paraphrases=("{} is employed by",)),
    ]
    merged, taught = edited_facts(facts, requests)
    assert [f.object for f in merged] == ["Oslo", "Rome", "Acme"]
    assert merged[0].templates == facts[0].templates  # the graph's own wording is kept
    assert [(f.subject, f.object) for f in taught] == [("Ann", "Oslo"), ("Cid", "Acme")]
    assert taught[1].templates == ("{} works for", "{} is employed by")


def test_bad_settings_are_refused() -> None:
    with pytest.raises(Exception, match="trainable"):
        ConsolidateHyperParams(trainable="attention")
    with pytest.raises(Exception, match="steps"):
        ConsolidateHyperParams(steps=0)


def _probes(model, tok, facts):
    """Three known edits (one made a new name), their rewrite probes and untouched probes."""
    edits = select_known_edits(model, tok, graph_edits(facts, seed=0), 3)
    new_name = EditRequest(
        edits[2].subject, edits[2].prompt, "Quornvale Tesh", edits[2].target_true,
        relation=edits[2].relation, request_id="new-name",
    )  # fmt: skip
    edits = [*edits[:2], new_name]
    edited = {(r.subject, r.relation) for r in edits}
    rewrite = [Probe(r.rendered(), r.target_new, ProbeKind.REWRITE) for r in edits]
    untouched = [
        Probe(f.templates[0].format(f.subject), f.object, ProbeKind.SAME_SUBJECT)
        for f in facts
        if (f.subject, f.relation) not in edited
    ]
    return edits, rewrite, untouched


@pytest.mark.slow
def test_consolidation_teaches_edits_and_keeps_untouched_facts(tiny_model_dir, tiny_facts) -> None:
    model, tok = load_model(tiny_model_dir)
    edits, rewrite, untouched = _probes(model, tok, tiny_facts)
    recall0 = float(probe_success(model, tok, untouched).float().mean())
    assert not probe_success(model, tok, rewrite).any()  # nothing taught yet
    before = state_checksum(model)
    steps = []
    deltas, infos = get("consolidate").apply(
        model, tok, edits, FAST, facts=tiny_facts, on_request=lambda n, total: steps.append(n)
    )
    assert steps == list(range(1, FAST.steps + 1))  # one progress report per step
    taught = probe_success(model, tok, rewrite)
    recall1 = float(probe_success(model, tok, untouched).float().mean())
    assert bool(taught.all()), f"taught {taught.tolist()} (the last is a new name)"
    assert recall1 >= recall0 - 0.1, f"untouched recall {recall0:.3f} → {recall1:.3f}"
    assert len(deltas) == 1 and all(e.kind == "dense" for e in deltas[0].entries)
    assert infos[0]["n_facts"] == len(tiny_facts)  # the edits rewrite slots the graph has
    deltas[0].revert(model)
    assert state_checksum(model) == before


@pytest.mark.slow
def test_cancelling_stops_at_a_checkpoint_and_keeps_the_weights(tiny_model_dir, tiny_facts) -> None:
    model, tok = load_model(tiny_model_dir)
    edits = graph_edits(tiny_facts, seed=0)[:2]
    before = state_checksum(model)
    calls, steps = [], []

    def check() -> None:
        calls.append(1)
        if len(calls) > 3:
            raise RunCancelledError("cancelled")

    with cancellable(check), pytest.raises(RunCancelledError):
        get("consolidate").apply(
            model, tok, edits, FAST, facts=tiny_facts, on_request=lambda n, t: steps.append(n)
        )
    assert steps == [1, 2, 3]  # stopped at the fourth step's checkpoint
    assert state_checksum(model) == before
    assert all(not p.requires_grad or p.grad is None for p in model.parameters())
