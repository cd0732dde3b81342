"""Hardening: bad input is a clear 4xx, refused requests change nothing, keys and authorship.

Each test reproduces one defect of the hardening issue against the app on a temporary
metadata database with a registered random model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workers"))
from jobs_helpers import random_model_dir  # noqa: F401

from workers.jobs import list_jobs
from workers.jobs.codec import to_plain
from workers.jobs.spec import parse_spec
from workers.ledger import register_model

EDIT = {
    "type": "edit",
    "subject": "Ada Lovelace",
    "prompt": "{} was born in",
    "target_new": "Tokyo",
}
UNLEARN = {"type": "unlearn", "concept": "Mount Fuji"}
HUGE = 9223372036854775808


@pytest.fixture
def model(api_settings, random_model_dir):  # noqa: F811
    """A registered random model named `tiny`."""
    return register_model("tiny", random_model_dir, settings=api_settings).name


def _upload(client, as_role, lines: list[dict], **query) -> object:
    body = "\n".join(json.dumps(x) for x in lines).encode()
    return client.post("/v1/jobs/upload", params=query, content=body, headers=as_role("operator"))


@pytest.mark.parametrize(
    "query",
    [
        {"model": "bad name"},
        {"model": "a/b"},
        {"model": "tiny", "edit_method": ""},
        {"model": "tiny", "edit_method": "bad name"},
    ],
)
def test_upload_bad_query_value_is_422(client, as_role, model, api_settings, query):
    r = _upload(client, as_role, [EDIT], **query)
    assert r.status_code == 422, r.text
    assert list_jobs(settings=api_settings) == []


@pytest.mark.parametrize("unlearn_method", ["bogus", ""])
def test_upload_is_all_or_nothing(client, as_role, model, api_settings, unlearn_method):
    r = _upload(client, as_role, [EDIT, UNLEARN], model=model, unlearn_method=unlearn_method)
    assert r.status_code == 422, r.text
    assert list_jobs(settings=api_settings) == []


@pytest.mark.parametrize("value", [HUGE, 2147483648, -HUGE])
def test_huge_version_ids_are_422(client, as_role, model, value):
    r = client.post(
        f"/v1/models/{model}/rollback", json={"version_id": value}, headers=as_role("operator")
    )
    assert r.status_code == 422, r.text
    r = client.post(
        "/v1/audits", json={"model": model, "version_id": value}, headers=as_role("operator")
    )
    assert r.status_code == 422, r.text
    r = client.get(
        f"/v1/models/{model}/diff", params={"from": value, "to": 1}, headers=as_role("operator")
    )
    assert r.status_code == 422, r.text


@pytest.mark.parametrize("path", ["/tmp/a\x00b", "/tmp/a\u202eb"])
def test_model_path_with_nul_or_bidi_is_422(client, as_role, path):
    r = client.post("/v1/models", json={"name": "m", "path": path}, headers=as_role("operator"))
    assert r.status_code == 422, r.text


def _job(model: str, **extra) -> dict:
    return {"model": model, "method": "rome", "kind": "edit", "requests": [EDIT], **extra}


@pytest.mark.parametrize(
    "hparams, field",
    [
        ({"v_num_grad_steps": "x"}, "v_num_grad_steps"),
        ({"clamp_norm_factor": None}, "clamp_norm_factor"),
        ({"v_num_grad_steps": -5}, "v_num_grad_steps"),
        ({"v_num_grad_steps": 1_000_000_000}, "v_num_grad_steps"),
        ({"v_lr": float("inf")}, "v_lr"),
        ({"v_lr": -0.5}, "v_lr"),
        ({"layer": -1}, "layer"),
    ],
)
def test_hparams_are_checked_by_type_and_range(
    client, as_role, model, api_settings, hparams, field
):
    body = json.dumps(_job(model, hparams=hparams))
    r = client.post(
        "/v1/jobs",
        content=body,
        headers={**as_role("operator"), "Content-Type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert field in r.json()["error"]["message"]
    assert list_jobs(settings=api_settings) == []


def test_good_hparams_are_accepted(client, as_role, model):
    r = client.post(
        "/v1/jobs",
        json=_job(model, hparams={"v_num_grad_steps": 3, "v_lr": 0.1}),
        headers=as_role("operator"),
    )
    assert r.status_code == 201, r.text


def test_the_last_admin_key_cannot_be_revoked(client, api_app, as_role, role_keys):
    admin = api_app.state.keys.authenticate(role_keys["admin"])
    r = client.delete(f"/v1/keys/{admin.key_id}", headers=as_role("admin"))
    assert r.status_code == 409, r.text
    assert client.get("/v1/keys", headers=as_role("admin")).status_code == 200
    _, other = api_app.state.keys.create("second admin", "admin")
    r = client.delete(f"/v1/keys/{other.key_id}", headers=as_role("admin"))
    assert r.status_code == 200, r.text
    r = client.delete(f"/v1/keys/{admin.key_id}", headers=as_role("admin"))
    assert r.status_code == 409, r.text


def test_authorship_is_the_key_not_its_name(client, api_app, as_role):
    twin, _ = api_app.state.keys.create("test curator", "curator")  # same name, other key
    ops = [{"kind": "add_concept", "payload": {"id": "forget:ada", "name": "Ada"}}]
    r = client.post(
        "/v1/changesets", json={"reason": "add", "operations": ops}, headers=as_role("curator")
    )
    assert r.status_code == 201, r.text
    cs = r.json()["id"]
    r = client.post(f"/v1/changesets/{cs}/propose", headers={"X-API-Key": twin})
    assert r.status_code == 403, r.text
    r = client.post(f"/v1/changesets/{cs}/propose", headers=as_role("curator"))
    assert r.status_code == 200, r.text


def test_the_api_takes_the_payload_the_cli_takes(client, as_role, model):
    neighbour = {"prompt": "Paris is in", "expected": "France", "kind": "neighbour"}
    payload = {
        "model": model,
        "method": "rome",
        "requests": [{**{k: v for k, v in EDIT.items() if k != "type"}, "neighbours": [neighbour]}],
        "probes": [{"prompt": "Ada Lovelace was born in", "expected": "Tokyo", "kind": "rewrite"}],
    }
    plain = to_plain(parse_spec(payload))  # what `kgedit jobs submit` reads
    assert "subgraph" in plain["requests"][0] and "meta" in plain["probes"][0]
    r = client.post("/v1/jobs", json=plain, headers=as_role("operator"))
    assert r.status_code == 201, r.text


def _model_app(tmp_path, model_dir: Path, **settings):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from kg.store.sql import SqlGraphStore
    from workers.settings import Settings

    s = Settings(var_dir=tmp_path / "v", model_roots=[model_dir.parent], **settings)
    app = create_app(s, store=SqlGraphStore("sqlite://"))
    key, _ = app.state.keys.create("op", "operator")
    return TestClient(app), {"X-API-Key": key}, s


def test_graph_url_at_registration_is_restricted(tmp_path, random_model_dir):  # noqa: F811
    other = f"sqlite:///{tmp_path / 'allowed.sqlite'}"
    client, headers, settings = _model_app(tmp_path, random_model_dir, graph_urls=[other])
    path = str(random_model_dir)
    for url in (f"sqlite:///{tmp_path / 'elsewhere.sqlite'}", "postgresql://db.example/x"):
        r = client.post(
            "/v1/models", json={"name": "m", "path": path, "graph_url": url}, headers=headers
        )
        assert r.status_code == 422, r.text
    assert not (tmp_path / "elsewhere.sqlite").exists()
    for i, url in enumerate((settings.graph_store_url, other, None)):
        r = client.post(
            "/v1/models", json={"name": f"m{i}", "path": path, "graph_url": url}, headers=headers
        )
        assert r.status_code == 201, r.text


def test_a_replayed_idempotency_key_answers_200(client, as_role, model, api_settings):
    headers = {**as_role("operator"), "Idempotency-Key": "batch-7"}
    first = client.post("/v1/jobs", json=_job(model), headers=headers)
    assert first.status_code == 201, first.text
    again = client.post("/v1/jobs", json=_job(model), headers=headers)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert len(list_jobs(settings=api_settings)) == 1


def test_a_broker_outage_says_the_job_exists(tmp_path, random_model_dir):  # noqa: F811
    client, headers, settings = _model_app(
        tmp_path, random_model_dir, broker_url="redis://127.0.0.1:1/0"
    )
    register_model("tiny", random_model_dir, settings=settings)
    r = client.post("/v1/jobs", json=_job("tiny"), headers=headers)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["state"] == "queued" and "broker" in job["warning"]
    assert [j.id for j in list_jobs(settings=settings)] == [job["id"]]
    r = client.post(
        "/v1/jobs/upload", params={"model": "tiny"}, content=json.dumps(EDIT), headers=headers
    )
    assert r.status_code == 202 and r.json()[0]["warning"], r.text


@pytest.mark.parametrize("body", ["{not json", "[]", '{"model": 1}'])
def test_the_key_is_checked_before_the_body(client, body):
    r = client.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 401, r.text


def test_readiness_details_need_a_key(client, api_app, as_role):
    def down() -> None:
        raise ConnectionError("Error 111 connecting to 10.1.2.3:6379. Connection refused.")

    api_app.state.readiness_checks["broker"] = down
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["broker"] == "unavailable"
    assert "10.1.2.3" not in r.text
    r = client.get("/readyz", headers=as_role("auditor"))
    assert r.status_code == 503 and "10.1.2.3" in r.json()["checks"]["broker"]


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/jobs", {"requests": [{**EDIT, "target_new": "To\x00kyo"}]}),
        ("/v1/jobs", {"requests": [{**EDIT, "subject": "Ada\x07"}]}),
        ("/v1/jobs", {"requests": [{**EDIT, "request_id": "r\u200b1"}]}),
        ("/v1/jobs", {"requests": [{**EDIT, "target_new": "Tokyo\u202e"}]}),
        ("/v1/graph/entities", {"id": "e\u200b1", "name": "Ada", "reason": "r"}),
        ("/v1/graph/entities", {"id": "e1", "name": "Ada\u202egnp.exe", "reason": "r"}),
        ("/v1/graph/entities", {"id": "e1", "name": "Ada", "reason": "why\x00"}),
    ],
)
def test_one_text_policy_for_stored_texts(client, as_role, model, api_settings, path, body):
    role = "operator" if path == "/v1/jobs" else "curator"
    if path == "/v1/jobs":
        body = {**_job(model), **body}
    r = client.post(path, json=body, headers=as_role(role))
    assert r.status_code == 422, r.text
    assert list_jobs(settings=api_settings) == []
    assert client.get("/v1/graph/entities", headers=as_role("curator")).json()["items"] == []


@pytest.mark.parametrize(
    "url", ["/v1/graph/entities/a%00b", "/v1/jobs/x%E2%80%AE", "/v1/jobs?model=a%00b"]
)
def test_control_characters_in_the_url_are_422(client, as_role, url):
    assert client.get(url, headers=as_role("operator")).status_code == 422


def test_public_schemas_are_derived_from_the_service_records(client):
    import dataclasses

    from api.routes.audits import AuditPublic
    from api.schemas.jobs import JobPublic
    from workers.audit.requested import AuditInfo
    from workers.jobs.service import JobInfo
    from workers.jobs.states import JobState

    job_fields = {f.name for f in dataclasses.fields(JobInfo)} - {"run", "worker_id", "enqueued_at"}
    assert set(JobPublic.model_fields) == job_fields | {"warning"}
    assert set(AuditPublic.model_fields) == {f.name for f in dataclasses.fields(AuditInfo)}
    spec = client.get("/openapi.json").json()
    states = spec["components"]["schemas"]["JobState"]["enum"]
    assert states == [s.value for s in JobState]
    params = spec["paths"]["/v1/jobs"]["get"]["parameters"]
    state = next(p for p in params if p["name"] == "state")
    assert "JobState" in json.dumps(state["schema"])


def test_options_lists_every_method_of_a_path(client):
    r = client.options("/v1/keys")
    assert r.status_code == 204 and set(r.headers["allow"].split(", ")) >= {"GET", "POST"}
    r = client.options("/v1/graph/facts/1")
    assert set(r.headers["allow"].split(", ")) >= {"GET", "DELETE"}
    assert client.options("/v1/nothing-here").status_code == 404
