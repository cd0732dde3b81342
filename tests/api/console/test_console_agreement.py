"""The model's answers in the console on the trained tiny model (slow): the entity page shows
each fact's verdict and answer from the agreement route, and the model's agreement view
counts the whole graph, both agreeing with the API's own JSON."""

from __future__ import annotations

import pytest
from conftest import sign_in
from fastapi.testclient import TestClient
from markupsafe import escape

from api.keys import Role

pytestmark = pytest.mark.slow


def test_the_entity_page_and_the_agreement_view_show_the_models_answers(tiny_console):
    app, keys, model = tiny_console.app, tiny_console.keys, tiny_console.model
    subject = app.state.store.list_facts()[0].subject
    with TestClient(app) as client:
        assert sign_in(client, keys[Role.OPERATOR]).status_code == 303
        api = client.get(
            f"/v1/models/{model}/agreement",
            params={"entity": subject, "facts": True},
            headers={"X-API-Key": keys[Role.OPERATOR]},
        ).json()
        assert api["verdicts"]
        html = client.get(f"/ui/entities/{subject}").text
        assert f'<option value="{model}" selected>' in html and f"{model} says" in html
        for v in api["verdicts"]:
            assert f"verdict-{v['status']}" in html
            assert str(escape(v["answer"])) in html
        assert f"{api.get('agrees', 0)} of {api['facts']} facts agree" in html
        whole = client.get(
            f"/v1/models/{model}/agreement", headers={"X-API-Key": keys[Role.OPERATOR]}
        ).json()
        html = client.get(f"/ui/models/{model}/agreement").text
        assert f"{whole['facts']} facts asked" in html
        for c in whole["conflicts"][:5]:
            assert str(escape(c["subject_name"])) in html
