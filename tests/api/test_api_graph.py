"""Graph routes through HTTP: CRUD, search, pages, neighbourhoods and bad input."""

from __future__ import annotations

EVIL = "x'}) DETACH DELETE n //"


def test_crud_and_search(client, curated, as_role):
    reader = as_role("auditor")
    r = client.get("/v1/graph/entities", params={"limit": 2}, headers=reader).json()
    assert r["total"] == 3 and [e["id"] for e in r["items"]] == ["europe", "france"]
    r = client.get("/v1/graph/entities", params={"limit": 2, "offset": 2}, headers=reader).json()
    assert [e["id"] for e in r["items"]] == ["paris"]
    alias = {"alias": "City of Light", "reason": "common name"}
    assert client.post("/v1/graph/entities/paris/aliases", json=alias, headers=curated).json()[
        "aliases"
    ] == ["City of Light"]
    found = client.get("/v1/graph/entities", params={"q": "city of light"}, headers=reader).json()
    assert [e["id"] for e in found["items"]] == ["paris"]
    rel = client.get("/v1/graph/relations/capital_of", headers=reader).json()
    assert rel["functional"] is True and rel["templates"]["cloze"] == ["{} is the capital of"]
    facts = client.get("/v1/graph/facts", headers=reader).json()
    assert facts["total"] == 2
    fid = facts["items"][0]["id"]
    assert client.get(f"/v1/graph/facts/{fid}", headers=reader).json()["object"] == "france"
    gone = client.delete(f"/v1/graph/facts/{fid}", params={"reason": "wrong"}, headers=curated)
    assert gone.json()["status"] == "retracted"
    assert client.get("/v1/graph/facts", headers=reader).json()["total"] == 1
    every = client.get("/v1/graph/facts", params={"status": "all"}, headers=reader).json()
    assert every["total"] == 2
    about = client.get("/v1/graph/entities/france/facts", headers=reader).json()
    assert [f["object"] for f in about] == ["europe"]
    concept = {"id": "c1", "name": "Paris", "aliases": ["City of Light"], "reason": "t"}
    assert client.post("/v1/graph/concepts", json=concept, headers=curated).status_code == 201
    assert client.get("/v1/graph/concepts/c1", headers=reader).json()["aliases"] == [
        "City of Light"
    ]
    assert client.get("/v1/graph/concepts", headers=reader).json()["total"] == 1


def test_curator_overrides_concept_anchor(client, curated, as_role):
    reader = as_role("auditor")
    concept = {"id": "forget:paris", "name": "Paris", "reason": "t"}
    assert client.post("/v1/graph/concepts", json=concept, headers=curated).status_code == 201
    url = "/v1/graph/concepts/forget:paris/redirect"
    body = {"redirect_to": "europe", "reason": "a better anchor"}
    r = client.put(url, json=body, headers=curated)
    assert r.status_code == 200, r.text
    assert r.json()["redirect_to"] == "europe"
    assert client.get("/v1/graph/concepts/forget:paris", headers=reader).json()["redirect_to"] == (
        "europe"
    )
    assert client.put(url, json=body, headers=reader).status_code == 403
    cleared = client.put(url, json={"redirect_to": None, "reason": "none"}, headers=curated)
    assert cleared.json()["redirect_to"] is None
    for path, payload, ident in [
        ("/v1/graph/concepts/c404/redirect", body, "c404"),
        (url, {"redirect_to": "mars", "reason": "t"}, "mars"),
    ]:
        r = client.put(path, json=payload, headers=curated)
        assert r.status_code == 404, r.text
        err = r.json()["error"]
        assert err["code"] == "not_found" and ident in err["message"]
    assert client.put(url, json={"reason": "t"}, headers=curated).status_code == 422


def test_neighbourhood(client, curated, as_role):
    reader = as_role("reviewer")
    one = client.get("/v1/graph/entities/paris/neighbourhood", headers=reader).json()
    assert {n["id"] for n in one["nodes"]} == {"paris", "france"}
    two = client.get(
        "/v1/graph/entities/paris/neighbourhood", params={"hops": 2}, headers=reader
    ).json()
    assert {n["id"]: n["hops"] for n in two["nodes"]} == {"paris": 0, "france": 1, "europe": 2}
    assert {(e["source"], e["target"]) for e in two["edges"]} == {
        ("paris", "france"),
        ("france", "europe"),
    }
    r = client.get("/v1/graph/entities/paris/neighbourhood", params={"hops": 9}, headers=reader)
    assert r.status_code == 422


def test_bad_input_gets_one_error_shape(client, curated, as_role):
    reader = as_role("auditor")

    def err(r, status):
        assert r.status_code == status, r.text
        body = r.json()["error"]
        assert set(body) == {"status", "code", "message", "details"} and body["status"] == status
        return body

    err(client.get("/v1/graph/entities/nowhere", headers=reader), 404)
    err(client.get("/v1/graph/facts/999999", headers=reader), 404)
    err(client.get("/v1/graph/facts/abc", headers=reader), 422)
    dup = {"id": "paris", "name": "Paris", "reason": "again"}
    err(client.post("/v1/graph/entities", json=dup, headers=curated), 409)
    bad_fact = {"subject": "paris", "relation": "capital_of", "object": "mars", "reason": "t"}
    assert (
        "mars"
        in err(client.post("/v1/graph/facts", json=bad_fact, headers=curated), 404)["message"]
    )
    body = err(
        client.post(
            "/v1/graph/entities",
            content=b'{"id": "x", "name": ',
            headers={**curated, "content-type": "application/json"},
        ),
        422,
    )
    assert body["details"]
    extra = {"id": "y", "name": "Y", "reason": "t", "admin": True}
    err(client.post("/v1/graph/entities", json=extra, headers=curated), 422)
    no_reason = {"id": "y", "name": "Y"}
    err(client.post("/v1/graph/entities", json=no_reason, headers=curated), 422)
    control = {"id": "y\x00", "name": "Y", "reason": "t"}
    err(client.post("/v1/graph/entities", json=control, headers=curated), 422)
    bad_template = {"id": "r", "label": "r", "templates": {"cloze": ["no slot"]}, "reason": "t"}
    err(client.post("/v1/graph/relations", json=bad_template, headers=curated), 422)

    def relation(rid: str, *equal: str) -> dict:
        return {"id": rid, "label": rid, "templates": {"cloze": ["{} r"]},
                "equivalent_to": list(equal), "reason": "t"}  # fmt: skip

    err(client.post("/v1/graph/relations", json=relation("r", "r"), headers=curated), 422)
    made = client.post("/v1/graph/relations", json=relation("asked", "capital_of"), headers=curated)
    assert made.status_code == 201 and made.json()["equivalent_to"] == ["capital_of"]
    huge = {"id": "z", "name": "z" * (2 << 20), "reason": "t"}
    err(client.post("/v1/graph/entities", json=huge, headers=curated), 413)
    assert (
        client.get("/v1/graph/entities", params={"limit": 501}, headers=reader).status_code == 422
    )
    assert client.get("/v1/graph/entities", headers=reader).json()["total"] == 3


def test_streamed_oversized_body_is_refused(client, curated):
    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    r = client.post(
        "/v1/graph/entities",
        content=chunks(),
        headers={**curated, "content-type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_injection_names_round_trip_as_data(client, curated, as_role):
    body = {"id": EVIL, "name": EVIL, "aliases": ["'; DROP TABLE facts; --"], "reason": EVIL}
    r = client.post("/v1/graph/entities", json=body, headers=curated)
    assert r.status_code == 201, r.text
    reader = as_role("auditor")
    from urllib.parse import quote

    got = client.get(f"/v1/graph/entities/{quote(EVIL, safe='')}", headers=reader).json()
    assert got["name"] == EVIL and got["aliases"] == ["'; DROP TABLE facts; --"]
    found = client.get(
        "/v1/graph/entities", params={"q": "'; DROP TABLE facts; --"}, headers=reader
    )
    assert [e["id"] for e in found.json()["items"]] == [EVIL]
    assert client.get("/v1/graph/facts", headers=reader).json()["total"] == 2


def test_model_registration_is_validated(client, as_role, api_settings, tmp_path):
    op = as_role("operator")

    def register(path):
        return client.post("/v1/models", json={"name": "m1", "path": str(path)}, headers=op)

    assert register("relative/dir").status_code == 422
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert "KGEDIT_MODEL_ROOTS" in register(outside).json()["error"]["message"]
    inside = api_settings.models_dir / "m1"
    assert "no such directory" in register(inside).json()["error"]["message"]
    inside.mkdir(parents=True)
    assert "config.json" in register(inside).json()["error"]["message"]
    (inside / "config.json").write_text("{}")
    assert "safetensors" in register(inside).json()["error"]["message"]
    sneaky = api_settings.models_dir / ".." / ".." / "elsewhere"
    assert "KGEDIT_MODEL_ROOTS" in register(sneaky).json()["error"]["message"]
    assert client.get("/v1/models/m1", headers=as_role("auditor")).status_code == 404


def test_entity_ids_with_slashes_reach_every_entity_route(client, curated, as_role):
    h, reader = as_role("curator"), as_role("reviewer")
    eid = "wd/entity/Q90"
    body = {"id": eid, "name": "Paris (Wikidata)", "reason": "t"}
    assert client.post("/v1/graph/entities", json=body, headers=h).status_code == 201
    fact = {"subject": eid, "relation": "part_of", "object": "france", "reason": "t"}
    assert client.post("/v1/graph/facts", json=fact, headers=h).status_code == 201
    base = f"/v1/graph/entities/{eid}"
    assert client.get(base, headers=reader).json()["id"] == eid
    r = client.post(f"{base}/aliases", json={"alias": "Lutetia", "reason": "t"}, headers=h)
    assert r.status_code == 200, r.text
    assert "Lutetia" in r.json()["aliases"]
    facts = client.get(f"{base}/facts", headers=reader)
    assert facts.status_code == 200, facts.text
    assert [f["object"] for f in facts.json()] == ["france"]
    hood = client.get(f"{base}/neighbourhood", headers=reader)
    assert hood.status_code == 200, hood.text
    assert "france" in {n["id"] for n in hood.json()["nodes"]}
    missing = client.get("/v1/graph/entities/wd/entity/Q404/facts", headers=reader)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_calibration_routes(client, as_role, api_settings, tmp_path):
    from jobs_helpers import save_random_gpt2

    from workers.ledger import register_model

    register_model("m1", save_random_gpt2(tmp_path / "m1"), settings=api_settings)
    op, reader = as_role("operator"), as_role("auditor")
    assert client.get("/v1/models/m1/calibration", headers=reader).status_code == 404
    assert (
        client.post("/v1/models/m1/calibrate", json={"n_trace": 1}, headers=op).status_code == 422
    )
    assert client.post("/v1/models/m1/calibrate", json={}, headers=reader).status_code == 403
    assert client.post("/v1/models/nobody/calibrate", json={}, headers=op).status_code == 404
    made = client.post("/v1/models/m1/calibrate", json={"n_dev": 4}, headers=op)
    assert made.status_code == 202, made.text
    info = made.json()
    assert (info["state"], info["options"], info["model"]) == ("queued", {"n_dev": 4}, "m1")
    one = client.get(f"/v1/models/m1/calibrations/{info['id']}", headers=reader).json()
    assert one["id"] == info["id"]
    assert client.get(f"/v1/models/m2/calibrations/{info['id']}", headers=reader).status_code == 404
    stop = client.post(f"/v1/models/m1/calibrations/{info['id']}/cancel", headers=op)
    assert stop.json()["state"] == "cancelled"
    listed = client.get("/v1/models/m1/calibrations", headers=reader).json()
    assert [c["id"] for c in listed] == [info["id"]]
