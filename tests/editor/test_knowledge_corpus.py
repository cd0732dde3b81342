"""The knowledge-model corpus: held-out templates, passages, determinism."""

from __future__ import annotations

from contracts.types import FactText
from editor.knowledge.corpus import (
    PassageSampler,
    eval_pairs,
    heldout_template_index,
    training_templates,
)

TEMPLATES = ("{} was born in", "{} is a native of", "The birthplace of {} is", "{} hails from")


def _facts() -> list[FactText]:
    return [
        FactText("Ada Lovelace", "P19", "London", TEMPLATES),
        FactText(
            "Ada Lovelace",
            "P27",
            "England",
            ("{} is a citizen of", "{} holds a passport of", "{} belongs to"),
        ),
        FactText("Alan Turing", "P19", "Maida Vale", TEMPLATES),
    ]


def test_heldout_index_is_stable_and_never_the_edit_prompt():
    for fact in _facts():
        idx = heldout_template_index(fact)
        assert idx == heldout_template_index(fact)
        assert idx is not None and 1 <= idx < len(fact.templates)
        assert fact.templates[idx] not in training_templates(fact)
        assert fact.templates[0] in training_templates(fact)


def test_too_few_templates_hold_nothing_out():
    fact = FactText("X Y", "r", "Z", ("{} a", "{} b"))
    assert heldout_template_index(fact) is None
    assert training_templates(fact) == fact.templates
    assert eval_pairs([fact], heldout=True) == []


def test_passage_states_every_fact_of_the_subject_without_heldout_wording():
    sampler = PassageSampler(_facts(), statements_per_fact=2, seed=3)
    passage = sampler.passage("Ada Lovelace")
    assert "London." in passage and "England." in passage
    for fact in _facts()[:2]:
        held = fact.templates[heldout_template_index(fact)]
        assert held.format(fact.subject) not in passage
    assert passage.count("Ada Lovelace") == 4


def test_sampler_is_deterministic_per_seed():
    a = PassageSampler(_facts(), seed=7).batch(20)
    b = PassageSampler(_facts(), seed=7).batch(20)
    c = PassageSampler(_facts(), seed=8).batch(20)
    assert a == b
    assert a != c


def test_eval_pairs_use_first_or_heldout_template():
    facts = _facts()
    first = eval_pairs(facts, heldout=False)
    assert first[0] == ("Ada Lovelace was born in", "London")
    held = eval_pairs(facts, heldout=True)
    assert len(held) == 3
    assert all(prompt != first[i][0] for i, (prompt, _) in enumerate(held))
