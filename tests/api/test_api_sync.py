"""The sync loop's API without a model: approval checks, graph-only approval, follow,
agreement and replan errors, and who reads jobs."""

from __future__ import annotations

import pytest

from api.keys import Role

REPLACE = {
    "kind": "replace_object",
    "payload": {
        "subject": "paris",
        "relation": "capital_of",
        "object": "france",
        "new_object": "europe",
    },
}


@pytest.fixture
def proposed(client, curated, as_role):
    """A proposed change set replacing one object."""
    r = client.post(
        "/v1/changesets", json={"reason": "r", "operations": [REPLACE]}, headers=curated
    )
    cs = r.json()["id"]
    client.post(f"/v1/changesets/{cs}/propose", headers=curated)
    return cs


def _review(client, as_role, cs, **body):
    return client.post(
        f"/v1/changesets/{cs}/review",
        json={"decision": "approve", **body},
        headers=as_role("reviewer"),
    )


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({}, 422, "no model follows the graph"),
        ({"model": "nobody"}, 404, "nobody"),
        ({"graph_only": True, "model": "nobody"}, 422, "graph_only"),
        ({"graph_only": True, "edit_method": "no-such"}, 422, "no-such"),
        ({"graph_only": True, "edit_method": "rocr"}, 422, "not an edit method"),
        ({"graph_only": True, "unlearn_method": "rome@v_lr"}, 422, "method@field=value"),
    ],
)
def test_an_approval_that_cannot_be_queued_changes_nothing(
    client, api_app, proposed, as_role, body, status, says
):
    version = api_app.state.store.graph_version()
    r = _review(client, as_role, proposed, **body)
    assert r.status_code == status, r.text
    assert says in r.json()["error"]["message"]
    assert api_app.state.store.graph_version() == version
    cs = client.get(f"/v1/changesets/{proposed}", headers=as_role("curator")).json()
    assert cs["state"] == "proposed" and cs["models"] == []


def test_graph_only_approval_queues_nothing_and_says_so(client, api_app, proposed, as_role):
    r = _review(client, as_role, proposed, graph_only=True)
    assert r.status_code == 200, r.text
    assert r.json()["jobs"] == [] and r.json()["change_set"]["state"] == "approved"
    replan = client.post(f"/v1/changesets/{proposed}/replan", json={}, headers=as_role("operator"))
    assert replan.status_code == 422 and "no model follows" in replan.text


def test_replan_needs_an_approved_change_set(client, proposed, as_role):
    r = client.post(f"/v1/changesets/{proposed}/replan", json={}, headers=as_role("reviewer"))
    assert r.status_code == 409
    r = client.post(f"/v1/changesets/{proposed}/replan", json={}, headers=as_role("curator"))
    assert r.status_code == 403


def test_model_routes_refuse_unknown_models_and_bad_scopes(client, curated, as_role):
    reader = as_role("curator")
    assert client.get("/v1/models/ghost/agreement", headers=reader).status_code == 404
    r = client.put("/v1/models/ghost/follow", json={"follow": True}, headers=as_role("operator"))
    assert r.status_code == 404
    r = client.put("/v1/models/ghost/follow", json={"follow": "maybe"}, headers=as_role("operator"))
    assert r.status_code == 422
    r = client.put("/v1/models/ghost/follow", json={"follow": True}, headers=reader)
    assert r.status_code == 403
    bad = client.get("/v1/models/ghost/agreement", params={"version_id": 0}, headers=reader)
    assert bad.status_code == 422


@pytest.mark.parametrize("role", [Role.CURATOR, Role.REVIEWER, Role.OPERATOR, Role.AUDITOR])
def test_every_reader_sees_jobs(client, as_role, role):
    assert client.get("/v1/jobs", headers=as_role(role.value)).status_code == 200
    assert client.get("/v1/jobs/nope", headers=as_role(role.value)).status_code == 404


def test_only_operators_cancel(client, as_role):
    assert client.post("/v1/jobs/nope/cancel", headers=as_role("curator")).status_code == 403
