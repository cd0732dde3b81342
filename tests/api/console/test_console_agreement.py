"""The model's answers in the console on the trained tiny model (slow): the entity page shows
each fact's verdict and answer from the agreement route, and the model's agreement view
counts the whole graph, both agreeing with the API's own JSON."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import sign_in
from fastapi.testclient import TestClient
from markupsafe import escape

from api.app import create_app
from api.keys import Role
from kg.store import open_store
from workers.db import reset_databases
from workers.ledger import register_model
from workers.settings import Settings, get_settings

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny_console(tmp_path, monkeypatch, tiny_graph, tiny_model_dir):
    """The console on a copy of the tiny graph, the tiny model registered as a follower;
    yields (app, model name, keys by role)."""
    graph_file = tmp_path / "kg.sqlite"
    with (
        sqlite3.connect(tiny_graph.url.removeprefix("sqlite:///")) as src,
        sqlite3.connect(graph_file) as dst,
    ):
        src.backup(dst)
    graph_url = f"sqlite:///{graph_file}"
    settings = Settings(var_dir=tmp_path / "var", threads=1, graph_url=graph_url)
    monkeypatch.setenv("KGEDIT_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("KGEDIT_GRAPH_URL", graph_url)
    get_settings.cache_clear()
    reset_databases()
    register_model("tiny", tiny_model_dir, graph_url=graph_url, follow=True, settings=settings)
    store = open_store(graph_url)
    app = create_app(settings, store=store)
    keys = {role: app.state.keys.create(f"t {role.value}", role)[0] for role in Role}
    yield app, keys
    store.close()
    reset_databases()
    get_settings.cache_clear()


def test_the_entity_page_and_the_agreement_view_show_the_models_answers(tiny_console):
    app, keys = tiny_console
    subject = app.state.store.list_facts()[0].subject
    with TestClient(app) as client:
        assert sign_in(client, keys[Role.OPERATOR]).status_code == 303
        api = client.get(
            "/v1/models/tiny/agreement",
            params={"entity": subject, "facts": True},
            headers={"X-API-Key": keys[Role.OPERATOR]},
        ).json()
        assert api["verdicts"]
        html = client.get(f"/ui/entities/{subject}").text
        assert '<option value="tiny" selected>' in html and "tiny says" in html
        for v in api["verdicts"]:
            assert f"verdict-{v['status']}" in html
            assert str(escape(v["answer"])) in html
        assert f"{api.get('agrees', 0)} of {api['facts']} facts agree" in html
        whole = client.get(
            "/v1/models/tiny/agreement", headers={"X-API-Key": keys[Role.OPERATOR]}
        ).json()
        html = client.get("/ui/models/tiny/agreement").text
        assert f"{whole['facts']} facts asked" in html
        for c in whole["conflicts"][:5]:
            assert str(escape(c["subject_name"])) in html
