"""The console in a real Chromium (Debian's `chromium`, driven by Playwright; nothing is
downloaded): a curator finds an entity by a partial name, replaces a fact's object by names
and proposes; a reviewer approves; the entity page shows the new fact. `/docs` renders
offline. Every page is screenshotted (kept under var/test-artefacts/console/, and copied to
docs/console/ when KGEDIT_UPDATE_SCREENSHOTS=1) and checked for content."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import small_graph

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from live_server import serve

from api.app import create_app
from api.keys import KeyStore, Role
from kg.store import open_store
from workers.settings import Settings

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
ARTEFACTS = ROOT / "var" / "test-artefacts" / "console"
CHROMIUM = "/usr/bin/chromium"


def _chromium() -> str:
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


@pytest.fixture
def live(tmp_path):
    """A live server on the embedded defaults (SQLite files under a temporary var dir) holding
    the small graph; yields (base url, keys by role)."""
    settings = Settings(var_dir=tmp_path / "var")
    store = open_store(settings.graph_store_url)
    seed = small_graph()
    store.add_entities(seed.list_entities())
    store.add_relations(seed.list_relations())
    store.add_facts(seed.list_facts())
    keys = KeyStore(settings.metadata_db_url)
    by_role = {role: keys.create(f"browser {role.value}", role)[0] for role in Role}
    with serve(create_app(settings, store=store)) as base:
        yield base, by_role


def _shot(page, name: str, *expected: str) -> Path:
    """Screenshot the page, check it is not blank and shows the expected text."""
    from PIL import Image

    for text in expected:
        assert text in page.inner_text("body"), (name, text)
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


def _sign_in(page, base: str, key: str) -> None:
    page.goto(f"{base}/ui/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/ui/search")


def test_curator_edits_by_names_and_reviewer_approves(live):
    from playwright.sync_api import sync_playwright

    base, keys = live
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        page.goto(f"{base}/ui/login")
        _shot(page, "01-sign-in", "Sign in", "API key")
        _sign_in(page, base, keys[Role.CURATOR])
        assert keys[Role.CURATOR] not in page.url
        assert page.evaluate("document.cookie") == ""  # HttpOnly: not readable by scripts
        assert page.evaluate("localStorage.length + sessionStorage.length") == 0

        page.get_by_label("Name or alias").fill("Imog")
        page.keyboard.press("Enter")  # keyboard submits the search
        page.wait_for_url("**/ui/search?q=Imog")
        _shot(page, "02-search", "Imogen Stallard", "1 found")
        page.get_by_role("link", name="Imogen Stallard").click()
        _shot(page, "03-entity", "Imogen Stallard", "born in", "Leeds", "Neighbourhood")

        page.get_by_role("link", name="Replace object").click()
        assert page.get_by_label("new object (required)").input_value() == ""
        assert page.get_by_label("subject (required)").input_value() == "Imogen Stallard"
        page.get_by_label("new object (required)").fill("York")
        page.get_by_label("Reason").fill("the register says York")
        _shot(page, "04-editor", "Replace a fact's object", "new object")
        page.get_by_role("button", name="Save draft").click()
        page.wait_for_url("**/ui/changesets/cs-*")
        page.get_by_role("button", name="Propose").click()
        _shot(page, "05-proposed", "proposed", "Leeds", "York")
        cs_url = page.url
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{base}/ui/login")

        _sign_in(page, base, keys[Role.REVIEWER])
        page.get_by_role("link", name="Change sets").click()
        _shot(page, "06-review-queue", "Review queue", "the register says York")
        page.goto(cs_url)
        assert "edit" in page.inner_text("body")  # the planned request
        page.get_by_label("Approve").check()
        page.get_by_label("Reason").fill("matches the register")
        page.get_by_label("Graph only").check()  # no model follows this test's graph
        _shot(page, "07-review", "Review", "What the model will be asked to do")
        page.get_by_role("button", name="Submit review").click()
        _shot(page, "08-approved", "approved", "Plan")

        page.goto(f"{base}/ui/search?q=stallard")
        page.get_by_role("link", name="Imogen Stallard").click()
        _shot(page, "09-entity-after", "York")
        facts = page.locator("table").first.inner_text()
        assert "York" in facts and "Leeds" not in facts

        page.get_by_role("button", name="Sign out").click()
        _sign_in(page, base, keys[Role.OPERATOR])
        page.goto(f"{base}/ui/jobs")
        _shot(page, "10-jobs", "Jobs")
        page.goto(f"{base}/ui/models")
        _shot(page, "11-models", "Models")
        assert not errors, errors  # CSP violations and script errors show up here
        browser.close()


def test_docs_render_offline(live):
    from playwright.sync_api import sync_playwright

    base, _ = live
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        context = browser.new_context()
        outside: list[str] = []

        def only_local(route):
            if route.request.url.startswith(base):
                return route.continue_()
            outside.append(route.request.url)
            return route.abort()

        context.route("**/*", only_local)
        page = context.new_page()
        page.goto(f"{base}/docs")
        page.wait_for_selector(".opblock-summary", timeout=30_000)
        assert page.locator(".opblock").count() > 20
        _shot(page, "12-docs", "/v1/changesets")
        page.goto(f"{base}/redoc")
        page.wait_for_selector("text=change sets", timeout=30_000)
        assert not outside, outside
        browser.close()


def test_an_operator_sees_what_the_model_answers_and_the_change_in_it(tiny_console):
    """On the trained tiny model: the entity page's answers, a replan queued on the model and
    the change set's attempts, the models page and the agreement view."""
    from playwright.sync_api import sync_playwright

    from kg import curation

    app, keys = tiny_console
    store = app.state.store
    facts = store.list_facts()
    fact = facts[0]
    other = next(f.object for f in facts if f.relation == fact.relation and f.object != fact.object)
    op = {
        "kind": "replace_object",
        "payload": {
            "subject": fact.subject,
            "relation": fact.relation,
            "object": fact.object,
            "new_object": other,
        },
    }
    cs = curation.create_change_set(store, "key:curator", "corrected", [op])
    curation.propose(store, cs.id, "key:curator")
    curation.approve(store, cs.id, "key:reviewer", "graph first")
    with serve(app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        _sign_in(page, base, keys[Role.OPERATOR])
        page.goto(f"{base}/ui/entities/{fact.subject}")
        _shot(page, "13-entity-answers", "tiny says", "Verdict")
        page.goto(f"{base}/ui/changesets/{cs.id}")
        assert "Not planned on any model" in page.inner_text("body")
        page.get_by_label("Model (optional").fill("tiny")
        page.get_by_role("button", name="Replan").click()
        _shot(page, "14-replanned", "replanned", "Jobs queued")
        page.goto(f"{base}/ui/changesets/{cs.id}")
        _shot(page, "15-changeset-in-the-models", "In the models", "queued", "1 of")
        page.goto(f"{base}/ui/models")
        page.get_by_role("link", name="Agreement with the graph").click()
        _shot(page, "16-agreement", "Facts per verdict", "Conflicts")
        assert not errors, errors
        browser.close()
