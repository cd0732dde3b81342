"""Typed change-set operations: OpenAPI says what each kind needs; names stand for ids."""

from __future__ import annotations

import pytest

from kg.types import OperationKind


@pytest.fixture
def people(client, as_role):
    """Imogen Stallard born in Leeds; two entities named "Harrow"; relation "born in"."""
    h = as_role("curator")
    entities = [
        ("name:imogen_stallard", "Imogen Stallard", ["Immy"]),
        ("leeds", "Leeds", []),
        ("york", "York", []),
        ("harrow_town", "Harrow", []),
        ("harrow_school", "Harrow", []),
    ]
    for eid, name, aliases in entities:
        body = {"id": eid, "name": name, "aliases": aliases, "reason": "t"}
        assert client.post("/v1/graph/entities", json=body, headers=h).status_code == 201
    rel = {
        "id": "P19",
        "label": "born in",
        "templates": {"cloze": ["{} was born in"]},
        "functional": True,
        "reason": "t",
    }
    assert client.post("/v1/graph/relations", json=rel, headers=h).status_code == 201
    fact = {"subject": "name:imogen_stallard", "relation": "P19", "object": "leeds", "reason": "t"}
    assert client.post("/v1/graph/facts", json=fact, headers=h).status_code == 201
    return h


def test_openapi_types_every_operation_kind(client):
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    ops = schemas["ChangeSetCreate"]["properties"]["operations"]["items"]
    assert ops["discriminator"]["propertyName"] == "kind"
    assert len(ops["oneOf"]) == len(OperationKind)
    replace = schemas["ReplaceObjectPayload"]
    assert set(replace["required"]) == {"subject", "relation", "object", "new_object"}
    assert replace["additionalProperties"] is False
    assert "name" in replace["properties"]["subject"]["description"]
    assert set(schemas["AddFactPayload"]["properties"]) == {
        "subject",
        "relation",
        "object",
        "source",
    }


def test_a_missing_field_is_a_422_that_names_it(client, people):
    op = {"kind": "replace_object", "payload": {"subject": "a", "relation": "P19", "object": "b"}}
    r = client.post("/v1/changesets", json={"reason": "x", "operations": [op]}, headers=people)
    assert r.status_code == 422
    locs = [d["loc"] for d in r.json()["error"]["details"]]
    assert ["body", "operations", 0, "replace_object", "payload", "new_object"] in locs
    op = {"kind": "forget_everything", "payload": {}}
    r = client.post("/v1/changesets", json={"reason": "x", "operations": [op]}, headers=people)
    assert r.status_code == 422


def test_operations_by_names(client, people, as_role):
    op = {
        "kind": "replace_object",
        "payload": {
            "subject": "imogen stallard",
            "relation": "Born In",
            "object": "Leeds",
            "new_object": "york",
        },
    }
    r = client.post("/v1/changesets", json={"reason": "fix", "operations": [op]}, headers=people)
    assert r.status_code == 201, r.text
    (stored,) = r.json()["operations"]
    assert stored["payload"] == {
        "subject": "name:imogen_stallard",
        "relation": "P19",
        "object": "leeds",
        "new_object": "york",
    }
    alias = {"kind": "add_alias", "payload": {"entity": "Immy", "alias": "I. Stallard"}}
    r = client.put(
        f"/v1/changesets/{r.json()['id']}/operations",
        json={"operations": [op, alias]},
        headers=people,
    )
    assert r.status_code == 200, r.text
    assert r.json()["operations"][1]["payload"]["entity"] == "name:imogen_stallard"


def test_an_ambiguous_name_is_a_422_listing_the_ids(client, people):
    op = {
        "kind": "replace_object",
        "payload": {
            "subject": "Imogen Stallard",
            "relation": "P19",
            "object": "leeds",
            "new_object": "Harrow",
        },
    }
    r = client.post("/v1/changesets", json={"reason": "x", "operations": [op]}, headers=people)
    assert r.status_code == 422
    error = r.json()["error"]
    assert "harrow_school" in error["message"] and "harrow_town" in error["message"]
    (detail,) = error["details"]
    assert detail["field"] == "new_object" and detail["operation"] == 1
    assert sorted(m["id"] for m in detail["matches"]) == ["harrow_school", "harrow_town"]
    assert client.get("/v1/changesets", headers=people).json()["total"] == 0


def test_an_unknown_name_is_a_404(client, people):
    op = {"kind": "add_alias", "payload": {"entity": "Nobody Known", "alias": "N"}}
    r = client.post("/v1/changesets", json={"reason": "x", "operations": [op]}, headers=people)
    assert r.status_code == 404 and "Nobody Known" in r.json()["error"]["message"]


def test_search_by_partial_names(client, people, as_role):
    h = as_role("auditor")
    for q in ("Imog", "stallard", "imm"):
        r = client.get("/v1/graph/entities", params={"q": q}, headers=h).json()
        assert [e["id"] for e in r["items"]] == ["name:imogen_stallard"], q
    r = client.get("/v1/graph/entities", params={"q": "Imog", "match": "exact"}, headers=h)
    assert r.json()["items"] == []
    r = client.get("/v1/graph/entities", params={"q": "harrow", "limit": 1}, headers=h).json()
    assert r["total"] == 2 and len(r["items"]) == 1
    r = client.get("/v1/graph/entities", params={"q": "x", "match": "fuzzy"}, headers=h)
    assert r.status_code == 422
