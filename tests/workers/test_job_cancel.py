"""Cancelling a runaway job: a v* optimisation configured to run for hours stops within
seconds of the cancel, the job ends `cancelled`, and its committed deltas are rolled back.

The first request converges at once (the model already gives its answer); the second one (a long
target of unrelated words) cannot, so its 10,000 v* steps would run for hours on any model
if the loop never looked at the job's cancel flag.
"""

from __future__ import annotations

import threading
import time

import pytest
from jobs_helpers import job_settings  # noqa: F401

from editor.loading import load_model
from kg.importers.evoke import evoke_cases
from workers.db import get_database
from workers.edit_run import select_known_edits
from workers.jobs import cancel_job, get_job, submit_job
from workers.jobs.runner import RunContext, execute_job
from workers.ledger import list_versions, register_model
from workers.ledger.checksums import ledger_checksum, param_hashes

RUNAWAY = " ".join(["Tokyo Paris London speaks located"] * 6)


def _head_checksum(model: str) -> str:
    return next(v for v in list_versions(model) if v.is_head).checksum


@pytest.mark.slow  # the tiny knowledge model, a job run on a thread for seconds
def test_a_runaway_job_is_cancelled_within_seconds(
    job_settings,  # noqa: F811
    tiny_model_dir,
    tiny_graph,
    evoke_paths,
    tiny_cases,
):
    model, tok = load_model(tiny_model_dir)
    known = select_known_edits(model, tok, evoke_cases(*evoke_paths, limit=tiny_cases), 1)[0]
    register_model("tiny", tiny_model_dir, graph_url=tiny_graph.url)
    base = _head_checksum("tiny")
    requests = [  # the model already answers the first one: its loss is below the stop at once
        {"subject": known.subject, "prompt": known.prompt, "target_new": known.target_true},
        {"subject": known.subject, "prompt": known.prompt, "target_new": RUNAWAY},
    ]
    hparams = {
        "v_num_grad_steps": 10_000,
        "v_loss_stop": 3.0,
        "mom2_n_samples": 20,
        "context_template_length_params": [],
    }
    job = submit_job(
        {"model": "tiny", "method": "rome", "requests": requests, "hparams": hparams}, enqueue=False
    )
    committed = threading.Event()
    ctx = RunContext.create(job_settings, after_step=lambda job_id, step: committed.set())
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(execute_job(job.id, ctx)))
    worker.start()
    deadline = time.monotonic() + 300
    while not committed.wait(0.5):
        assert worker.is_alive() and time.monotonic() < deadline, get_job(job.id)
    time.sleep(2.0)  # well inside the second request's v* loop
    assert worker.is_alive() and get_job(job.id).state == "running"
    asked = time.monotonic()
    cancel_job(job.id)
    worker.join(timeout=30)
    freed = time.monotonic() - asked
    assert not worker.is_alive() and freed < 5.0, freed
    info = get_job(job.id)
    assert outcome[0].status == "cancelled" and info.state == "cancelled", info
    assert info.steps_done == 1 and "1 delta(s) rolled back" in info.message
    assert _head_checksum("tiny") == base
    warm = ctx.warm.get(get_database(), "tiny")
    assert ledger_checksum(param_hashes(warm.model)) == base
