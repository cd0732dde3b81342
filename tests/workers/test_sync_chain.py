"""Method chains of the sync loop and the unverified end of a job, without a model."""

from __future__ import annotations

import pytest

from workers.errors import InvalidInputError
from workers.jobs import gate
from workers.jobs.dispatch import default_chain
from workers.jobs.states import ALLOWED, TERMINAL, JobState
from workers.settings import Settings
from workers.sync.loop import method_chain, parse_step

S = JobState


def test_steps_parse_overrides_as_json():
    step = parse_step("rome@v_num_grad_steps=200@v_lr=0.1", "edit")
    assert (step.method, step.hparams) == ("rome", {"v_num_grad_steps": 200, "v_lr": 0.1})
    assert step.label == "rome@v_lr=0.1@v_num_grad_steps=200"
    for bad in ("rome@v_lr", "rome@=1", "nope", "rocr"):
        with pytest.raises(InvalidInputError):
            parse_step(bad, "edit")


def test_the_chain_starts_with_the_reviewers_method(tmp_path):
    settings = Settings(var_dir=tmp_path)
    default = [s.method for s in method_chain("edit", None, settings)]
    assert default == list(default_chain("edit")) and len(default) >= 2
    chain = [s.method for s in method_chain("edit", default[1], settings)]
    assert chain[0] == default[1] and sorted(chain) == sorted(default)
    custom = Settings(var_dir=tmp_path, sync_edit_chain=["memit", "rome@v_lr=0.2"])
    assert [s.label for s in method_chain("edit", None, custom)] == ["memit", "rome@v_lr=0.2"]
    assert [s.method for s in method_chain("unlearn", None, settings)] == list(
        default_chain("unlearn")
    )


def test_unverified_is_final_and_only_after_the_edit_ran():
    assert S.UNVERIFIED in TERMINAL and not ALLOWED[S.UNVERIFIED]
    assert {s for s in S if S.UNVERIFIED in ALLOWED[s]} == {S.RUNNING, S.AUDITING}
    assert S.SUCCEEDED not in ALLOWED[S.RUNNING]  # success needs the audit


def test_a_gate_that_measured_nothing_checked_nothing():
    from contracts.types import Probe
    from editor.probe_scoring import ProbeScore
    from workers.audit.stats import Threshold

    probes = [Probe("p", "x", "paraphrase", meta={"change": "c"})]
    score = [ProbeScore(True, True, -0.1)]
    verdict = gate.evaluate(probes, score, score, [Threshold("rewrite", min_after=0.9)])
    assert verdict["passed"] and verdict["checked"] == 0
    verdict = gate.evaluate(probes, score, score, [Threshold("paraphrase", min_after=0.5)])
    assert verdict["checked"] == 1


def test_a_change_set_that_adds_its_own_concept_is_planned_after_approval(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kg"))
    from geo_graph import build

    from kg import curation
    from kg.planner import plan
    from kg.store.sql import SqlGraphStore
    from workers.sync.loop import preview

    store = SqlGraphStore(f"sqlite:///{tmp_path / 'geo.sqlite'}")
    build(store)
    settings = Settings(var_dir=tmp_path)
    ops = [
        {"kind": "add_concept", "payload": {"id": "c:spike", "name": "Spike Hughes"}},
        {"kind": "mark_forget", "payload": {"concept": "c:spike"}},
    ]
    cs = curation.create_change_set(store, "alice", "gdpr", ops)
    assert preview(store, cs, ["m"], {}, settings) is None  # checked once it is applied
    curation.propose(store, cs.id, who="alice")
    approved = curation.approve(store, cs.id, reviewer="rita")
    (batch,) = plan(store, [approved]).batches  # once applied, it plans
    assert batch.kind == "unlearn"
