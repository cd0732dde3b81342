"""End to end through HTTP: a curator proposes, a reviewer approves, a real worker (embedded
broker) applies the edit, and an auditor runs an audit and fetches the report (JSON + HTML).
"""

from __future__ import annotations

import pytest
from e2e_flow import approve_edit_and_audit, copy_graph, known_edit, service_for
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import Role
from kg.store import open_store
from workers.db import reset_databases
from workers.settings import get_settings

pytestmark = pytest.mark.slow


def test_curator_reviewer_worker_auditor(
    tmp_path, monkeypatch, tiny_graph, tiny_model_dir, evoke_paths, tiny_cases
):
    graph_url = copy_graph(tiny_graph, tmp_path)
    settings, model_name, key, worker = service_for(
        tmp_path, monkeypatch, graph_url, tiny_model_dir
    )
    store = open_store(graph_url)
    edit = known_edit(store, tiny_model_dir, evoke_paths, tiny_cases)
    with TestClient(create_app(settings, store=store)) as client:
        job, _ = approve_edit_and_audit(client, key, store, model_name, worker, edit)
        versions = client.get(f"/v1/models/{model_name}/versions", headers=key[Role.AUDITOR])
        expected = 2 if job["state"] == "succeeded" else 1
        assert len([v for v in versions.json() if v["on_head_chain"]]) == expected
    reset_databases()
    get_settings.cache_clear()
