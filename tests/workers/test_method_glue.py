"""Workers glue for every method: graph edits, subgraphs, and batched methods prepared as the
service prepares them, through the edit runner."""

from __future__ import annotations

import pytest

from editor.loading import load_model, state_checksum
from editor.methods import get, names
from workers.edit_run import probes_for, run_edits, select_known_edits
from workers.graph_edits import graph_edits


def test_graph_edits_are_counterfactual_and_distinct(tiny_facts) -> None:
    edits = graph_edits(tiny_facts, seed=1)
    assert edits == graph_edits(tiny_facts, seed=1)  # deterministic
    keys = [(r.subject, r.relation) for r in edits]
    assert len(keys) == len(set(keys)) > 100
    objects = {}
    for f in tiny_facts:
        objects.setdefault(f.relation, set()).add(f.object)
    for r in edits[:50]:
        assert r.target_new != r.target_true and r.target_new in objects[r.relation]
        assert r.target_true in objects[r.relation] and "{}" in r.prompt


LAYER_FIELDS = ("layer", "layers", "mid_layer", "repr_layer")


@pytest.mark.slow
@pytest.mark.parametrize("method", [n for n in names("edit") if get(n).batched])
def test_batched_methods_through_the_edit_runner(
    method, tiny_model_dir, tiny_graph, tiny_facts, evoke_paths, tiny_cases, prepare_tiny
) -> None:
    from kg.importers.evoke import evoke_cases

    model, tok = load_model(tiny_model_dir)
    edits = select_known_edits(model, tok, evoke_cases(*evoke_paths, limit=tiny_cases), 3)
    probes = [probes_for(tiny_graph, tok, r, batch=edits) for r in edits]
    tiny = {k: v for k, v in get(method).tiny.items() if k not in LAYER_FIELDS}
    ready = prepare_tiny(method, model, tok, tiny)  # the tiny settings at the traced layers
    before = state_checksum(model)
    run = run_edits(model, tok, edits, probes, ready, mode="batch")
    assert len(run.deltas) == 1 and run.sequence is not None
    assert run.rates()["rewrite"]["after"] > run.rates()["rewrite"]["before"]
    run.sequence.revert_all()
    assert state_checksum(model) == before


def test_graph_edits_can_keep_one_edit_per_subject(tiny_facts) -> None:
    every = graph_edits(tiny_facts, seed=3)
    distinct = graph_edits(tiny_facts, seed=3, distinct_subjects=True)
    subjects = [r.subject for r in distinct]
    assert len(subjects) == len(set(subjects)) == len({r.subject for r in every})
    assert len(distinct) < len(every)  # the tiny graph has subjects with several facts
    first = {}
    for r in every:
        first.setdefault(r.subject, r)
    assert distinct == list(first.values())  # the first of each subject, in the same order
