"""The console over the sync loop: a change set's life in each model (attempts, methods, jobs,
versions, the gate's failing reasons) and the Replan button, roles and CSRF as the API's."""

from __future__ import annotations

import re

from conftest import add_model, csrf_of, propose_replacement

from api.keys import Role
from workers.sync import loop

LIFECYCLE = [
    {
        "model": "small",
        "state": "failed_in_model",
        "plan": "p1",
        "version_id": None,
        "batches": [
            {
                "batch": 0,
                "kind": "edit",
                "state": "failed_in_model",
                "attempts": [
                    {
                        "attempt": 0,
                        "method": "first-step",
                        "step": "first-step",
                        "chain_length": 2,
                        "job_id": "job-aaa",
                        "job_state": "rolled_back",
                        "version_id": 7,
                        "base_version_id": 1,
                        "message": "gate rolled back",
                        "gate": {
                            "passed": False,
                            "groups": {"rewrite": {"n": 4, "before": 0.0, "after": 0.5}},
                            "failing": ["rewrite: 50% < 90%"],
                        },
                    },
                    {
                        "attempt": 1,
                        "method": "first-step",
                        "step": "second-step",
                        "chain_length": 2,
                        "job_id": "job-bbb",
                        "job_state": "failed",
                        "version_id": None,
                        "base_version_id": 1,
                        "message": "",
                        "gate": None,
                    },
                ],
            }
        ],
    }
]


def _approved(signed_in) -> str:
    """Return the url of the Leeds → York change set, approved graph-only by a reviewer."""
    url = propose_replacement(signed_in(Role.CURATOR))
    reviewer = signed_in(Role.REVIEWER)
    token = csrf_of(reviewer.get(url).text)
    data = {"csrf": token, "decision": "approve", "comment": "ok", "graph_only": "1"}
    assert reviewer.post(url + "/review", data=data).status_code == 200
    return url


def test_the_change_set_page_shows_each_models_attempts(signed_in, monkeypatch):
    url = _approved(signed_in)
    monkeypatch.setattr(loop, "change_set_status", lambda cs_id, settings=None: LIFECYCLE)
    html = signed_in(Role.CURATOR).get(url).text
    assert "In the models" in html and "failed_in_model" in html
    for text in ("first-step", "second-step", "job-aaa", "job-bbb", "rolled_back", "7"):
        assert text in html, text
    assert "rewrite: 50% &lt; 90%" in html  # the gate's failing reason, escaped
    assert 'href="/ui/jobs#job-job-aaa"' in html  # curators read jobs
    assert "1 of 2" in html and "2 of 2" in html
    assert "Replan" not in html  # curators may not replan


def test_a_change_set_planned_on_no_model_says_so(signed_in):
    url = _approved(signed_in)
    assert "Not planned on any model" in signed_in(Role.AUDITOR).get(url).text


def test_replan_follows_the_api_roles_and_needs_csrf(console_app, signed_in):
    url = _approved(signed_in)
    reviewer = signed_in(Role.REVIEWER)
    page = reviewer.get(url).text
    assert 'action="' + url.removeprefix("http://testserver") + '/replan"' in page
    assert reviewer.post(url + "/replan", data={}).status_code == 403  # no CSRF token
    # with its token, the API's replan runs: no model follows this graph, so it says so
    r = reviewer.post(url + "/replan", data={"csrf": csrf_of(page)})
    assert r.status_code == 422 and "no model follows the graph" in r.text
    r = reviewer.post(url + "/replan", data={"csrf": csrf_of(page), "model": "nope"})
    assert r.status_code == 404
    operator = signed_in(Role.OPERATOR)
    assert "Replan" in operator.get(url).text
    curator = signed_in(Role.CURATOR)
    r = curator.post(url + "/replan", data={"csrf": csrf_of(curator.get(url).text)})
    assert r.status_code == 403 and "reviewer" in r.text


def test_replan_of_a_change_set_not_approved_is_refused(signed_in):
    url = propose_replacement(signed_in(Role.CURATOR))
    reviewer = signed_in(Role.REVIEWER)
    page = reviewer.get(url).text
    assert "Replan" not in page
    r = reviewer.post(url + "/replan", data={"csrf": csrf_of(page)})
    assert r.status_code == 409 and "only approved" in r.text


def test_replan_on_a_named_model_queues_a_chain_the_page_then_shows(console_app, signed_in):
    url = _approved(signed_in)
    add_model(console_app, "small", follows=False)
    operator = signed_in(Role.OPERATOR)
    page = operator.get(url).text
    assert "Not planned on any model" in page
    r = operator.post(url + "/replan", data={"csrf": csrf_of(page), "model": "small"})
    assert r.status_code == 200 and "replanned" in r.text and "Jobs queued" in r.text
    page = operator.get(url).text  # the real sync status now: one queued attempt on small
    assert "small · " in page and "1 of " in page and "not measured yet" in page
    job = re.search(r'href="/ui/jobs#job-([^"]+)"', page).group(1)
    assert f'id="job-{job}"' in operator.get("/ui/jobs").text
