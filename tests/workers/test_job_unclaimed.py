"""Queued jobs nobody claims: found in the job table, logged once by a worker that skips
their model, and shown by `kgedit jobs show`."""

from __future__ import annotations

import logging

from jobs_helpers import edit_payload, job_settings, random_model_dir  # noqa: F401
from typer.testing import CliRunner

from workers.db import JobRow, get_database
from workers.jobs import submit_job
from workers.jobs.lease import unclaimed
from workers.ledger import register_model

EDIT = [("Ada Lovelace", "{} was born in", "Tokyo")]


def test_a_queued_job_nobody_claims_is_reported_once(job_settings, random_model_dir, caplog):  # noqa: F811
    from workers.tasks import warn_unclaimed  # its Celery app on this test's broker

    register_model("lonely", random_model_dir)
    job = submit_job(edit_payload("lonely", EDIT))
    unsent = submit_job(edit_payload("lonely", EDIT), enqueue=False)
    db = get_database(job_settings.metadata_db_url)
    assert unclaimed(db, 3600.0) == []  # not waited long enough yet
    found = unclaimed(db, 0.0)
    assert [(j, m) for j, m, _ in found] == [(job.id, "lonely")]  # unsent: recovery's business
    assert unclaimed(db, 0.0, job_id=unsent.id) == []

    quick = job_settings.model_copy(update={"job_lease_seconds": 0.001})
    warned: set[str] = set()
    with caplog.at_level(logging.WARNING, logger="workers.tasks"):
        assert warn_unclaimed(quick, warned) == [job.id]
        assert warn_unclaimed(quick, warned) == []  # once per job
    lines = [r.getMessage() for r in caplog.records if "no worker has claimed" in r.getMessage()]
    assert len(lines) == 1 and job.id in lines[0] and "--model lonely" in lines[0]

    from api.cli import app

    shown = CliRunner().invoke(app, ["jobs", "show", job.id])
    assert shown.exit_code == 0 and "no worker has claimed it" not in shown.output  # 60 s lease

    with db.session() as session:  # another job of the model runs: this one waits its turn
        session.get(JobRow, unsent.id).state = "running"
    assert unclaimed(db, 0.0) == []
    assert warn_unclaimed(quick, warned) == [] and warned == set()


def test_jobs_show_says_when_no_worker_claimed_the_job(
    job_settings,  # noqa: F811
    random_model_dir,  # noqa: F811
    monkeypatch,
):
    from api.cli import app
    from workers.settings import get_settings

    register_model("lonely", random_model_dir)
    job = submit_job(edit_payload("lonely", EDIT))
    monkeypatch.setenv("KGEDIT_JOB_LEASE_SECONDS", "0.001")
    get_settings.cache_clear()
    shown = CliRunner().invoke(app, ["jobs", "show", job.id])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "no worker has claimed it" in text and "serving lonely" in text
