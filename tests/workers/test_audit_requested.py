"""Audits requested through the API path (`request_audit` → `execute_audit`) audit the changes
of the version chain: each delta's requests come back from its job, with their probes, groups
and subgraph; the whole-graph sample leaves the changed facts out; the header names the model
and its version. Requests the graph can no longer place are changes without probes, noted."""

from __future__ import annotations

import dataclasses

import pytest
from jobs_helpers import job_settings, tiny  # noqa: F401

from contracts.types import EditRequest, UnlearnRequest
from editor.loading import load_model
from editor.methods import default_method
from kg.importers.evoke import evoke_cases
from kg.probes import ProbeConfig, edit_probes
from kg.view import GraphView
from workers.audit.chain import chain_requests, derive_changes
from workers.audit.html import render_html
from workers.audit.requested import execute_audit, load_report, request_audit
from workers.audit.schema import validate_report
from workers.db import JobRow, VersionRow, get_database
from workers.edit_run import select_known_edits
from workers.jobs import submit_job
from workers.jobs.codec import to_plain
from workers.jobs.runner import RunContext, execute_job
from workers.ledger import get_model, list_versions

TINY_GATE = [
    {"group": "rewrite", "min_after": 0.5},
    {"group": "neighbour", "max_drop": 0.25},
    {"group": "same_subject", "max_drop": 0.25},
]
pytestmark = pytest.mark.slow
SAMPLE = 20_000  # more than the tiny graph's facts: the sample is every fact not excluded


def _edit(model_dir, graph, evoke_paths, n_cases) -> EditRequest:
    """The first EVOKE edit the tiny model knows."""
    model, tok = load_model(model_dir)
    return select_known_edits(model, tok, evoke_cases(*evoke_paths, limit=n_cases), 1)[0]


def _subject_id(graph, edit: EditRequest) -> str:
    return GraphView(graph).pick(edit.subject, edit.relation, "subject")


def test_an_audit_after_a_job_reports_its_change(
    tiny,  # noqa: F811
    tiny_model_dir,
    tiny_graph,
    evoke_paths,
    tiny_cases,
):
    edit = _edit(tiny_model_dir, tiny_graph, evoke_paths, tiny_cases)
    payload = {
        "model": "tiny",
        "method": "rome",
        "requests": [to_plain(edit)],
        "probes": [to_plain(p) for p in edit_probes(tiny_graph, edit)],
        "thresholds": TINY_GATE,
    }
    job = submit_job(payload, enqueue=False)
    assert execute_job(job.id, RunContext.create(tiny)).status == "succeeded"
    (version,) = [v for v in list_versions("tiny") if v.job_id == job.id]
    (request_id,) = version.request_ids
    head = get_model("tiny").head_version_id

    audit = request_audit("tiny", sample_size=SAMPLE, enqueue=False)
    assert execute_audit(audit.id).state == "succeeded"
    report = load_report(audit.id)
    validate_report(report)
    assert report["kind"] == "edit"
    (change,) = report["changes"]
    assert change["id"] == request_id and change["subject"] == edit.subject
    assert change["n_probes"] > 0 and change["subgraph"]["nodes"]
    groups = {g["group"]: g for g in report["groups"]}
    assert groups["rewrite"]["n_changes"] == 1 and groups["paraphrase"]["n"] > 0
    rewrite = groups["rewrite"]["success"]
    assert (rewrite["before"]["value"], rewrite["after"]["value"]) == (0.0, 1.0)
    # the edited subject's facts are not counted as untouched facts
    subject = _subject_id(tiny_graph, edit)
    sample = [p for p in report["probes"] if p["kind"] == "sample"]
    assert sample and report["sample"]["n"] == len(sample)
    assert not [p for p in sample if p["meta"]["fact"].startswith(f"{subject}|")]
    assert report["model"]["name"] == "tiny" and report["model"]["version_id"] == head
    assert report["model"]["deltas"][0]["request_ids"] == [request_id]
    base = report["model"]["base_version_id"]
    assert report["model"]["version_ids"] == [base, head]  # the trend's points, by ledger id
    page = render_html(report)
    assert f"model tiny v{head} (base + 1 delta)" in page and "1 changes" in page
    assert "No changes in this audit" not in page and "<svg" in page

    # the subject leaves the graph (the request now names nobody in it): noted, not fatal
    with get_database().session() as session:
        row = session.get(JobRow, job.id)
        requests = [{**r, "subject": "Nobody At All"} for r in row.payload["requests"]]
        row.payload = {**row.payload, "requests": requests}
    again = request_audit("tiny", sample_size=50, enqueue=False)
    assert execute_audit(again.id).state == "succeeded"
    report = load_report(again.id)
    validate_report(report)
    (change,) = report["changes"]
    assert change["n_probes"] == 0 and "'Nobody At All' is no longer in the graph" in change["note"]
    assert report["notes"] == [f"change {request_id}: {change['note']}"]
    assert "Nobody At All" in render_html(report)


def _version(vid: int, job_id: str | None, request_ids: list[str]) -> VersionRow:
    """An in-memory version row of the chain (only what the chain reader looks at)."""
    return VersionRow(id=vid, job_id=job_id, request_ids=request_ids)


def test_the_chain_recovers_requests_from_jobs_and_derives_mixed_changes(
    tiny,  # noqa: F811
    tiny_model_dir,
    tiny_graph,
    evoke_paths,
    tiny_cases,
):
    view = GraphView(tiny_graph)
    concept = next(f for f in tiny_graph.list_facts()).subject
    name = view.name(concept)
    edit = dataclasses.replace(
        _edit(tiny_model_dir, tiny_graph, evoke_paths, tiny_cases), request_id=None
    )
    gone = dataclasses.replace(edit, subject="Nobody At All")
    edits = submit_job(
        {"model": "tiny", "method": "rome", "requests": [to_plain(edit), to_plain(gone)]},
        enqueue=False,
    )
    forget = submit_job(
        {
            "model": "tiny",
            "method": default_method("unlearn"),
            "kind": "unlearn",
            # the job is only recorded here; the default method needs an anchor to be accepted
            "requests": [to_plain(UnlearnRequest(concept=name, anchor="Somebody Else"))],
        },
        enqueue=False,
    )
    rows = [
        _version(1, None, []),
        _version(2, edits.id, ["r0"]),
        _version(3, edits.id, ["r1"]),
        _version(4, forget.id, ["r0"]),
        _version(5, None, ["x"]),
    ]
    with get_database().session() as session:
        found = chain_requests(session, rows)
    # the two jobs both have an `r0`: every id is qualified with its version
    assert found.base_version_id == 1
    assert found.ids == {2: ["v2:r0"], 3: ["v3:r1"], 4: ["v4:r0"], 5: ["v5:x"]}
    assert [r.request_id for r in found.requests] == ["v2:r0", "v3:r1", "v4:r0"]
    assert found.requests[0].subject == edit.subject
    assert found.notes == ["version 5: request 'x' not audited: no job recorded"]

    changes = derive_changes(view, found.requests, ProbeConfig(fluency=False))
    assert [(c.change_id, c.kind) for c in changes] == [
        ("v2:r0", "edit"),
        ("v3:r1", "edit"),
        ("v4:r0", "unlearn"),
    ]
    placed, unplaced, forgot = changes
    assert placed.probes and placed.subgraph is not None and not placed.note
    assert {p.meta["change"] for p in placed.probes} == {"v2:r0"}
    assert unplaced.probes == [] and "'Nobody At All' is no longer in the graph" in unplaced.note
    assert forgot.probes and forgot.entities["concept"] in view.resolve(name)
    # one job's ids alone stay as they are
    with get_database().session() as session:
        assert chain_requests(session, rows[:3]).ids == {2: ["r0"], 3: ["r1"]}
