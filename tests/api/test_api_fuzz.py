"""Schemathesis against the live OpenAPI spec of a real uvicorn server: no 5xx, one error shape.

Each operation is called with a key of a role it admits, so generated requests reach the
route's own validation and handlers, not just the auth check. Examples are bounded.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from live_server import serve
from schemathesis import checks

from api.app import create_app
from api.keys import KeyStore, Role
from kg.store.sql import SqlGraphStore
from workers.settings import Settings

MAX_EXAMPLES = 25
pytestmark = pytest.mark.slow  # every operation fuzzed: the full suite's tier
CHECKS = (checks.not_a_server_error, checks.status_code_conformance)


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value) -> bytes:
    """Send generated JSONL upload bodies as they are (strings) or as one JSON line."""
    import json

    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


@pytest.fixture(scope="module")
def live_api(tmp_path_factory):
    """A uvicorn server on loopback serving the app; yields (base url, keys by role)."""
    var = tmp_path_factory.mktemp("fuzzvar")
    keys = KeyStore(f"sqlite:///{var / 'meta.sqlite'}")
    role_keys = {role: keys.create(f"fuzz {role.value}", role)[0] for role in Role}
    settings = Settings(var_dir=var, metadata_url=f"sqlite:///{var / 'meta.sqlite'}")
    app = create_app(settings, store=SqlGraphStore("sqlite://"), key_store=keys)
    with serve(app) as base:
        yield base, role_keys


def _check(case, base: str, role_keys: dict, seen: Counter) -> None:
    """Call the live server with one generated case and check the response."""
    roles = case.operation.definition.raw.get("x-required-roles") or []
    headers = {"X-API-Key": role_keys[Role(roles[0])]} if roles else {}
    response = case.call(base_url=base, headers=headers)
    seen[response.status_code // 100] += 1
    seen[f"{case.method} {case.path}"] += 1
    case.validate_response(response, checks=CHECKS)
    where = (case.method, case.formatted_path, case.query, response.text[:300])
    assert response.status_code < 500, where
    if response.status_code >= 400:
        body = response.json()
        assert set(body["error"]) == {"status", "code", "message", "details"}, where
        assert body["error"]["status"] == response.status_code, where


def test_no_server_errors_on_any_operation(live_api):
    base, role_keys = live_api
    api = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 15
    seen: Counter = Counter()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case):
            _check(case, base, role_keys, seen)

        run()
    assert seen[2] > 0 and seen[4] > 0, seen  # both accepted and refused requests were made
    assert seen["POST /v1/jobs/upload"] > 0, seen  # the JSONL upload is fuzzed too
