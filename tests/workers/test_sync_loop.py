"""The sync loop on the tiny knowledge model: agreement, approval on a following model, the
method chain after a failed gate, and `failed_in_model` when every attempt fails.

The chain tests run each queued job in this process exactly as the worker's task does
(`execute_job`, then `after_job`); the first test runs a real worker process.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from jobs_helpers import WorkerProcess, make_settings
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from e2e_flow import TERMINAL, copy_graph, known_edit, poll, propose_replacement

from api.app import create_app
from api.cli import app as cli
from api.keys import KeyStore, Role
from editor.probe_scoring import score_probes
from kg.agreement import Scope
from kg.probes import sample_probes
from kg.store import open_store
from workers.db import reset_databases
from workers.jobs.dispatch import default_chain
from workers.jobs.runner import RunContext, execute_job
from workers.jobs.service import list_jobs
from workers.ledger import load_version, register_model
from workers.settings import get_settings
from workers.sync.agreement import AgreementChecker
from workers.sync.loop import after_job

pytestmark = pytest.mark.slow
SETTLED = ("verified", "failed_in_model")


@pytest.fixture
def sync_env(tmp_path, monkeypatch, tiny_graph, tiny_model_dir, evoke_paths, tiny_cases):
    """A private copy of the tiny graph, settings on it, the tiny model registered as a
    follower, a key per role, and one known fact to edit: a dict of all of them."""
    graph_url = copy_graph(tiny_graph, tmp_path)

    def setup(**overrides):
        settings = make_settings(tmp_path / "var", graph_url=graph_url, **overrides)
        monkeypatch.setenv("KGEDIT_VAR_DIR", str(settings.var_dir))
        monkeypatch.setenv("KGEDIT_GRAPH_URL", graph_url)
        for key, value in overrides.items():
            monkeypatch.setenv(f"KGEDIT_{key.upper()}", __import__("json").dumps(value))
        get_settings.cache_clear()
        reset_databases()
        return settings

    settings = setup()
    name = f"tiny-{uuid.uuid4().hex[:8]}"
    register_model(name, tiny_model_dir, graph_url=graph_url, follow=True, settings=settings)
    keys = KeyStore(settings.metadata_db_url)
    key = {role: {"X-API-Key": keys.create(f"sync {role.value}", role)[0]} for role in Role}
    store = open_store(graph_url)
    edit = known_edit(store, tiny_model_dir, evoke_paths, tiny_cases)
    yield {
        "settings": settings,
        "setup": setup,
        "model": name,
        "key": key,
        "store": store,
        "edit": edit,
        "tmp": tmp_path,
    }
    store.close()
    reset_databases()
    get_settings.cache_clear()


def _approve(client, key, edit) -> str:
    """Propose and approve (no model named: the followers) one replace_object change set."""
    cs_id = propose_replacement(client, key, edit)
    r = client.post(
        f"/v1/changesets/{cs_id}/review",
        json={"decision": "approve", "comment": "ok"},
        headers=key[Role.REVIEWER],
    )
    assert r.status_code == 200, r.text
    assert r.json()["jobs"] and not r.json()["job_errors"]
    return cs_id


def _drain(settings) -> None:
    """Run every queued job here as the worker's task does, until none is left."""
    ctx = RunContext.create(settings)
    while True:
        queued = list_jobs(state="queued", settings=settings)
        if not queued:
            return
        for job in queued:
            outcome = execute_job(job.id, ctx)
            if outcome.status in ("rolled_back", "failed"):
                after_job(job.id, settings=settings, enqueue=False)


def _fact_verdict(client, key, model, cs_id) -> list[dict]:
    """Return the verdicts of the facts a change set touches."""
    r = client.get(
        f"/v1/models/{model}/agreement",
        params={"change_set": cs_id, "facts": True},
        headers=key[Role.CURATOR],
    )
    assert r.status_code == 200, r.text
    return r.json()["verdicts"]


def test_agreement_is_stored_incremental_and_matches_the_audit_scorer(sync_env):
    settings, store, model = sync_env["settings"], sync_env["store"], sync_env["model"]
    checker = AgreementChecker(settings)
    first = checker.check(model)
    assert first.facts == store.count_facts("current") and first.scored == first.facts
    assert first.counts["agrees"] > first.facts // 2
    assert sum(first.counts.values()) == first.facts
    again = checker.check(model)
    assert again.scored == 0 and again.counts == first.counts
    # the audit's scorer on the same facts says the same (exact greedy match)
    lm, tok, _ = load_version(model, settings=settings)
    probes = sample_probes(store, n=60, seed=1)
    scores = score_probes(lm, tok, probes)
    by_fact = {(v.subject_name, v.relation, v.object_name): v for v in first.verdicts}
    names = store.entity_names({f.subject for f in store.list_facts()})
    checked = 0
    for probe, score in zip(probes, scores, strict=True):
        s, r, o = probe.meta["fact"].split("|")
        v = by_fact.get((names[s], r, store.entity_names([o])[o]))
        if v is not None and v.status in ("agrees", "contradicts", "unknown"):
            assert (v.status == "agrees") == score.exact_match or v.answer_id != v.object
            checked += 1
    assert checked >= 30
    # a graph-only change set: the next check scores only the new fact
    new = sync_env["edit"][3]
    with TestClient(create_app(settings, store=store)) as client:
        key = sync_env["key"]
        cs = {"id": propose_replacement(client, key, sync_env["edit"])}
        r = client.post(
            f"/v1/changesets/{cs['id']}/review",
            json={"decision": "approve", "graph_only": True},
            headers=key[Role.REVIEWER],
        )
        assert r.status_code == 200 and r.json()["jobs"] == []
        after = client.get(f"/v1/models/{model}/agreement", headers=key[Role.AUDITOR]).json()
    assert after["scored"] == 1 and after["graph_version"] == first.graph_version + 1
    # the command line says the same as the API (from the stored answers)
    run = CliRunner().invoke(cli, ["sync", "status", "--model", model, "--json"])
    assert run.exit_code == 0, run.output
    said = json.loads(run.stdout)
    fields = ("graph_version", "model_version", "facts", "agrees", "contradicts", "unknown")
    assert {k: said[k] for k in fields} == {k: after[k] for k in fields}
    assert said["scored"] == 0
    cli_view = checker.check(model, scope=Scope(change_set=cs["id"]))
    (verdict,) = cli_view.verdicts
    assert verdict.object == new and verdict.status in ("contradicts", "unknown")


def test_approval_on_a_following_model_ends_verified_and_agrees(sync_env):
    settings, store, model, key = (sync_env[k] for k in ("settings", "store", "model", "key"))
    worker = WorkerProcess(settings, [model], sync_env["tmp"] / "worker.log")
    with TestClient(create_app(settings, store=store)) as client:
        worker.start()
        try:
            cs_id = _approve(client, key, sync_env["edit"])
            cs = poll(
                lambda: client.get(f"/v1/changesets/{cs_id}", headers=key[Role.CURATOR]).json(),
                lambda c: (
                    c["models"] and c["models"][0]["state"] in ("verified", "failed_in_model")
                ),
                900,
                "the change set in the model",
            )
        finally:
            worker.stop()
        (state,) = cs["models"]
        assert state["state"] == "verified", state
        (verdict,) = _fact_verdict(client, key, model, cs_id)
        assert verdict["status"] == "agrees", verdict
        jobs = client.get("/v1/jobs", headers=key[Role.CURATOR])
        assert jobs.status_code == 200 and {j["state"] for j in jobs.json()} <= TERMINAL | {
            "unverified"
        }


def test_a_failed_gate_brings_the_next_method_of_the_chain(sync_env):
    # a first step that cannot move the model (a zero learning rate), then the default chain
    chain = ["rome@v_lr=0", *default_chain("edit")]
    settings = sync_env["setup"](sync_edit_chain=chain)
    store, model, key = sync_env["store"], sync_env["model"], sync_env["key"]
    with TestClient(create_app(settings, store=store)) as client:
        cs_id = _approve(client, key, sync_env["edit"])
        _drain(settings)
        (state,) = client.get(f"/v1/changesets/{cs_id}", headers=key[Role.REVIEWER]).json()[
            "models"
        ]
        (batch,) = state["batches"]
        states = [a["job_state"] for a in batch["attempts"]]
        assert states[0] == "rolled_back" and states[-1] == "succeeded", batch["attempts"]
        assert set(states[:-1]) == {"rolled_back"} and state["state"] == "verified"
        # the planner's choice for the one-edit batch, with its reason, on every attempt
        assert batch["choice"]["role"] == "single" and batch["choice"]["method"] == "rome"
        assert "1 edit(s)" in batch["choice"]["reason"]
        assert all(a["choice"] == batch["choice"] for a in batch["attempts"])
        assert batch["attempts"][0]["gate"]["groups"]["rewrite"]["after"] < 0.9
        (verdict,) = _fact_verdict(client, key, model, cs_id)
        assert verdict["status"] == "agrees"


def test_every_attempt_failing_ends_failed_in_model_with_the_figures(sync_env):
    settings = sync_env["setup"](sync_edit_chain=["rome@v_lr=0", "memit@v_lr=0"])
    store, key = sync_env["store"], sync_env["key"]
    with TestClient(create_app(settings, store=store)) as client:
        cs_id = _approve(client, key, sync_env["edit"])
        _drain(settings)
        (state,) = client.get(f"/v1/changesets/{cs_id}", headers=key[Role.REVIEWER]).json()[
            "models"
        ]
        assert state["state"] == "failed_in_model"
        attempts = state["batches"][0]["attempts"]
        assert [a["method"] for a in attempts] == ["rome", "memit"]
        for attempt in attempts:
            assert attempt["job_state"] == "rolled_back"
            assert attempt["gate"]["failing"] and "rewrite" in attempt["gate"]["groups"]
            assert attempt["gate"]["groups"]["rewrite"]["after"] < 0.9
        # replanning starts the chain over
        r = client.post(f"/v1/changesets/{cs_id}/replan", json={}, headers=key[Role.OPERATOR])
        assert r.status_code == 200 and len(r.json()["jobs"]) == 1


def test_approval_is_refused_before_the_graph_changes(sync_env):
    settings, store, key = sync_env["settings"], sync_env["store"], sync_env["key"]
    version = store.graph_version()
    with TestClient(create_app(settings, store=store)) as client:
        cs = {"id": propose_replacement(client, key, sync_env["edit"])}
        for body, code in (
            ({"decision": "approve", "edit_method": "no-such-method"}, 422),
            ({"decision": "approve", "model": "unknown-model"}, 404),
            ({"decision": "approve", "edit_method": "rocr"}, 422),
            ({"decision": "approve", "graph_only": True, "model": sync_env["model"]}, 422),
        ):
            r = client.post(
                f"/v1/changesets/{cs['id']}/review", json=body, headers=key[Role.REVIEWER]
            )
            assert r.status_code == code, (body, r.text)
        assert store.graph_version() == version
        assert store.get_change_set(cs["id"]).state.value == "proposed"
        assert list_jobs(settings=settings) == []
