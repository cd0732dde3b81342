"""Authentication and roles: every route but health refuses a missing key and a wrong role."""

from __future__ import annotations

import re

import pytest

from api.keys import KeyStore, Role, split_key

PUBLIC = {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def _operations(client):
    """Yield (method, concrete path, required roles) of every operation in the schema."""
    spec = client.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            concrete = re.sub(r"\{[^}]*id\}", "00000001", path)
            concrete = re.sub(r"\{[^}]+\}", "x", concrete)
            yield method.upper(), concrete, path, op.get("x-required-roles")


def test_every_route_refuses_missing_key_and_wrong_role(client, as_role):
    seen = 0
    for method, path, template, required in _operations(client):
        if template in PUBLIC:
            continue
        assert required, f"{method} {template} declares no roles"
        seen += 1
        body = {} if method in {"POST", "PUT", "PATCH"} else None
        r = client.request(method, path, json=body)
        assert r.status_code == 401, (method, template, r.status_code, r.text)
        assert r.json()["error"]["code"] == "unauthorized"
        r = client.request(method, path, json=body, headers={"X-API-Key": "kge_00000000_nope"})
        assert r.status_code == 401, (method, template)
        outsiders = [role for role in Role if role.value not in required]
        assert outsiders, f"{method} {template} admits every role"
        for role in outsiders:
            r = client.request(method, path, json=body, headers=as_role(role))
            assert r.status_code == 403, (method, template, role, r.status_code, r.text)
            assert r.json()["error"]["code"] == "forbidden"
    assert seen >= 10


def test_public_routes_need_no_key(client):
    assert client.get("/healthz").json()["status"] == "ok"
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["ready"] is True


def test_bearer_token_works_like_the_header(client, role_keys):
    headers = {"Authorization": f"Bearer {role_keys[Role.AUDITOR]}"}
    assert client.get("/v1/graph/entities", headers=headers).status_code == 200


def test_keys_are_stored_hashed_and_revocable(client, api_app, as_role):
    r = client.post("/v1/keys", json={"name": "bob", "role": "curator"}, headers=as_role("admin"))
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    key_id, secret = split_key(key)
    with api_app.state.keys.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT secret_sha256 FROM api_keys").scalars().all()
    assert secret not in stored and all(len(h) == 64 for h in stored)
    listed = client.get("/v1/keys", headers=as_role("admin")).json()
    assert all("key" not in k for k in listed)
    assert client.get("/v1/graph/facts", headers={"X-API-Key": key}).status_code == 200
    assert client.delete(f"/v1/keys/{key_id}", headers=as_role("admin")).status_code == 200
    assert client.get("/v1/graph/facts", headers={"X-API-Key": key}).status_code == 401
    assert client.delete("/v1/keys/0badc0de", headers=as_role("admin")).status_code == 404


def test_tampered_key_is_refused(tmp_path):
    keys = KeyStore(f"sqlite:///{tmp_path / 'meta.sqlite'}")
    key, _ = keys.create("eve", Role.ADMIN)
    assert keys.authenticate(key) is not None
    assert keys.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert keys.authenticate("") is None and keys.authenticate("kge_x_y") is None
    with pytest.raises(ValueError):
        keys.create("  ", Role.ADMIN)
    with pytest.raises(ValueError):
        keys.create("x", "superuser")


def test_readiness_names_the_dependency_that_is_down(tmp_path):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from kg.store.sql import SqlGraphStore
    from workers.settings import Settings

    settings = Settings(
        var_dir=tmp_path / "var",
        metadata_url=f"sqlite:///{tmp_path / 'meta.sqlite'}",
        broker_url="redis://127.0.0.1:1/0",  # nothing listens on port 1
    )
    r = TestClient(create_app(settings, store=SqlGraphStore("sqlite://"))).get("/readyz")
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["database"] == "ok" and checks["graph"] == "ok" and checks["broker"] != "ok"
