"""The Neo4j-driver store everywhere the SQL store goes, on a private FalkorDB (Bolt): the
`kgedit import` command loads the graph, a change set is approved over HTTP, a real worker
edits the model (statistics corpus and probes read from Bolt), an audit reads the graph, and
`kgedit export` writes the edited graph back out.
"""

from __future__ import annotations

import json

import pytest
from e2e_flow import approve_edit_and_audit, known_edit, service_for
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from kg.io_jsonl import export_jsonl
from kg.store import open_store
from workers.db import reset_databases
from workers.settings import get_settings

pytestmark = [pytest.mark.slow, pytest.mark.service]


def test_bolt_graph_from_cli_import_to_job_audit_and_export(
    tmp_path, monkeypatch, falkor_server, tiny_graph, tiny_model_dir, evoke_paths, tiny_cases
):
    if not falkor_server.alive():  # a crash in an earlier test must not take this one
        falkor_server.start()
    graph_url = falkor_server.bolt_url
    store = open_store(graph_url)
    store.drop_all()  # the session's server is shared with the contract tests
    source = tmp_path / "facts.jsonl"
    n_facts = export_jsonl(tiny_graph, source)
    settings, model_name, key, worker = service_for(
        tmp_path, monkeypatch, graph_url, tiny_model_dir
    )
    assert settings.graph_store_url == graph_url

    runner = CliRunner()
    out = runner.invoke(cli, ["import", str(source), "--json"])  # the URL from the settings
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["facts"] == n_facts == store.count_facts()
    assert store.count_entities() == tiny_graph.count_entities()

    edit = known_edit(store, tiny_model_dir, evoke_paths, tiny_cases)
    subject, relation, old, new = edit
    with TestClient(create_app(settings, store=store)) as client:
        job, _ = approve_edit_and_audit(client, key, store, model_name, worker, edit)
    assert job["state"] in {"succeeded", "rolled_back"}
    assert store.graph_version() == 1

    dest = tmp_path / "edited.jsonl"
    out = runner.invoke(cli, ["export", str(dest)])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in dest.read_text().splitlines()]
    facts = [r for r in rows if r["type"] == "fact"]
    current = {
        (r["subject_id"], r["relation"], r["object_id"]) for r in facts if r["status"] == "current"
    }
    assert len(facts) == n_facts + 1  # the retracted old fact and its replacement
    assert (subject, relation, new) in current and (subject, relation, old) not in current
    store.drop_all()
    reset_databases()
    get_settings.cache_clear()
