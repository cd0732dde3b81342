"""Bad input against a live server, on SQLite and on PostgreSQL + Redis: never a 5xx, and a
refused request changes nothing.

Every route is called with hostile values in each of its path parameters, query parameters
and body fields (huge and negative integers, NUL, bidi overrides, zero-width characters,
ids with `/`, `%2F` and `..`, empty and oversized texts), uploads included. After every
refused request a snapshot of every graph, job and ledger table must equal the one before.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from live_server import serve
from sqlalchemy import MetaData, create_engine, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workers"))
from jobs_helpers import random_model_dir  # noqa: F401

from api.app import create_app
from api.keys import KeyStore, Role
from kg.store import open_store
from workers.db import reset_databases
from workers.ledger import register_model
from workers.settings import Settings

PG_ADMIN = os.environ.get("KGEDIT_TEST_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
REDIS = os.environ.get("KGEDIT_TEST_REDIS_URL", "redis://127.0.0.1:6379")

BAD_TEXTS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "a\x07b",
    "\u202eevil",
    "a\u2066b",
    "e\u200b1",
    "\ufeffx",
    "x" * 5000,
]
BAD_IDS = ["a/b", "a%2Fb", "..", "../..", "%2e%2e", "a\x00b", "\u202ex", "x\u200b", "x" * 600]
BAD_INTS = [-1, 0, 2**31, 2**63, -(2**63), 10**40, 1.5, "1", None, True, [], {}]
HUGE = [2**31, 2**63, -(2**63), 10**40]


def _variants(base: dict, field: str, values: list) -> Iterator[dict]:
    """Yield `base` with `field` set to each bad value."""
    for value in values:
        yield {**base, field: value}


def _cases(model: str, entity: str, relation: str, fact: int) -> list[tuple]:
    """Return (method, path, role, json body | None, params | None, raw content | None)."""
    out: list[tuple] = []
    edit = {"subject": "Ada", "prompt": "{} was born in", "target_new": "Tokyo"}
    job = {"model": model, "method": "rome", "requests": [edit]}
    entity_body = {"id": "new-e", "name": "New", "reason": "r"}
    relation_body = {
        "id": "new-r",
        "label": "L",
        "templates": {"cloze": ["{} is in"]},
        "reason": "r",
    }
    fact_body = {"subject": entity, "relation": relation, "object": entity, "reason": "r"}
    concept_body = {"id": "new-c", "name": "C", "reason": "r"}
    # bodies: every field with bad texts or ids
    for field in ("id", "name", "reason"):
        for body in _variants(entity_body, field, BAD_TEXTS + BAD_IDS[:4]):
            out.append(("POST", "/v1/graph/entities", "curator", body, None, None))
    for field in ("id", "label"):
        for body in _variants(relation_body, field, BAD_TEXTS):
            out.append(("POST", "/v1/graph/relations", "curator", body, None, None))
    for field in ("subject", "relation", "object"):
        for body in _variants(fact_body, field, BAD_IDS):
            out.append(("POST", "/v1/graph/facts", "curator", body, None, None))
    for field in ("id", "name", "redirect_to"):
        for body in _variants(concept_body, field, BAD_TEXTS[:6] + BAD_IDS[:3]):
            out.append(("POST", "/v1/graph/concepts", "curator", body, None, None))
    for field in ("subject", "prompt", "target_new", "request_id"):
        for value in BAD_TEXTS:
            body = {**job, "requests": [{**edit, field: value}]}
            out.append(("POST", "/v1/jobs", "operator", body, None, None))
    for field, values in (("model", BAD_IDS + BAD_TEXTS[:3]), ("method", [*BAD_IDS, "bogus"])):
        for body in _variants(job, field, values):
            out.append(("POST", "/v1/jobs", "operator", body, None, None))
    for value in BAD_INTS:
        out.append(("POST", "/v1/jobs", "operator", {**job, "batch_size": value}, None, None))
        hp = {**job, "hparams": {"v_num_grad_steps": value}}
        out.append(("POST", "/v1/jobs", "operator", hp, None, None))
        out.append(("POST", f"/v1/models/{model}/rollback", "operator", {"version_id": value}))
        out.append(("POST", "/v1/audits", "auditor", {"model": model, "version_id": value}))
        out.append(("POST", "/v1/audits", "auditor", {"model": model, "sample_size": value}))
    # uploads: bad query values and bad lines
    line = json.dumps({"type": "edit", **edit})
    for name, values in (
        ("model", [*BAD_IDS, "", "bad name"]),
        ("edit_method", ["", "bogus", "a/b"]),
        ("unlearn_method", ["", "bogus"]),
    ):
        for value in values:
            params = {"model": model, name: value}
            unlearn = json.dumps({"type": "unlearn", "concept": "Ada"})
            out.append(("POST", "/v1/jobs/upload", "operator", None, params, f"{line}\n{unlearn}"))
    for bad in [
        "{",
        "[]",
        "null",
        '{"type": "edit"}',
        line.replace("Tokyo", "To\\u0000kyo"),
        line.replace("Tokyo", "\\u202eTokyo"),
        "\x00",
        "\udcff",
    ]:
        content = f"{line}\n{bad}"
        out.append(("POST", "/v1/jobs/upload", "operator", None, {"model": model}, content))
    # path parameters of every route with an id or a name
    for raw in [*BAD_IDS, "%00", "%E2%80%AE", "2147483648", "-1"]:
        bad = quote(raw, safe="/%.")  # a URL carries NUL and bidi characters percent-encoded
        out += [
            ("GET", f"/v1/graph/entities/{bad}", "curator"),
            ("GET", f"/v1/graph/entities/{bad}/facts", "curator"),
            ("GET", f"/v1/graph/entities/{bad}/neighbourhood", "curator"),
            ("POST", f"/v1/graph/entities/{bad}/aliases", "curator", {"alias": "A", "reason": "r"}),
            ("GET", f"/v1/graph/relations/{bad}", "curator"),
            ("GET", f"/v1/graph/facts/{bad}", "curator"),
            ("DELETE", f"/v1/graph/facts/{bad}", "curator"),
            ("GET", f"/v1/graph/concepts/{bad}", "curator"),
            ("PUT", f"/v1/graph/concepts/{bad}/redirect", "curator", {"to": "x", "reason": "r"}),
            ("GET", f"/v1/changesets/{bad}", "curator"),
            ("POST", f"/v1/changesets/{bad}/propose", "curator"),
            ("POST", f"/v1/changesets/{bad}/review", "reviewer", {"decision": "approve"}),
            ("GET", f"/v1/jobs/{bad}", "operator"),
            ("POST", f"/v1/jobs/{bad}/cancel", "operator"),
            ("POST", f"/v1/jobs/{bad}/retry", "operator"),
            ("GET", f"/v1/models/{bad}", "operator"),
            ("GET", f"/v1/models/{bad}/versions", "operator"),
            ("POST", f"/v1/models/{bad}/rollback", "operator", {"version_id": 1}),
            ("POST", f"/v1/models/{bad}/export", "operator", {"name": "x"}),
            ("GET", f"/v1/audits/{bad}", "auditor"),
            ("GET", f"/v1/audits/{bad}/report", "auditor"),
            ("DELETE", f"/v1/keys/{bad}", "admin"),
        ]
    for value in [*HUGE, -1, "x"]:
        out.append(("GET", f"/v1/graph/facts/{value}", "curator"))
        out.append(("DELETE", f"/v1/graph/facts/{value}", "curator"))
        for q in ({"from": value, "to": 1}, {"from": 1, "to": value}):
            out.append(("GET", f"/v1/models/{model}/diff", "operator", None, q))
        for route, role in (("/v1/jobs", "operator"), ("/v1/audits", "auditor")):
            out.append(("GET", route, role, None, {"limit": value}))
            out.append(("GET", route, role, None, {"offset": value}))
        out.append(("GET", "/v1/graph/entities", "curator", None, {"limit": value}))
        out.append(
            ("GET", f"/v1/graph/entities/{entity}/neighbourhood", "curator", None, {"hops": value})
        )
    for name in BAD_TEXTS[:7]:
        out.append(("POST", "/v1/keys", "admin", {"name": name, "role": "curator"}))
        out.append(("POST", "/v1/models", "operator", {"name": "m", "path": f"/tmp/{name}"}))
    for path in ("relative/dir", "/tmp/../etc", "/tmp/a\u202eb", "/etc"):
        out.append(("POST", "/v1/models", "operator", {"name": "m", "path": path}))
    for url in ("sqlite:////tmp/elsewhere.sqlite", "postgresql://db.example/x", "\x00"):
        body = {"name": "m", "path": "/tmp", "graph_url": url}
        out.append(("POST", "/v1/models", "operator", body))
    for value in (fact, f"{fact}"):
        out.append(("POST", f"/v1/graph/facts/{value}", "curator", {}))  # wrong method
    return [tuple(c) + (None,) * (6 - len(c)) for c in out]


def _snapshot(urls: list[str]) -> dict[str, list]:
    """Return every row of every table of the databases, sorted (schema-independent)."""
    out: dict[str, list] = {}
    for url in urls:
        engine = create_engine(url)
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            for name, table in meta.tables.items():
                if name.startswith("kombu_") or name.startswith("celery_"):
                    continue
                rows = conn.execute(select(table)).all()
                out[f"{url}:{name}"] = sorted(repr(tuple(r)) for r in rows)
        engine.dispose()
    return out


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def backend(request, tmp_path) -> Iterator[Settings]:
    """Settings on SQLite files, or on a throwaway PostgreSQL database and a Redis DB."""
    reset_databases()
    if request.param == "sqlite":
        yield Settings(
            var_dir=tmp_path / "var",
            metadata_url=f"sqlite:///{tmp_path / 'meta.sqlite'}",
            graph_url=f"sqlite:///{tmp_path / 'kg.sqlite'}",
        )
        reset_databases()
        return
    name = f"kgedit_bad_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.skip(f"PostgreSQL is not available: {exc}")
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    redis_db = 1 + int(uuid.uuid4().hex, 16) % 15
    try:
        yield Settings(
            var_dir=tmp_path / "var",
            metadata_url=url,
            graph_url=url,
            broker_url=f"{REDIS}/{redis_db}",
            result_backend=f"{REDIS}/{redis_db}",
        )
    finally:
        reset_databases()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _seed(base: str, keys: dict[Role, str]) -> tuple[str, str, int]:
    """Create an entity, a relation and a fact over HTTP; return their ids."""
    curator = {"X-API-Key": keys[Role.CURATOR]}
    with httpx.Client(base_url=base, headers=curator) as c:
        for body in (
            {"id": "p:ada", "name": "Ada", "reason": "seed"},
            {"id": "c:tokyo", "name": "Tokyo", "reason": "seed"},
        ):
            assert c.post("/v1/graph/entities", json=body).status_code == 201
        rel = {"id": "born_in", "label": "born in", "templates": {"cloze": ["{} was born in"]}}
        assert c.post("/v1/graph/relations", json={**rel, "reason": "seed"}).status_code == 201
        fact = {"subject": "p:ada", "relation": "born_in", "object": "c:tokyo", "reason": "seed"}
        r = c.post("/v1/graph/facts", json=fact)
        assert r.status_code == 201, r.text
        return "p:ada", "born_in", int(r.json()["id"])


@pytest.mark.slow  # a live server and 300+ requests, each followed by a snapshot of every table
def test_bad_input_never_5xx_and_refusals_change_nothing(backend, random_model_dir):  # noqa: F811
    settings = backend
    keys = KeyStore(settings.metadata_db_url)
    role_keys = {role: keys.create(f"bad {role.value}", role)[0] for role in Role}
    register_model("tiny", random_model_dir, settings=settings)
    app = create_app(settings, store=open_store(settings.graph_store_url), key_store=keys)
    urls = sorted({settings.metadata_db_url, settings.graph_store_url})
    failures: list[Any] = []
    with serve(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        entity, relation, fact = _seed(base, role_keys)
        cases = _cases("tiny", entity, relation, fact)
        assert len(cases) >= 300, len(cases)
        before = _snapshot(urls)
        statuses: dict[int, int] = {}
        for method, path, role, body, params, content in cases:
            headers = {"X-API-Key": role_keys[Role(role)]}
            raw = content.encode("utf-8", "surrogateescape") if content else None
            try:
                r = client.request(
                    method, path, json=body, params=params, headers=headers, content=raw
                )
            except httpx.TransportError as exc:  # the server dropped the connection
                failures.append((method, path, body, params, repr(exc)))
                continue
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code >= 500:
                failures.append((method, path, body, params, r.status_code, r.text[:200]))
                continue
            after = _snapshot(urls)
            if r.status_code >= 400 and after != before:
                changed = [k for k in after if after[k] != before.get(k)]
                failures.append((method, path, body, params, r.status_code, changed))
            before = after
    assert not failures, sorted({f"{f[0]} {f[1]} {f[-1]}"[:160] for f in failures})
    assert sum(v for k, v in statuses.items() if k >= 400) >= 300, statuses
