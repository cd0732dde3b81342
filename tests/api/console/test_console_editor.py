"""The change-set editor's autocomplete: HTML `<datalist>`s of entity names and relation
labels filled through the API's routes, and the search route the console's script asks as the
curator types (any entity of a large graph), under the strict CSP (scripts from the console's
own origin only)."""

from __future__ import annotations

import re

import pytest
from conftest import REPLACE, browser_sign_in, csrf_of, open_page

from api.console import routes
from api.keys import Role


def _datalist(html: str, list_id: str) -> list[tuple[str, str | None]]:
    """Return the (value, label) options of one datalist of a page."""
    body = re.search(rf'<datalist id="{list_id}">(.*?)</datalist>', html, re.S).group(1)
    return re.findall(r'<option value="([^"]*)"(?: label="([^"]*)")?>', body)


def test_the_editor_offers_entity_names_and_relation_labels(signed_in):
    curator = signed_in(Role.CURATOR)
    r = curator.get("/ui/changesets/new")
    html = r.text
    entities = _datalist(html, "entity-names")
    assert ("Imogen Stallard", "") in entities and ("Leeds", "") in entities
    # two entities named Harrow: offered by id, the name as the label
    assert ("harrow_town", "Harrow (harrow_town)") in entities
    assert ("harrow_school", "Harrow (harrow_school)") in entities
    assert ("born in", "P19") in _datalist(html, "relation-labels")
    for field, list_id in (("subject", "entity-names"), ("relation", "relation-labels")):
        tag = re.search(rf'<input id="op_{field}"[^>]*>', html).group(0)
        assert f'list="{list_id}"' in tag
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/ui/static/console.js" defer>']
    for field in ("subject", "object", "new_object"):
        tag = re.search(rf'<input id="op_{field}"[^>]*>', html).group(0)
        assert 'data-suggest="/ui/suggest/entities"' in tag
    assert r.headers["content-security-policy"] == routes.CSP
    # an offered id works in the form
    data = {"csrf": csrf_of(html), **REPLACE, "op_new_object": "harrow_town"}
    assert curator.post("/ui/changesets/new", data=data, follow_redirects=False).status_code == 303


def test_the_entity_list_is_capped(console_app, signed_in, monkeypatch):
    from kg.types import Entity

    console_app.state.store.add_entities(
        [Entity(f"town_{i:03d}", f"Town {i:03d}") for i in range(9)]
    )
    monkeypatch.setattr(routes, "SUGGESTED_ENTITIES", 4)
    html = signed_in(Role.CURATOR).get("/ui/changesets/new").text
    assert len(_datalist(html, "entity-names")) == 4


def test_only_the_author_editing_a_draft_gets_the_lists(signed_in):
    curator = signed_in(Role.CURATOR)
    html = curator.get("/ui/changesets/new").text
    r = curator.post("/ui/changesets/new", data={"csrf": csrf_of(html), **REPLACE})
    assert "<datalist" in r.text  # the draft's "Add an operation" form
    assert "<datalist" not in signed_in(Role.REVIEWER).get(str(r.url)).text


def _suggested(client, q: str) -> list[tuple[str, str]]:
    """Return the script's autocomplete options for a partial name."""
    r = client.get("/ui/suggest/entities", params={"q": q})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    return [(o["value"], o["label"]) for o in r.json()]


def test_autocomplete_reaches_past_the_first_entities(console_app, signed_in):
    from kg.types import Entity

    console_app.state.store.add_entities(
        [Entity(f"town_{i:03d}", f"Town {i:03d}") for i in range(260)]
    )
    curator = signed_in(Role.CURATOR)
    html = curator.get("/ui/changesets/new").text
    in_page = {v for v, _ in _datalist(html, "entity-names")}
    assert len(in_page) == routes.SUGGESTED_ENTITIES and "Town 250" not in in_page
    found = _suggested(curator, "Town 25")
    assert [v for v, _ in found] == [f"Town {i}" for i in range(250, 260)]
    assert _suggested(curator, "town 259") == [("Town 259", "Town 259")]
    # a name several entities hold is offered by id, even when only it matches
    assert sorted(_suggested(curator, "Harr")) == [
        ("harrow_school", "Harrow (harrow_school)"),
        ("harrow_town", "Harrow (harrow_town)"),
    ]
    assert _suggested(curator, "Immy") == [("Imogen Stallard", "Imogen Stallard")]  # aliases
    assert _suggested(curator, "  ") == [] and _suggested(curator, "zzz") == []
    assert len(_suggested(curator, "town")) == routes.SUGGESTED_MATCHES
    # what the script offers, the form takes: the name is resolved on the server
    data = {"csrf": csrf_of(html), **REPLACE, "op_new_object": "Town 259"}
    r = curator.post("/ui/changesets/new", data=data)
    assert r.status_code == 200 and "Town 259" in r.text


def test_autocomplete_follows_the_roles_and_refuses_bad_input(console_app, signed_in):
    from fastapi.testclient import TestClient

    with TestClient(console_app) as anonymous:
        r = anonymous.get("/ui/suggest/entities", params={"q": "Imog"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    assert (
        signed_in(Role.ADMIN).get("/ui/suggest/entities", params={"q": "Imog"}).status_code == 403
    )
    assert _suggested(signed_in(Role.AUDITOR), "Imog") == [("Imogen Stallard", "Imogen Stallard")]
    r = signed_in(Role.CURATOR).get("/ui/suggest/entities", params={"q": "x" * 201})
    assert r.status_code == 422


@pytest.mark.slow
def test_in_a_browser_any_entity_can_be_picked_with_or_without_scripts(live_console, chromium):
    """Chromium: typing the start of a name offers entities past the first 200 (the script
    asks the server); without scripts the typed name is resolved by the server all the same."""
    from kg.types import Entity

    base, store, keys = live_console
    store.add_entities([Entity(f"town_{i:03d}", f"Town {i:03d}") for i in range(260)])
    for scripts in (True, False):
        page, errors = open_page(chromium, java_script_enabled=scripts)
        browser_sign_in(page, base, keys[Role.CURATOR])
        page.goto(f"{base}/ui/changesets/new")
        options = page.locator("#entity-names option")
        assert options.count() == routes.SUGGESTED_ENTITIES
        assert page.locator('#entity-names option[value="Town 259"]').count() == 0
        field = page.get_by_label("new object (required)")
        if scripts:
            field.press_sequentially("town 25")
            page.locator('#entity-names option[value="Town 259"]').wait_for(state="attached")
            offered = options.evaluate_all("all => all.map(o => o.value)")
            assert offered == [f"Town {i}" for i in range(250, 260)]
        field.fill("Town 259")
        for label, value in (("relation", "born in"), ("object", "Leeds")):
            page.get_by_label(f"{label} (required)", exact=True).fill(value)
        page.get_by_label("subject (required)").fill("Imogen Stallard")
        page.get_by_label("Reason").fill("moved")
        page.get_by_role("button", name="Save draft").click()
        page.wait_for_url("**/ui/changesets/cs-*")
        assert "Town 259" in page.locator("ol.diff").inner_text()
        page.context.close()
        assert not errors, errors
