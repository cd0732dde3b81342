"""The console's jobs and audits: the progress the jobs page's script follows (the jobs
route, its roles), and an audit asked for from the audits page (the audit route, CSRF)."""

from __future__ import annotations

from conftest import add_model, assert_labelled, csrf_of

from api.keys import Role
from workers.db import JobRow, get_database
from workers.jobs import service
from workers.jobs.states import JobState, transition


def _queued_job(app) -> str:
    """Record one queued edit job on the ledger-row model `small` (not sent); return its id."""
    spec = {
        "model": "small",
        "method": "rome",
        "requests": [
            {"subject": "Imogen Stallard", "prompt": "{} was born in", "target_new": "York"}
        ],
    }
    return service.submit_job(spec, settings=app.state.settings, enqueue=False).id


def _move(app, job_id: str, state: JobState, progress: float) -> None:
    """Move a job to `state` with `progress`, as a worker does."""
    with get_database(app.state.settings.metadata_db_url).session() as session:
        row = session.get(JobRow, job_id)
        transition(session, row, state, message=f"now {state.value}")
        row.progress = progress


def test_the_jobs_page_and_its_progress_follow_the_job(console_app, signed_in):
    add_model(console_app, "small", follows=True)
    operator = signed_in(Role.OPERATOR)
    r = operator.get("/ui/jobs/progress")
    assert r.status_code == 200 and r.json() == {"active": False, "jobs": []}
    assert "data-poll" not in operator.get("/ui/jobs").text
    job_id = _queued_job(console_app)
    html = operator.get("/ui/jobs").text
    assert 'data-poll="/ui/jobs/progress"' in html and f'id="job-{job_id}"' in html
    assert '<noscript><meta http-equiv="refresh"' in html  # without the script: reloads
    (row,) = operator.get("/ui/jobs/progress").json()["jobs"]
    assert row == {
        "id": job_id,
        "state": "queued",
        "progress": 0.0,
        "version": None,
        "message": "queued",
    }
    _move(console_app, job_id, JobState.PLANNING, 0.0)
    _move(console_app, job_id, JobState.RUNNING, 0.4)
    seen = operator.get("/ui/jobs/progress").json()
    assert seen["active"] and seen["jobs"][0]["state"] == "running"
    assert seen["jobs"][0]["progress"] == 0.4 and seen["jobs"][0]["message"] == "now running"
    _move(console_app, job_id, JobState.CANCELLED, 0.4)
    seen = operator.get("/ui/jobs/progress").json()
    assert not seen["active"] and seen["jobs"][0]["state"] == "cancelled"
    assert "data-poll" not in operator.get("/ui/jobs").text
    # the jobs route's readers, as in the API
    assert signed_in(Role.CURATOR).get("/ui/jobs/progress").status_code == 200
    assert signed_in(Role.ADMIN).get("/ui/jobs/progress").status_code == 403


def test_an_auditor_asks_for_an_audit(console_app, signed_in):
    ids = add_model(console_app, "small", follows=True)
    auditor = signed_in(Role.AUDITOR)
    html = auditor.get("/ui/audits").text
    assert "Run an audit" in html and '<option value="small" selected>' in html
    assert_labelled(html)
    data = {"csrf": csrf_of(html), "model": "small", "sample_size": "30"}
    assert auditor.post("/ui/audits", data={**data, "csrf": "forged"}).status_code == 403
    r = auditor.post("/ui/audits", data=data, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/audits/")
    page = auditor.get(r.headers["location"]).text
    assert "queued" in page and f"version {ids[-1]}" in page and "30 facts sampled" in page
    assert '<meta http-equiv="refresh" content="3">' in page
    assert r.headers["location"].rsplit("/", 1)[1] in auditor.get("/ui/audits").text
    for bad, why in (("x", "whole number"), ("0", "not valid"), ("", "whole number")):
        r = auditor.post("/ui/audits", data={**data, "sample_size": bad})
        assert r.status_code == 422 and why in r.text, (bad, r.text)
    r = auditor.post("/ui/audits", data={**data, "model": "nope"})
    assert r.status_code == 404
    curator = signed_in(Role.CURATOR)
    assert curator.get("/ui/audits").status_code == 403
    r = curator.post("/ui/audits", data={**data, "csrf": csrf_of(curator.get("/ui/search").text)})
    assert r.status_code == 403
