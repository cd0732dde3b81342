"""The console over the models: what a model answers for each fact of an entity (the agreement
route), a model's agreement view, the version diff and rollback (operators, CSRF, confirmed).
No model is trained here: models are ledger rows, and the agreement checker's result is
given (the route itself still runs, with its roles)."""

from __future__ import annotations

import pytest
from conftest import add_model, assert_labelled, csrf_of

from api.keys import Role

VERDICTS = {
    "model": "small",
    "model_version": 3,
    "graph_url": "sqlite://",
    "graph_version": 1,
    "scope": {"entities": ["name:imogen_stallard"], "relations": [], "change_set": None},
    "facts": 1,
    "agrees": 0,
    "contradicts": 1,
    "unknown": 0,
    "agreement": 0.0,
    "scored": 1,
    "seconds": 0.1,
    "conflicts": [],
    "verdicts": [],
}


class GivenChecker:
    """An agreement checker whose answers are given; it records what it was asked."""

    def __init__(self, answer: str = "York", status: str = "contradicts") -> None:
        self.asked: list[tuple] = []
        self.answer, self.status = answer, status

    def check(self, name, *, version_id=None, scope=None):
        """Return a result for the scope's facts: the given answer for each."""
        self.asked.append((name, version_id, scope))
        checker = self

        class Result:
            def to_dict(self, facts=False):
                store_facts = [f for f in STORE.list_facts() if f.subject in scope.entities]
                if not scope.entities:
                    store_facts = STORE.list_facts()
                verdicts = [
                    {
                        "fact_id": f.id,
                        "subject": f.subject,
                        "relation": f.relation,
                        "object": f.object,
                        "subject_name": "Imogen Stallard",
                        "object_name": "Leeds",
                        "status": checker.status,
                        "answer": checker.answer,
                        "answer_id": "york",
                        "probability": 0.61,
                    }
                    for f in store_facts
                ]
                out = dict(VERDICTS, model=name, conflicts=verdicts)
                return out | ({"verdicts": verdicts} if facts else {})

        return Result()


STORE = None


@pytest.fixture
def checker(console_app):
    """Give the app an agreement checker with given answers."""
    global STORE
    STORE = console_app.state.store
    given = GivenChecker()
    console_app.state.agreement = given
    return given


def test_no_registered_model_leaves_a_note(console_app, signed_in, checker):
    html = signed_in(Role.OPERATOR).get("/ui/entities/name:imogen_stallard").text
    assert "No model is registered" in html and "Leeds" in html
    assert not checker.asked


def test_the_entity_page_shows_what_the_model_answers(console_app, signed_in, checker):
    add_model(console_app, "plain", follows=False)
    add_model(console_app, "small", follows=True)
    operator = signed_in(Role.OPERATOR)
    html = operator.get("/ui/entities/name:imogen_stallard").text
    # the first following model is the default; the select offers every registered model
    assert checker.asked[-1][0] == "small"
    assert checker.asked[-1][2].entities == ("name:imogen_stallard",)
    assert '<option value="small" selected>' in html and '<option value="plain">' in html
    assert_labelled(html)
    assert "small says" in html and "York" in html and "contradicts" in html and "0.61" in html
    operator.get("/ui/entities/name:imogen_stallard", params={"model": "plain"})
    assert checker.asked[-1][0] == "plain"


def test_a_role_that_cannot_list_models_names_one(console_app, signed_in, checker):
    add_model(console_app, "small", follows=True)
    curator = signed_in(Role.CURATOR)
    html = curator.get("/ui/entities/name:imogen_stallard").text
    assert "Name a model" in html and not checker.asked
    html = curator.get("/ui/entities/name:imogen_stallard", params={"model": "small"}).text
    assert "small says" in html and "contradicts" in html


def test_an_unknown_model_is_a_note_not_an_error(console_app, signed_in):
    curator = signed_in(Role.CURATOR)
    r = curator.get("/ui/entities/name:imogen_stallard", params={"model": "nope"})
    assert r.status_code == 200 and "nope:" in r.text and "Leeds" in r.text


def test_the_agreement_view_counts_and_lists_conflicts(console_app, signed_in, checker):
    add_model(console_app, "small", follows=True)
    auditor = signed_in(Role.AUDITOR)
    html = auditor.get("/ui/models").text
    assert 'href="/ui/models/small/agreement"' in html
    html = auditor.get("/ui/models/small/agreement").text
    assert checker.asked[-1][2].is_all
    assert "Conflicts" in html and "Imogen Stallard" in html and "York" in html
    assert "<td>born in</td>" in html and "<td>P19</td>" not in html  # relations by label
    assert 'href="/ui/entities/york"' in html


def test_the_agreement_view_of_an_unknown_model_is_404(signed_in):
    r = signed_in(Role.AUDITOR).get("/ui/models/nope/agreement")
    assert r.status_code == 404 and "nope" in r.text


def test_the_version_diff(console_app, signed_in):
    ids = add_model(console_app, "small", follows=True)
    operator = signed_in(Role.OPERATOR)
    assert 'action="/ui/models/small/diff"' in operator.get("/ui/models").text
    html = operator.get("/ui/models/small/diff", params={"from": ids[0], "to": ids[2]}).text
    assert f"version {ids[0]} → {ids[2]}" in html and "r1" in html and "r2" in html
    for bad in ({"from": "x", "to": ids[2]}, {"to": ids[2]}, {"from": 0, "to": 1}):
        assert operator.get("/ui/models/small/diff", params=bad).status_code == 422
    assert operator.get("/ui/models/small/diff", params={"from": 999, "to": 1}).status_code == 404


def test_rollback_needs_an_operator_csrf_and_a_confirmation(console_app, signed_in):
    from workers.ledger import registry

    ids = add_model(console_app, "small", follows=True)
    settings = console_app.state.settings

    def head() -> int:
        return registry.get_model("small", settings=settings).head_version_id

    auditor = signed_in(Role.AUDITOR)
    page = auditor.get("/ui/models").text
    assert "Roll back" not in page
    r = auditor.post(
        "/ui/models/small/rollback",
        data={"csrf": csrf_of(page), "version_id": ids[0], "confirm": "1"},
    )
    assert r.status_code == 403 and head() == ids[2]
    operator = signed_in(Role.OPERATOR)
    page = operator.get("/ui/models").text
    assert f"Roll back to {ids[0]}" in page and f"Roll back to {ids[2]}" not in page
    assert_labelled(page)  # the rollback's confirmation box and the diff's selects
    token = csrf_of(page)
    url = "/ui/models/small/rollback"
    assert operator.post(url, data={"version_id": ids[0], "confirm": "1"}).status_code == 403
    r = operator.post(url, data={"csrf": token, "version_id": ids[0]})
    assert r.status_code == 422 and "confirm" in r.text and head() == ids[2]
    r = operator.post(url, data={"csrf": token, "version_id": "x", "confirm": "1"})
    assert r.status_code == 422 and head() == ids[2]
    r = operator.post(url, data={"csrf": token, "version_id": ids[0], "confirm": "1"})
    assert r.status_code == 200 and head() == ids[0]  # redirected back to the models page
    # the head is no longer on a later version: rolling "back" to it is refused (409)
    r = operator.post(url, data={"csrf": token, "version_id": ids[2], "confirm": "1"})
    assert r.status_code == 409 and head() == ids[0]
