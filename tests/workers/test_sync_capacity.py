"""The capacity-aware choice of a batch's method and its reason: single edits, a backlog, the
budget reached, a name the model cannot produce, a reviewer's method, forgetting."""

from __future__ import annotations

from jobs_helpers import job_settings, random_model_dir  # noqa: F401

from editor.methods import get, names
from workers.db import AgreementSnapshotRow, utcnow
from workers.ledger import register_model
from workers.ledger.registry import db_of
from workers.settings import Settings
from workers.sync.capacity import (
    BATCHED,
    CHAIN,
    NAMED,
    SINGLE,
    TEACH,
    Budget,
    budget_reason,
    choose,
    sayable_objects,
    unsayable,
)

CHAIN_EDIT = ["rome", "memit", "alphaedit", "ft", "consolidate"]


def _choose(n: int, **kw):
    args = {"named": False, "budget": None, "cannot_say": [], "backlog": 8, **kw}
    index, choice = choose("edit", CHAIN_EDIT, n, **args)
    assert CHAIN_EDIT[index] == choice.method
    return choice


def test_a_single_edit_goes_to_a_single_edit_method() -> None:
    choice = _choose(1)
    assert choice.role == SINGLE and not get(choice.method).batched
    assert "1 edit(s)" in choice.reason and "backlog of 8" in choice.reason


def test_a_backlog_goes_to_a_batched_locate_and_edit_method() -> None:
    choice = _choose(12)
    entry = get(choice.method)
    assert choice.role == BATCHED and entry.batched and not entry.teaches
    assert "backlog of 12 edits (≥ 8)" in choice.reason
    assert _choose(7).role == SINGLE  # one below the backlog


def test_the_budget_reached_sends_any_batch_to_a_teaching_method() -> None:
    settings = Settings(sync_consolidation_edits=100)
    assert budget_reason(Budget(5, 99, 10.0, 0.9), settings) is None
    reason = budget_reason(Budget(7, 100, 10.0, 0.9), settings)
    assert reason is not None and "100 edits" in reason
    for n in (1, 12):
        choice = _choose(n, budget=reason)
        assert choice.role == TEACH and get(choice.method).teaches and choice.reason == reason


def test_norm_and_agreement_budgets_and_their_off_switch() -> None:
    norm = Settings(sync_consolidation_edits=0, sync_consolidation_norm=50.0)
    assert budget_reason(Budget(9, 999, 49.0, None), norm) is None
    assert "Σ‖Δ‖ = 51.0" in (budget_reason(Budget(9, 999, 51.0, None), norm) or "")
    floor = Settings(sync_consolidation_edits=0, sync_consolidation_agreement=0.9)
    assert budget_reason(Budget(1, 1, 1.0, None), floor) is None  # no sync check yet
    assert budget_reason(Budget(1, 1, 1.0, 0.95), floor) is None
    assert "85.0%" in (budget_reason(Budget(1, 1, 1.0, 0.85), floor) or "")


def test_a_name_the_model_cannot_produce_goes_to_a_teaching_method() -> None:
    assert unsayable(["e1", "e9", None], {"e1", "e2"}) == ["e9"]
    assert unsayable(["e9"], None) == []  # no sync check: no claim either way
    choice = _choose(1, cannot_say=["e9"])
    assert choice.role == TEACH and "e9" in choice.reason


def test_the_reviewer_and_forgetting_keep_the_chain() -> None:
    index, choice = choose(
        "edit", ["memit", *CHAIN_EDIT], 1, named=True, budget="b", cannot_say=["x"], backlog=8
    )
    assert (index, choice.role) == (0, NAMED)
    forget = names("unlearn")
    index, choice = choose(
        "unlearn", forget, 30, named=False, budget=None, cannot_say=[], backlog=8
    )
    assert (index, choice.role) == (0, CHAIN)


def test_without_a_teaching_method_in_the_chain_the_next_choice_applies() -> None:
    index, choice = choose(
        "edit", ["rome", "memit"], 12, named=False, budget="b", cannot_say=[], backlog=8
    )
    assert choice.role == BATCHED and choice.method == "memit" and index == 1


def test_sayable_objects_come_from_the_models_latest_sync_check(
    job_settings,  # noqa: F811
    random_model_dir,  # noqa: F811
) -> None:
    register_model("m", random_model_dir)
    db = db_of(job_settings)
    with db.session() as session:
        assert sayable_objects(session, "m") is None  # no check: no measurement
        # [subject, relation, object, exact, answer, answer id, probability]
        observations = {
            "f1": ["s", "r1", "e1", True, "One", "e1", 0.9],
            "f2": ["s", "r2", "e2", False, "Three", "e3", 0.3],
            "f3": ["s", "r3", "e4", False, "gibberish", None, 0.01],
        }
        session.add(
            AgreementSnapshotRow(
                model_name="m", version_id=1, graph_url="g", graph_version=1,
                observations=observations, created_at=utcnow(),
            )
        )  # fmt: skip
    with db.session() as session:
        sayable = sayable_objects(session, "m")
    assert sayable == {"e1", "e3"}  # recalled exactly, or given as an answer
    assert unsayable(["e1", "e3", "e4"], sayable) == ["e4"]


def test_a_target_the_head_cannot_say_leads_the_batch_to_teaching(
    job_settings,  # noqa: F811
    random_model_dir,  # noqa: F811
    monkeypatch,
) -> None:
    from contracts.types import EditRequest
    from kg.planner import Batch, Plan, PlannedRequest
    from workers.sync import loop

    register_model("m", random_model_dir)
    request = EditRequest("Ann", "{} was born in", "Quornvale", request_id="r0")
    planned = PlannedRequest("r0", "edit", request, (), ("cs",), ("e-ann",), "born", None, "e-q")
    result = Plan((Batch(0, "edit", (planned,)),), (), (), ("cs",), 1)
    said = {"warn": []}
    monkeypatch.setattr(loop, "target_warnings", lambda spec, settings: said["warn"])
    ((chain, payload, choice),) = loop._specs(result, "m", {}, job_settings)
    assert choice.role == SINGLE and payload["method"] == chain[0].method == choice.method
    said["warn"] = [{"kind": "unsayable_target", "target": "Quornvale", "request_id": "r0"}]
    ((chain, payload, choice),) = loop._specs(result, "m", {}, job_settings)
    assert choice.role == TEACH and get(payload["method"]).teaches
    assert "Quornvale" in choice.reason and chain[0].method == choice.method
    assert len(chain) > 1  # the configured chain stays behind it as fallbacks
