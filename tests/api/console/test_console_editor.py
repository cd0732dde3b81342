"""The change-set editor's autocomplete: HTML `<datalist>`s of entity names and relation
labels filled through the API's routes, no script, the strict CSP kept."""

from __future__ import annotations

import re

from conftest import REPLACE, csrf_of

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
    assert "<script" not in html
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
