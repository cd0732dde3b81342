"""Console fixtures: a small graph, and a signed-in test client per role."""

from __future__ import annotations

import re
import sqlite3

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import Role
from kg.store import open_store
from kg.store.sql import SqlGraphStore
from kg.types import Entity, Fact, Relation
from workers.db import ModelRow, VersionRow, get_database, reset_databases
from workers.settings import Settings, get_settings

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def small_graph() -> SqlGraphStore:
    """Imogen Stallard, born in Leeds; York and two entities named Harrow."""
    store = SqlGraphStore("sqlite://")
    store.add_entities(
        [
            Entity("name:imogen_stallard", "Imogen Stallard", ("Immy",), kind="person"),
            Entity("leeds", "Leeds"),
            Entity("york", "York"),
            Entity("harrow_town", "Harrow"),
            Entity("harrow_school", "Harrow"),
        ]
    )
    store.add_relation(Relation("P19", "born in", {"cloze": ("{} was born in",)}, functional=True))
    store.add_facts([Fact("name:imogen_stallard", "P19", "leeds")])
    return store


@pytest.fixture
def console_app(tmp_path):
    """The API app, console included, on the small graph."""
    settings = Settings(var_dir=tmp_path / "var", metadata_url=f"sqlite:///{tmp_path / 'm.db'}")
    return create_app(settings, store=small_graph())


@pytest.fixture
def keys(console_app) -> dict[Role, str]:
    """One API key per role (two reviewers: `reviewer` and `reviewer2`)."""
    out = {role: console_app.state.keys.create(f"t {role.value}", role)[0] for role in Role}
    out["reviewer2"] = console_app.state.keys.create("second reviewer", Role.REVIEWER)[0]
    return out


def add_model(app, name: str, follows: bool, n_versions: int = 3) -> list[int]:
    """Register a model as ledger rows: a chain of `n_versions` versions, the last the head."""
    db = get_database(app.state.settings.metadata_db_url)
    ids = []
    with db.session() as session:
        session.add(
            ModelRow(
                name=name,
                path="/x",
                weights_sha256="0" * 64,
                param_hashes={},
                follows_graph=follows,
            )
        )
        session.flush()
        parent = None
        for depth in range(n_versions):
            row = VersionRow(
                model_name=name, parent_id=parent, depth=depth, checksum=f"{depth:064d}"
            )
            if depth:
                row.method, row.request_ids, row.norm = "some-method", [f"r{depth}"], 0.5
            session.add(row)
            session.flush()
            parent = row.id
            ids.append(row.id)
        session.get(ModelRow, name).head_version_id = parent
    return ids


def csrf_of(html: str) -> str:
    """Return the first CSRF token of a page."""
    return CSRF.search(html).group(1)


def assert_labelled(html: str) -> None:
    """Check that every input, textarea and select of a page has a label (radios: wrapped)."""
    labels = set(re.findall(r'<label for="([^"]+)"', html))
    for tag in re.findall(r"<(?:input|textarea|select)\b[^>]*>", html):
        if 'type="hidden"' in tag or "<label" in tag:
            continue
        ident = re.search(r'id="([^"]+)"', tag)
        wrapped = re.search(r'type="radio"', tag)
        assert wrapped or (ident and ident.group(1) in labels), tag


def sign_in(client: TestClient, key: str):
    """Sign a client in with a key; return the sign-in response."""
    token = csrf_of(client.get("/ui/login").text)
    return client.post("/ui/login", data={"csrf": token, "api_key": key}, follow_redirects=False)


@pytest.fixture
def signed_in(console_app, keys):
    """Return a function: role -> a test client signed in with that role's key."""
    clients = []

    def make(role) -> TestClient:
        client = TestClient(console_app)
        clients.append(client)
        assert sign_in(client, keys[role]).status_code == 303
        return client

    yield make
    for c in clients:
        c.close()


REPLACE = {
    "kind": "replace_object",
    "op_subject": "Imogen Stallard",
    "op_relation": "born in",
    "op_object": "Leeds",
    "op_new_object": "York",
    "reason": "the source was corrected",
}


def propose_replacement(client: TestClient) -> str:
    """As a signed-in curator, draft and propose the Leeds → York replacement; return its url."""
    token = csrf_of(client.get("/ui/changesets/new").text)
    r = client.post("/ui/changesets/new", data={"csrf": token, **REPLACE}, follow_redirects=False)
    assert r.status_code == 303, r.text
    url = r.headers["location"]
    r = client.post(f"{url}/propose", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return url


@pytest.fixture
def tiny_console(tmp_path, monkeypatch, tiny_graph, tiny_model_dir):
    """The console on a copy of the tiny graph, the tiny model registered as a follower;
    yields (the app, an API key per role)."""
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
    from workers.ledger import register_model  # torch: only these tests need it

    register_model("tiny", tiny_model_dir, graph_url=graph_url, follow=True, settings=settings)
    store = open_store(graph_url)
    app = create_app(settings, store=store)
    keys = {role: app.state.keys.create(f"t {role.value}", role)[0] for role in Role}
    yield app, keys
    store.close()
    reset_databases()
    get_settings.cache_clear()
