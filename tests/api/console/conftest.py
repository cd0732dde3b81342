"""Console fixtures: a small graph, and a signed-in test client per role."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/api: shared helpers
from live_server import serve

from api.app import create_app
from api.keys import KeyStore, Role
from kg.store import open_store
from kg.store.sql import SqlGraphStore
from kg.types import Entity, Fact, Relation
from workers.db import ModelRow, VersionRow, get_database, reset_databases
from workers.settings import Settings, get_settings

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
ROOT = Path(__file__).resolve().parents[3]
ARTEFACTS = ROOT / "var" / "test-artefacts" / "console"
CHROMIUM = "/usr/bin/chromium"


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


@dataclass
class TinyConsole:
    """The console on a copy of the tiny graph: the app, an API key per role, the tiny model's
    registered name (a follower of the graph) and a worker for it, not started."""

    app: Any
    keys: dict[Role, str]
    model: str
    worker: Any


@pytest.fixture
def tiny_console(tmp_path, monkeypatch, tiny_graph, tiny_model_dir) -> Iterator[TinyConsole]:
    """The console on a copy of the tiny graph, the tiny model registered as a follower."""
    from e2e_flow import copy_graph, service_for  # torch: only these tests need it

    graph_url = copy_graph(tiny_graph, tmp_path)
    settings, model, headers, worker = service_for(
        tmp_path, monkeypatch, graph_url, tiny_model_dir, follow=True
    )
    store = open_store(graph_url)
    keys = {role: h["X-API-Key"] for role, h in headers.items()}
    yield TinyConsole(create_app(settings, store=store), keys, model, worker)
    store.close()
    reset_databases()
    get_settings.cache_clear()


# -- a real browser ------------------------------------------------------------------------------


def chromium_path() -> str:
    """Return the system Chromium; skip (fail under CI=true) without it or Playwright."""
    problem = None
    if not Path(CHROMIUM).exists():
        problem = "chromium not installed (run `make chromium`)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "the playwright package is not installed (pip install -e '.[dev]')"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    return CHROMIUM


@pytest.fixture(scope="session")
def chromium():
    """One Debian Chromium for every browser test of the session, driven by Playwright
    (nothing is downloaded)."""
    path = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield browser
        browser.close()


def open_page(chromium, **options: Any) -> tuple[Any, list[str]]:
    """Return a page in a fresh browser context (its own cookies; `options` go to the
    context) and the list its console errors and uncaught script errors go to (CSP
    violations show up there)."""
    context = chromium.new_context(viewport={"width": 1200, "height": 800}, **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


@pytest.fixture
def browser_page(chromium):
    """A page in a fresh browser context; the test fails on any console or script error."""
    page, errors = open_page(chromium)
    yield page
    page.context.close()
    assert not errors, errors


@pytest.fixture
def live_console(tmp_path):
    """A live server on the embedded defaults (SQLite files under a temporary var dir) holding
    the small graph; yields (base url, the store, keys by role)."""
    settings = Settings(var_dir=tmp_path / "var")
    store = open_store(settings.graph_store_url)
    seed = small_graph()
    store.add_entities(seed.list_entities())
    store.add_relations(seed.list_relations())
    store.add_facts(seed.list_facts())
    keys = KeyStore(settings.metadata_db_url)
    by_role = {role: keys.create(f"browser {role.value}", role)[0] for role in Role}
    with serve(create_app(settings, store=store)) as base:
        yield base, store, by_role
    store.close()


def shot(page, name: str, *expected: str) -> Path:
    """Screenshot the page (kept under var/test-artefacts/console/, copied to docs/console/
    when KGEDIT_UPDATE_SCREENSHOTS=1); check it is not blank and shows the expected text."""
    from PIL import Image

    body = page.inner_text("body")
    for text in expected:
        assert text in body, (name, text)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as img:
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
        assert img.width > 300 and img.height > 200
        assert colours is None or len(colours) > 20, f"{name} looks blank"
    if os.environ.get("KGEDIT_UPDATE_SCREENSHOTS") == "1":
        docs = ROOT / "docs" / "console"
        docs.mkdir(exist_ok=True)
        shutil.copy(path, docs / path.name)
    return path


def browser_sign_in(page, base: str, key: str) -> None:
    """Sign in on the console's form with an API key (a fresh sign-in page)."""
    page.goto(f"{base}/ui/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/ui/*")


def browser_sign_out(page, base: str) -> None:
    """Sign out with the header's button."""
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/ui/login")
