"""The audit end to end on the tiny knowledge model: a known edit moves the probes it should,
a no-op moves none, unlearning probes are gated, and the report validates against its schema."""

from __future__ import annotations

import copy
from collections import Counter

import jsonschema
import pytest
import torch

from contracts.types import UnlearnRequest
from editor.delta import Delta
from editor.loading import load_model, state_checksum
from editor.methods.rome import apply_rome
from kg.importers.evoke import evoke_cases
from workers.audit.run import AuditConfig, audit_edits, audit_unlearning
from workers.audit.schema import SCHEMA_VERSION, validate_report
from workers.audit.stats import Threshold, check, cluster_bootstrap
from workers.edit_run import select_known_edits

CONFIG = AuditConfig(sample_size=300, bootstrap=200)


@pytest.fixture(scope="module")
def edited(tiny_model_dir, tiny_graph, tiny_facts, evoke_paths, tiny_cases, prepare_tiny):
    """The tiny model, its first known EVOKE edit, the ROME delta (reverted) and the report."""
    model, tok = load_model(tiny_model_dir)
    cases = evoke_cases(*evoke_paths, limit=tiny_cases)
    edit = select_known_edits(model, tok, cases, 1)[0]
    ready = prepare_tiny("rome", model, tok)
    hp, sm, ctx = ready.hparams, ready.second_moment, ready.context_templates
    base = state_checksum(model)
    delta, _ = apply_rome(model, tok, edit, hp, sm, context_templates=ctx)
    report = audit_edits(model, tok, tiny_graph, [edit], [delta], applied=True, config=CONFIG)
    delta.revert(model)
    assert state_checksum(model) == base
    return model, tok, edit, delta, report


def _moved(report: dict) -> list[dict]:
    return [p for p in report["probes"] if p["before"]["success"] != p["after"]["success"]]


@pytest.mark.slow
def test_a_known_edit_moves_the_probes_it_should(edited):
    report = edited[-1]
    probes = report["probes"]
    (rewrite,) = [p for p in probes if p["kind"] == "rewrite"]
    assert (rewrite["before"]["success"], rewrite["after"]["success"]) == (False, True)
    form = next(p for p in probes if p["kind"] == "form_cloze")
    assert form["prompt"] == rewrite["prompt"] and form["after"]["success"] is True
    # other subjects of the edited relation keep their objects
    neighbours = [p for p in probes if p["kind"] == "neighbour"]
    assert neighbours and not [p for p in neighbours if p in _moved(report)]
    # the edit's own fact moves in most wordings, untouched facts almost never
    moved = Counter(p["kind"] for p in _moved(report))
    paraphrases = sum(1 for p in probes if p["kind"] == "paraphrase")
    assert moved["paraphrase"] >= paraphrases / 2
    assert moved["sample"] <= 0.05 * report["sample"]["n"]
    assert (
        report["sample"]["flipped"]["lost"] + report["sample"]["flipped"]["gained"]
        == (moved["sample"])
    )
    groups = {g["group"]: g for g in report["groups"]}
    assert groups["rewrite"]["status"] == "pass" and groups["neighbour"]["status"] == "pass"
    assert report["trend"][-1]["metrics"]["rewrite"] == 1.0


@pytest.mark.slow
def test_a_zero_delta_moves_nothing(edited, tiny_graph):
    model, tok, edit, delta, _ = edited
    zero = Delta.from_dense("noop", {delta.entries[0].param: torch.zeros(delta.entries[0].shape)})
    zero.apply(model)
    report = audit_edits(model, tok, tiny_graph, [edit], [zero], applied=True, config=CONFIG)
    zero.revert(model)
    assert _moved(report) == []
    for p in report["probes"]:
        assert p["before"] == p["after"], p["prompt"]
    assert report["sample"]["shift"]["mean"] == 0.0


@pytest.mark.slow
def test_report_validates_and_the_schema_catches_breakage(edited):
    report = edited[-1]
    validate_report(report)
    assert report["schema_version"] == SCHEMA_VERSION
    assert {c["id"] for c in report["changes"]} == {edited[2].request_id}
    for broken in (
        {k: v for k, v in report.items() if k != "groups"},
        {**report, "schema_version": "2.0.0"},
        {**report, "kind": "surgery"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate_report(broken)
    bad = copy.deepcopy(report)
    bad["groups"][0]["success"]["after"]["value"] = "high"
    with pytest.raises(jsonschema.ValidationError):
        validate_report(bad)


@pytest.mark.slow
def test_unlearning_audit_reports_forget_and_retain(tiny_model_dir, tiny_graph):
    model, tok = load_model(tiny_model_dir)
    request = UnlearnRequest("Spike Hughes", request_id="forget-spike")
    report = audit_unlearning(model, tok, tiny_graph, [request], [], config=CONFIG)
    validate_report(report)
    groups = {g["group"]: g for g in report["groups"]}
    assert report["kind"] == "unlearn"
    assert "form_cloze:forget" in groups and "retain" in groups
    # nothing was unlearned: the model still knows the fact, so the forget gate fails
    assert groups["form_cloze:forget"]["status"] == "fail"
    assert not report["passed"]


def test_cluster_bootstrap_and_thresholds():
    values = [1.0] * 8 + [0.0] * 2
    est = cluster_bootstrap(values, [f"c{i // 2}" for i in range(10)], n_boot=500, seed=1)
    assert est.value == pytest.approx(0.8) and est.lo <= 0.8 <= est.hi and est.lo < est.hi
    assert cluster_bootstrap(values, ["one"] * 10).lo == pytest.approx(0.8)
    assert cluster_bootstrap([], []).value is None
    again = cluster_bootstrap(values, [f"c{i // 2}" for i in range(10)], n_boot=500, seed=1)
    assert again == est
    metric = {
        "before": {"value": 0.95, "lo": 0.9, "hi": 1.0},
        "after": {"value": 0.7, "lo": 0.6, "hi": 0.8},
        "delta": {"value": -0.25, "lo": -0.35, "hi": -0.15},
    }
    drop = check(Threshold("neighbour", max_drop=0.1), metric)
    assert drop["status"] == "fail" and drop["significant"]
    assert check(Threshold("rewrite", min_after=0.5), metric)["status"] == "pass"
    relative = check(Threshold("fluency", max_drop=0.5, relative=True), metric)
    assert relative["status"] == "pass"
    assert check(Threshold("x", min_after=0.9), {"after": {"value": None}})["status"] == "info"
