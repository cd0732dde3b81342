"""Console security, one test per rule: sessions only from valid keys, CSRF on every form,
roles as the API's, no self-review, cookie flags, the key never in a URL or a page."""

from __future__ import annotations

import time

from conftest import REPLACE, assert_labelled, csrf_of, propose_replacement, sign_in

from api.console import session as sessions
from api.keys import Role


def test_no_session_without_a_valid_key(console_app, keys):
    from fastapi.testclient import TestClient

    with TestClient(console_app) as client:
        r = client.get("/ui/search", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/ui/login"
        for bad in ("", "kge_00000000_nope", keys[Role.CURATOR] + "x"):
            r = sign_in(client, bad)
            assert r.status_code == 401 and sessions.SESSION_COOKIE not in r.cookies
        assert client.get("/ui/search", follow_redirects=False).status_code == 303
        # a forged cookie (signed with another secret) is no session either
        payload = {"key": keys[Role.CURATOR].split("_")[1], "sid": "x", "exp": time.time() + 99}
        client.cookies.set(sessions.SESSION_COOKIE, sessions.sign(b"other", "session", payload))
        assert client.get("/ui/search", follow_redirects=False).status_code == 303


def test_revoking_the_key_ends_its_sessions(console_app, keys, signed_in):
    client = signed_in(Role.CURATOR)
    assert client.get("/ui/search").status_code == 200
    console_app.state.keys.revoke(keys[Role.CURATOR].split("_")[1])
    assert client.get("/ui/search", follow_redirects=False).status_code == 303


def test_an_expired_session_is_refused(console_app, keys, monkeypatch):
    from fastapi.testclient import TestClient

    with TestClient(console_app) as client:
        assert sign_in(client, keys[Role.CURATOR]).status_code == 303
        later = time.time() + console_app.state.settings.console_session_minutes * 60 + 5
        monkeypatch.setattr(sessions.time, "time", lambda: later)
        assert client.get("/ui/search", follow_redirects=False).status_code == 303


def test_csrf_is_refused_on_every_form(console_app, keys, signed_in):
    from fastapi.testclient import TestClient

    curator = signed_in(Role.CURATOR)
    n_before = len(console_app.state.store.list_change_sets())
    for token in (None, "", "forged"):
        data = dict(REPLACE) | ({"csrf": token} if token is not None else {})
        r = curator.post("/ui/changesets/new", data=data, follow_redirects=False)
        assert r.status_code == 403 and "CSRF" in r.text
    assert len(console_app.state.store.list_change_sets()) == n_before
    url = propose_replacement(curator)
    reviewer = signed_in(Role.REVIEWER)
    # another session's token is not this session's
    other = csrf_of(curator.get("/ui/search").text)
    r = reviewer.post(f"{url}/review", data={"csrf": other, "decision": "approve", "comment": "x"})
    assert r.status_code == 403
    assert reviewer.post("/ui/logout", data={}).status_code == 403
    assert console_app.state.store.get_change_set(url.rsplit("/", 1)[1]).state.value == "proposed"
    # the sign-in form needs its token too
    with TestClient(console_app) as fresh:
        r = fresh.post("/ui/login", data={"api_key": keys[Role.CURATOR]}, follow_redirects=False)
        assert r.status_code == 403 and sessions.SESSION_COOKIE not in r.cookies


def test_a_curator_cannot_approve(console_app, signed_in):
    curator = signed_in(Role.CURATOR)
    url = propose_replacement(curator)
    page = curator.get(url).text
    assert "Submit review" not in page
    data = {"csrf": csrf_of(page), "decision": "approve", "comment": "mine"}
    r = curator.post(f"{url}/review", data=data)
    assert r.status_code == 403 and "reviewer" in r.text
    assert console_app.state.store.get_change_set(url.rsplit("/", 1)[1]).state.value == "proposed"


def test_roles_follow_the_api(signed_in):
    auditor = signed_in(Role.AUDITOR)
    assert auditor.get("/ui/jobs").status_code == 200
    assert auditor.get("/ui/changesets/new").status_code == 403
    curator = signed_in(Role.CURATOR)
    assert curator.get("/ui/jobs").status_code == 200  # curators read jobs, as in the API
    assert curator.get("/ui/models").status_code == 403
    nav = curator.get("/ui/search").text
    assert 'href="/ui/search"' in nav and 'href="/ui/models"' not in nav
    admin = signed_in(Role.ADMIN)
    assert admin.get("/ui/search", params={"q": "Imog"}).status_code == 403


def test_a_reviewer_cannot_approve_their_own_change_set(console_app, keys):
    from fastapi.testclient import TestClient

    # a reviewer key authors through the API, then tries to approve in the console
    api = TestClient(console_app)
    rid = keys[Role.REVIEWER].split("_")[1]
    info = console_app.state.keys.principal(rid)
    from kg import curation

    store = console_app.state.store
    op = {"kind": "add_alias", "payload": {"entity": "leeds", "alias": "Loiner city"}}
    cs = curation.create_change_set(store, info.actor, "alias", [op])
    curation.propose(store, cs.id, info.actor)
    with api:
        assert sign_in(api, keys[Role.REVIEWER]).status_code == 303
        page = api.get(f"/ui/changesets/{cs.id}").text
        assert "another reviewer must decide" in page
        data = {"csrf": csrf_of(page), "decision": "approve", "comment": "self"}
        r = api.post(f"/ui/changesets/{cs.id}/review", data=data)
        assert r.status_code == 403 and "own author" in r.text
    assert store.get_change_set(cs.id).state.value == "proposed"


def test_cookie_flags_and_the_key_never_leaks(console_app, keys):
    from fastapi.testclient import TestClient

    key = keys[Role.CURATOR]
    with TestClient(console_app) as client:
        r = sign_in(client, key)
        cookie = next(
            v for v in r.headers.get_list("set-cookie") if v.startswith(sessions.SESSION_COOKIE)
        )
        flags = [p.strip().lower() for p in cookie.split(";")]
        assert "httponly" in flags and "samesite=strict" in flags and "path=/ui" in flags
        assert "secure" not in flags  # plain HTTP here
        assert any(f.startswith("max-age=") for f in flags)
        assert key not in cookie and key.split("_", 2)[2] not in cookie
        assert r.headers["location"] == "/ui/" and key not in r.headers["location"]
        page = client.get("/ui/search", params={"q": "Imog"})
        assert key not in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    with TestClient(console_app, base_url="https://testserver") as client:
        r = sign_in(client, key)
        cookie = next(
            v for v in r.headers.get_list("set-cookie") if v.startswith(sessions.SESSION_COOKIE)
        )
        assert "secure" in [p.strip().lower() for p in cookie.split(";")]


def test_an_ambiguous_name_shows_the_matching_ids(signed_in):
    curator = signed_in(Role.CURATOR)
    token = csrf_of(curator.get("/ui/changesets/new").text)
    data = {"csrf": token, **REPLACE, "op_new_object": "Harrow"}
    r = curator.post("/ui/changesets/new", data=data)
    assert r.status_code == 422
    assert "harrow_school" in r.text and "harrow_town" in r.text


def test_every_form_field_is_labelled(console_app, signed_in):
    curator = signed_in(Role.CURATOR)
    url = propose_replacement(curator)
    reviewer = signed_in(Role.REVIEWER)
    pages = [curator.get("/ui/login").text]
    pages += [curator.get(u).text for u in ("/ui/search", "/ui/changesets/new", url)]
    pages += [
        curator.get(f"/ui/changesets/new?kind={k}").text for k in ("add_concept", "mark_forget")
    ]
    pages.append(reviewer.get(url).text)
    pages.append(curator.get("/ui/entities/leeds").text)  # the model to ask, by name
    for html in pages:
        assert_labelled(html)
