"""The job runner in-process on the tiny knowledge model: ROME batches through the ledger.

Covers the audit gate (pass and roll back), idempotent redelivery (a final job, a held job,
a job resumed after a crash mid-run), cancel of a running job and the transient-error retry.
The crash test with real worker processes is in test_job_worker.py.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter

import pytest
import torch
from jobs_helpers import checked, job_settings  # noqa: F401

from editor.loading import load_model
from kg.importers.evoke import evoke_cases
from kg.probes import edit_probes
from workers.db import VersionRow, get_database
from workers.edit_run import select_known_edits
from workers.errors import TransientJobError
from workers.jobs import cancel_job, get_job, submit_job
from workers.jobs.codec import to_plain
from workers.jobs.lease import HOST
from workers.jobs.runner import RunContext, backoff_seconds, execute_job
from workers.ledger import get_model, list_versions, load_version, register_model
from workers.ledger.checksums import ledger_checksum, param_hashes

pytestmark = pytest.mark.slow


class SimulatedCrash(BaseException):
    """Stands in for SIGKILL inside one process: no handler of the runner sees it."""


@pytest.fixture(scope="module")
def tiny_edits(tiny_model_dir, tiny_graph, evoke_paths, tiny_cases):
    """Four EVOKE edits the tiny model knows, with their graph-derived probes."""
    model, tok = load_model(tiny_model_dir)
    edits = select_known_edits(model, tok, evoke_cases(*evoke_paths, limit=tiny_cases), 4)
    assert len(edits) == 4
    probes = [p for r in edits for p in edit_probes(tiny_graph, r)]
    return edits, probes


@pytest.fixture
def tiny(job_settings, tiny_model_dir, tiny_graph):  # noqa: F811
    """The tiny model registered as `tiny` (and `tiny-ref`, for uninterrupted reference runs)."""
    threads = torch.get_num_threads()
    register_model("tiny", tiny_model_dir, graph_url=tiny_graph.url)
    register_model("tiny-ref", tiny_model_dir, graph_url=tiny_graph.url)
    yield job_settings
    torch.set_num_threads(threads)


def _payload(model, edits, probes=(), **extra):
    payload = {"model": model, "method": "rome", "requests": [to_plain(r) for r in edits]}
    if not probes:
        return checked({**payload, **extra})
    return {**payload, "probes": [to_plain(p) for p in probes], **extra}


def _stand_in() -> subprocess.Popen:
    """A live local process whose id a simulated worker borrows (kill it to 'lose' it)."""
    return subprocess.Popen(["sleep", "600"])


def _head_checksum(model: str) -> str:
    return next(v for v in list_versions(model) if v.is_head).checksum


# The tiny model (0.27 M parameters) takes sequential edits less cleanly than the `small`
# one, so the passing job carries a gate fitted to it; the failing one keeps the default.
TINY_GATE = [
    {"group": "rewrite", "min_after": 0.5},
    {"group": "neighbour", "max_drop": 0.25},
    {"group": "same_subject", "max_drop": 0.25},
]


def test_a_job_edits_audits_and_succeeds(tiny, tiny_edits):
    edits, probes = tiny_edits
    job = submit_job(_payload("tiny", edits[:3], probes, thresholds=TINY_GATE), enqueue=False)
    ctx = RunContext.create(tiny)
    assert execute_job(job.id, ctx).status == "succeeded"
    info = get_job(job.id)
    states = [t.to_state for t in info.transitions]
    assert states == ["queued", "planning", "running", "auditing", "succeeded"]
    assert info.progress == 1.0 and info.steps_done == 3 and info.attempts == 1
    gate = info.result["gate"]
    assert gate["passed"] and {g["group"] for g in gate["groups"]} >= {"rewrite", "neighbour"}
    rewrite = next(g for g in gate["groups"] if g["group"] == "rewrite")
    assert rewrite["before"] == 0.0 and rewrite["after"] >= 0.5
    versions = [v for v in list_versions("tiny") if v.job_id == job.id]
    assert [v.request_ids for v in versions] == [(r.request_id,) for r in edits[:3]]
    assert get_model("tiny").head_version_id == info.result_version_id == versions[-1].id
    # the warm weights are the ledger's head, and a cold verified load agrees
    warm = ctx.warm.get(get_database(), "tiny")
    assert ledger_checksum(param_hashes(warm.model)) == versions[-1].checksum
    lm, _, _ = load_version("tiny")
    assert ledger_checksum(param_hashes(lm)) == versions[-1].checksum
    # redelivery of a finished job does nothing
    assert execute_job(job.id, ctx).status == "skipped"
    assert len(list_versions("tiny")) == 4 and get_job(job.id).attempts == 1


def test_a_missed_gate_rolls_the_job_back(tiny, tiny_edits):
    edits, probes = tiny_edits
    base = _head_checksum("tiny")
    # one v* step cannot make the new object win: rewrite stays below the default 0.9
    payload = _payload("tiny", edits[:2], probes, hparams={"v_num_grad_steps": 1})
    job = submit_job(payload, enqueue=False)
    ctx = RunContext.create(tiny)
    assert execute_job(job.id, ctx).status == "rolled_back"
    info = get_job(job.id)
    assert [t.to_state for t in info.transitions][-2:] == ["auditing", "rolled_back"]
    assert "audit gate failed (rewrite: after" in info.message
    failing = info.result["gate"]["failing"]
    assert failing[0]["group"] == "rewrite" and failing[0]["after"] < 0.9
    assert len(info.result["rolled_back_versions"]) == 2
    assert _head_checksum("tiny") == base
    assert {v.status for v in list_versions("tiny") if v.job_id == job.id} == {"discarded"}
    warm = ctx.warm.get(get_database(), "tiny")
    assert ledger_checksum(param_hashes(warm.model)) == base


def test_redelivery_after_a_crash_resumes_without_repeating_a_delta(tiny, tiny_edits):
    edits, _ = tiny_edits
    reference = submit_job(_payload("tiny-ref", edits), enqueue=False)
    assert execute_job(reference.id, RunContext.create(tiny)).status == "succeeded"

    job = submit_job(_payload("tiny", edits), enqueue=False)
    seen = []

    def crash_after_second(job_id: str, step: int) -> None:
        if step == 0:  # a duplicate delivery while the owner lives backs off
            seen.append(execute_job(job_id, RunContext.create(tiny)).detail)
        if step == 1:
            raise SimulatedCrash

    stand_in = _stand_in()
    doomed = RunContext.create(
        tiny, worker_id=f"{HOST}:{stand_in.pid}", after_step=crash_after_second
    )
    with pytest.raises(SimulatedCrash):
        execute_job(job.id, doomed)
    assert seen == ["held"]
    stand_in.kill()
    stand_in.wait()
    mid = get_job(job.id)
    assert mid.state == "running" and mid.steps_done == 2
    committed = {v.id for v in list_versions("tiny") if v.job_id == job.id}

    assert execute_job(job.id, RunContext.create(tiny)).status == "succeeded"
    info = get_job(job.id)
    assert info.attempts == 2 and "resumed on" in info.transitions[-3].message
    assert [t.to_state for t in info.transitions[-2:]] == ["auditing", "succeeded"]
    ours = [v for v in list_versions("tiny") if v.job_id == job.id]
    assert committed < {v.id for v in ours} and len(ours) == 4
    assert Counter(r for v in ours for r in v.request_ids) == Counter(r.request_id for r in edits)
    assert _head_checksum("tiny") == _head_checksum("tiny-ref")


def test_cancel_of_a_running_job_rolls_back_its_deltas(tiny, tiny_edits):
    edits, _ = tiny_edits
    base = _head_checksum("tiny")
    job = submit_job(_payload("tiny", edits[:3]), enqueue=False)
    ctx = RunContext.create(tiny, after_step=lambda job_id, step: cancel_job(job_id))
    assert execute_job(job.id, ctx).status == "cancelled"
    info = get_job(job.id)
    assert info.state == "cancelled" and info.steps_done == 1
    assert [t.to_state for t in info.transitions] == ["queued", "planning", "running", "cancelled"]
    assert "1 delta(s) rolled back" in info.message
    assert _head_checksum("tiny") == base
    warm = ctx.warm.get(get_database(), "tiny")
    assert ledger_checksum(param_hashes(warm.model)) == base


def test_transient_errors_retry_with_backoff_and_resume(tiny, tiny_edits):
    edits, _ = tiny_edits
    job = submit_job(_payload("tiny", edits[:2]), enqueue=False)

    def flaky(job_id: str, step: int) -> None:
        if step == 0 and get_job(job_id).retries == 0:
            raise TransientJobError("database briefly unreachable")

    ctx = RunContext.create(tiny, after_step=flaky)
    outcome = execute_job(job.id, ctx)
    assert outcome.status == "retry" and 1.0 <= outcome.countdown <= 1.25
    mid = get_job(job.id)
    assert mid.state == "queued" and mid.retries == 1 and "retry 1/5" in mid.message
    first = [v.id for v in list_versions("tiny") if v.job_id == job.id]
    assert len(first) == 1
    assert execute_job(job.id, ctx).status == "succeeded"
    ours = [v.id for v in list_versions("tiny") if v.job_id == job.id]
    assert ours[0] == first[0] and len(ours) == 2
    states = [t.to_state for t in get_job(job.id).transitions]
    assert states == [
        "queued", "planning", "running", "queued", "planning", "running", "auditing", "succeeded"
    ]  # fmt: skip


def test_backoff_grows_and_is_capped():
    for n, base in [(1, 1), (2, 2), (3, 4), (4, 8), (10, 512)]:
        for _ in range(50):
            assert base <= backoff_seconds(n, 600) <= 1.25 * base
    assert 30 <= backoff_seconds(20, 30) <= 37.5


def test_step_rows_are_unique_per_job_run(tiny, tiny_edits):
    edits, _ = tiny_edits
    job = submit_job(_payload("tiny", edits[:1]), enqueue=False)
    execute_job(job.id, RunContext.create(tiny))
    with get_database().session() as session:
        row = session.query(VersionRow).filter_by(job_id=job.id).one()
        clone = VersionRow(
            model_name="tiny",
            parent_id=row.id,
            depth=row.depth + 1,
            checksum=row.checksum,
            job_id=job.id,
            job_run=row.job_run,
            step=row.step,
            step_index=row.step_index,
        )
        session.add(clone)
        with pytest.raises(Exception, match="UNIQUE"):
            session.flush()
        session.rollback()
    assert os.environ.get("KGEDIT_THREADS") == "1"


@pytest.mark.parametrize("method", ["rocr", "npo"])
def test_unlearn_job_runs_with_its_resources(tiny, tiny_graph, method):
    """An unlearn job dispatches to the shared registry and gets its method's resources."""
    from kg.concepts import unlearn_request
    from kg.types import Concept

    subject = tiny_graph.list_facts(limit=1)[0].subject
    others = [e.id for e in tiny_graph.list_entities(limit=50) if e.id != subject]
    concept = Concept("c-unlearn", tiny_graph.get_entity(subject).name, (), redirect_to=others[0])
    request = unlearn_request(tiny_graph, concept, n_retain=8)
    payload = {
        "model": "tiny",
        "method": method,
        "kind": "unlearn",
        "requests": [to_plain(request)],
        "hparams": {"epochs": 1} if method == "npo" else {},
        "thresholds": [{"group": "retain", "max_drop": 1.0}],  # dispatch, not quality
    }
    job = submit_job(payload, enqueue=False)
    execute_job(job.id, RunContext.create(tiny))
    done = get_job(job.id)
    assert done.state == "succeeded", done.error
    versions = list_versions("tiny")
    assert [v.method for v in versions if v.on_head_chain][-1] == method
    if method == "rocr":
        stats = list((tiny.cache_dir / "stats").glob("*"))
        assert stats, "ROCR's null-space projector needs the layer statistics"
