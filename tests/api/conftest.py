"""API fixtures: an app on in-memory stores, a test client, and one key per role."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import Role
from kg.store.sql import SqlGraphStore
from workers.settings import Settings


@pytest.fixture
def api_settings(tmp_path) -> Settings:
    """Settings whose var dir is a temporary directory."""
    return Settings(var_dir=tmp_path / "var", metadata_url=f"sqlite:///{tmp_path / 'meta.sqlite'}")


@pytest.fixture
def api_app(api_settings):
    """The API app on an in-memory graph store and a temporary metadata database."""
    return create_app(api_settings, store=SqlGraphStore("sqlite://"))


@pytest.fixture
def client(api_app):
    """A test client of the app."""
    with TestClient(api_app) as c:
        yield c


@pytest.fixture
def role_keys(api_app) -> dict[Role, str]:
    """One valid key per role."""
    return {role: api_app.state.keys.create(f"test {role.value}", role)[0] for role in Role}


@pytest.fixture
def as_role(role_keys):
    """Return the headers that authenticate as one role."""
    return lambda role: {"X-API-Key": role_keys[Role(role)]}


@pytest.fixture
def curated(client, as_role):
    """A small graph created through the API: Paris, France, Europe and two facts."""
    h = as_role("curator")
    for eid, name in [("paris", "Paris"), ("france", "France"), ("europe", "Europe")]:
        r = client.post(
            "/v1/graph/entities", json={"id": eid, "name": name, "reason": "t"}, headers=h
        )
        assert r.status_code == 201, r.text
    rel = {
        "id": "capital_of",
        "label": "capital of",
        "templates": {
            "cloze": ["{} is the capital of"],
            "question": ["What is {} the capital of?"],
        },
        "functional": True,
        "reason": "t",
    }
    assert client.post("/v1/graph/relations", json=rel, headers=h).status_code == 201
    rel2 = {
        "id": "part_of",
        "label": "part of",
        "templates": {"cloze": ["{} is part of"]},
        "reason": "t",
    }
    assert client.post("/v1/graph/relations", json=rel2, headers=h).status_code == 201
    facts = [("paris", "capital_of", "france"), ("france", "part_of", "europe")]
    for s, r_, o in facts:
        body = {"subject": s, "relation": r_, "object": o, "reason": "t"}
        assert client.post("/v1/graph/facts", json=body, headers=h).status_code == 201
    return h
