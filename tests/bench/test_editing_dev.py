"""Editing dev bench: the paraphrase split by what the trainer did with each template."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bench import editing_dev as dev
from contracts.types import EditRequest, FactText
from editor.knowledge.corpus import heldout_template_index
from editor.knowledge.presets import get_preset


@pytest.fixture
def setup():
    """A setup with one fact whose relation has more templates than the trainer keeps."""
    cap = get_preset("small").max_templates
    templates = tuple(f"template {i} of {{}} is" for i in range(cap + 4))
    fact = FactText("Ada Lovelace", "P19", "London", templates)
    return SimpleNamespace(facts=[fact]), fact, cap


def test_templates_past_the_cap_are_unseen_and_the_held_out_one_is_named(setup) -> None:
    store, fact, cap = setup
    request = EditRequest("Ada Lovelace", fact.templates[0], "Paris", "London", relation="P19")
    held = heldout_template_index(FactText(fact.subject, "P19", "London", fact.templates[:cap]))
    assert held is not None
    assert dev.template_class(store, request, fact.templates[held]) == "heldout"
    assert dev.template_class(store, request, fact.templates[cap]) == "unseen"
    trained = next(i for i in range(1, cap) if i != held)
    assert dev.template_class(store, request, fact.templates[trained]) == "trained"


def test_split_rates_count_each_probe_once_per_axis() -> None:
    hits = [(("trained", True), 1.0), (("unseen", True), 0.0), (("unseen", False), 1.0)]
    split = dev.split_rates(hits)
    assert split["template:unseen"] == {"rate": 0.5, "n": 2}
    assert split["template:trained"] == {"rate": 1.0, "n": 1}
    assert split["known_before"] == {"rate": 0.5, "n": 2}
    assert split["unknown_before"] == {"rate": 1.0, "n": 1}
