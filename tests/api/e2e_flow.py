"""The end-to-end flow the API tests share: a curator proposes a change set, a reviewer
approves it, a real worker applies the edit, and an auditor runs an audit and reads the report.
"""

from __future__ import annotations

import sqlite3
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workers"))
from jobs_helpers import WorkerProcess, make_settings

from api.keys import KeyStore, Role
from editor.loading import load_model
from kg.importers.evoke import evoke_cases
from workers.audit.schema import validate_report
from workers.db import reset_databases
from workers.edit_run import select_known_edits
from workers.ledger import register_model
from workers.settings import Settings, get_settings

TERMINAL = {"succeeded", "failed", "rolled_back", "cancelled"}


def copy_graph(store, folder: Path) -> str:
    """Copy a SQLite graph store's file (WAL included, consistently) into `folder`; return the
    copy's URL, so a test may change its graph without touching the session's."""
    graph_file = folder / "kg.sqlite"
    with (
        sqlite3.connect(store.url.removeprefix("sqlite:///")) as src,
        sqlite3.connect(graph_file) as dst,
    ):
        src.backup(dst)
    return f"sqlite:///{graph_file}"


def service_for(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    graph_url: str,
    model_dir: Path,
    follow: bool = False,
) -> tuple[Settings, str, dict, WorkerProcess]:
    """Settings on `graph_url` (also as KGEDIT_GRAPH_URL), a registered model (following the
    graph if `follow`), a key per role and a (not yet started) worker for it:
    (settings, model name, headers by role, worker)."""
    settings = make_settings(tmp_path / "var", graph_url=graph_url)
    monkeypatch.setenv("KGEDIT_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("KGEDIT_GRAPH_URL", graph_url)
    get_settings.cache_clear()
    reset_databases()
    model_name = f"tiny-{uuid.uuid4().hex[:8]}"
    register_model(model_name, model_dir, graph_url=graph_url, follow=follow, settings=settings)
    keys = KeyStore(settings.metadata_db_url)
    key = {role: {"X-API-Key": keys.create(f"e2e {role.value}", role)[0]} for role in Role}
    worker = WorkerProcess(settings, [model_name], tmp_path / "worker.log")
    return settings, model_name, key, worker


def poll(fetch, done, timeout: float, what: str):
    """Call `fetch` until `done(result)`; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if done(result):
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}: {result}")
        time.sleep(0.5)


def known_edit(store, model_dir, evoke_paths, tiny_cases) -> tuple[str, str, str, str]:
    """Return (subject id, relation id, old object id, new object id) of a fact the model knows."""
    model, tok = load_model(model_dir)
    for request in select_known_edits(model, tok, evoke_cases(*evoke_paths, limit=tiny_cases), 20):
        subjects = store.find_entities(request.subject)
        olds = store.find_entities(str(request.target_true))
        if not subjects or not olds:
            continue
        for fact in store.facts_about(subjects[0].id):
            if fact.object != olds[0].id:
                continue
            others = {f.object for f in store.facts_of_relation(fact.relation)} - {fact.object}
            if others:
                return fact.subject, fact.relation, fact.object, sorted(others)[0]
    pytest.skip("the tiny model knows no editable fact of the tiny graph")


def propose_replacement(client, key, edit) -> str:
    """A curator proposes one replace_object change set; return its id."""
    subject, relation, old, new = edit
    op = {
        "kind": "replace_object",
        "payload": {"subject": subject, "relation": relation, "object": old, "new_object": new},
    }
    r = client.post(
        "/v1/changesets",
        json={"reason": "the source was corrected", "operations": [op]},
        headers=key[Role.CURATOR],
    )
    assert r.status_code == 201, r.text
    cs_id = r.json()["id"]
    r = client.post(f"/v1/changesets/{cs_id}/propose", headers=key[Role.CURATOR])
    assert r.json()["state"] == "proposed"
    return cs_id


def approve_edit_and_audit(client, key, store, model_name, worker, edit) -> tuple[dict, dict]:
    """Run the whole flow for one replace_object edit; return the finished job and the report."""
    subject, relation, _, new = edit
    cs_id = propose_replacement(client, key, edit)
    review = {"decision": "approve", "comment": "checked", "model": model_name}
    r = client.post(f"/v1/changesets/{cs_id}/review", json=review, headers=key[Role.REVIEWER])
    assert r.status_code == 200, r.text
    approved = r.json()
    assert approved["change_set"]["state"] == "approved" and not approved["job_errors"]
    assert approved["plan"]["batches"][0]["requests"][0]["new_object"] == new
    (job,) = approved["jobs"]
    assert [f.object for f in store.facts_about(subject, relation)] == [new]
    worker.start()
    try:
        job = poll(
            lambda: client.get(f"/v1/jobs/{job['id']}", headers=key[Role.OPERATOR]).json(),
            lambda j: j["state"] in TERMINAL,
            600,
            "the edit job",
        )
        assert job["state"] in {"succeeded", "rolled_back"}, job["error"]
        assert [t["to"] for t in job["transitions"]][:2] == ["queued", "planning"]
        r = client.post(
            "/v1/audits", json={"model": model_name, "sample_size": 40}, headers=key[Role.AUDITOR]
        )
        assert r.status_code == 202, r.text
        audit_id = r.json()["id"]
        early = client.get(f"/v1/audits/{audit_id}/report", headers=key[Role.AUDITOR])
        assert early.status_code in (200, 409)
        audit = poll(
            lambda: client.get(f"/v1/audits/{audit_id}", headers=key[Role.AUDITOR]).json(),
            lambda a: a["state"] in {"succeeded", "failed"},
            600,
            "the audit",
        )
    finally:
        worker.stop()
    assert audit["state"] == "succeeded", audit
    report = client.get(f"/v1/audits/{audit_id}/report", headers=key[Role.AUDITOR]).json()
    validate_report(report)
    assert report["n_probes"] >= 40 and report["sample"] is not None
    page = client.get(f"/v1/audits/{audit_id}/report.html", headers=key[Role.AUDITOR])
    assert page.status_code == 200 and "<svg" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    return job, report
