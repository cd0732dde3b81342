"""UIPE-style related-knowledge discovery: k-hop graph signal fused with text similarity."""

from __future__ import annotations

import numpy as np
import pytest

from kg.errors import ValidationError
from kg.related import RelatedConfig, related_facts
from kg.types import Fact, Relation, RelationTemplates
from kg.verbalise import Names, statement

NAMES = {
    "tolkien": "J. R. R. Tolkien",
    "hobbit": "The Hobbit",
    "lotr": "The Lord of the Rings",
    "oxford": "Oxford",
    "uk": "United Kingdom",
    "allen": "Allen & Unwin",
    "bloemfontein": "Bloemfontein",
    "sa": "South Africa",
    "jazz": "jazz",
    "miles": "Miles Davis",
}


def _rel(rid: str, cloze: str) -> Relation:
    return Relation(rid, rid, RelationTemplates(cloze=(cloze,)))


RELATIONS = {
    "author": _rel("author", "{} was written by"),
    "born_in": _rel("born_in", "{} was born in"),
    "worked_in": _rel("worked_in", "{} worked in"),
    "country": _rel("country", "{} is located in"),
    "publisher": _rel("publisher", "{} was published by"),
    "genre": _rel("genre", "{} played"),
}

FACTS = [
    Fact("hobbit", "author", "tolkien"),
    Fact("lotr", "author", "tolkien"),
    Fact("tolkien", "born_in", "bloemfontein"),
    Fact("tolkien", "worked_in", "oxford"),
    Fact("bloemfontein", "country", "sa"),
    Fact("oxford", "country", "uk"),
    Fact("hobbit", "publisher", "allen"),
    Fact("miles", "genre", "jazz"),  # unconnected: never related
]
READER = Names(NAMES, RELATIONS)


def _text(fact: Fact) -> str:
    return statement(fact, READER)


def _bag_embed(texts):
    """A deterministic bag-of-words embedder, so graph logic is tested without the model."""
    vocab = sorted({w for t in NAMES.values() for w in t.lower().split()} | {"written", "born"})
    out = np.zeros((len(texts), len(vocab)), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.lower().split():
            if word in vocab:
                out[i, vocab.index(word)] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)


def test_scores_neighbourhood_with_reasons() -> None:
    config = RelatedConfig(hops=2, threshold=0.0, cap=50)
    found = related_facts("tolkien", FACTS, _text, config=config, embed=_bag_embed)
    by_triple = {r.fact.triple: r for r in found}
    assert ("miles", "genre", "jazz") not in by_triple
    direct = by_triple[("hobbit", "author", "tolkien")]
    assert direct.hops == 1 and direct.direct and direct.graph_score == 1.0
    assert "directly" in direct.reason and "graph 1.00" in direct.reason
    second = by_triple[("oxford", "country", "uk")]
    assert second.hops == 2 and second.graph_score == pytest.approx(0.5)
    assert second.via == (("tolkien", "worked_in", "oxford"),)
    assert "2 hops" in second.reason and "worked_in → country" in second.reason
    assert [r.score for r in found] == sorted((r.score for r in found), reverse=True)
    for r in found:
        assert r.score == pytest.approx(
            0.5 * r.graph_score + 0.5 * max(0.0, r.text_score), abs=1e-5
        )


def test_relation_weights_threshold_and_cap() -> None:
    weights = {"publisher": 0.0, "worked_in": 0.2}
    config = RelatedConfig(hops=2, relation_weights=weights, threshold=0.0, alpha=1.0)
    found = {
        r.fact.triple: r
        for r in related_facts("tolkien", FACTS, _text, config=config, embed=_bag_embed)
    }
    assert found[("tolkien", "worked_in", "oxford")].graph_score == pytest.approx(0.2)
    assert found[("oxford", "country", "uk")].graph_score == pytest.approx(0.1)
    assert found[("hobbit", "publisher", "allen")].graph_score == 0.0
    strict = RelatedConfig(hops=2, relation_weights=weights, threshold=0.45, alpha=1.0)
    kept = related_facts("tolkien", FACTS, _text, config=strict, embed=_bag_embed)
    assert all(r.score >= 0.45 for r in kept)
    assert ("oxford", "country", "uk") not in {r.fact.triple for r in kept}
    capped = related_facts(
        "tolkien", FACTS, _text, config=RelatedConfig(threshold=0.0, cap=2), embed=_bag_embed
    )
    assert len(capped) == 2


def test_hops_limit_and_fanout() -> None:
    one = related_facts(
        "tolkien", FACTS, _text, config=RelatedConfig(hops=1, threshold=0.0), embed=_bag_embed
    )
    assert {r.hops for r in one} == {1} and len(one) == 4
    hub = [Fact(f"book{i:03d}", "author", "tolkien") for i in range(30)]
    names = Names({**NAMES, **{f"book{i:03d}": f"Book {i}" for i in range(30)}}, RELATIONS)
    cut = related_facts(
        "tolkien",
        hub,
        lambda f: statement(f, names),
        config=RelatedConfig(hops=1, threshold=0.0, fanout=10),
        embed=_bag_embed,
    )
    assert [r.fact.subject for r in cut] == [f"book{i:03d}" for i in range(10)]


@pytest.mark.slow  # loads the real sentence encoder
def test_text_similarity_from_real_encoder_ranks_semantic_neighbours() -> None:
    cache: dict[str, np.ndarray] = {}
    config = RelatedConfig(hops=2, threshold=0.0, alpha=0.0)
    found = related_facts("tolkien", FACTS, _text, config=config, cache=cache)
    assert len(cache) >= len(found)
    scores = {r.fact.triple: r.text_score for r in found}
    # Tolkien's own writing is closer to his profile than the country of Oxford
    assert scores[("lotr", "author", "tolkien")] > scores[("oxford", "country", "uk")]
    calls: list[int] = []

    def counting(texts):
        calls.append(len(texts))
        raise AssertionError("every vector should come from the cache")

    again = related_facts("tolkien", FACTS, _text, config=config, cache=cache, embed=counting)
    assert [r.fact.triple for r in again] == [r.fact.triple for r in found] and calls == []


def test_deterministic_and_target_text() -> None:
    config = RelatedConfig(threshold=0.0)
    a = related_facts("tolkien", FACTS, _text, config=config, embed=_bag_embed)
    b = related_facts("tolkien", list(reversed(FACTS)), _text, config=config, embed=_bag_embed)
    assert a == b
    c = related_facts(
        "tolkien", FACTS, _text, config=config, embed=_bag_embed, target_text="Oxford"
    )
    text = {r.fact.triple: r.text_score for r in c}
    assert text[("tolkien", "worked_in", "oxford")] > text[("hobbit", "author", "tolkien")]


def test_unknown_target_and_bad_config() -> None:
    assert related_facts("nobody", FACTS, _text, embed=_bag_embed) == []
    with pytest.raises(ValidationError, match="forget target"):
        related_facts([], FACTS, _text, embed=_bag_embed)
    with pytest.raises(ValidationError, match="hops"):
        RelatedConfig(hops=0)
    with pytest.raises(ValidationError, match="alpha"):
        RelatedConfig(alpha=1.5)
    with pytest.raises(ValidationError, match="relation 'x'"):
        RelatedConfig(relation_weights={"x": -1})
    with pytest.raises(ValidationError, match="cap"):
        RelatedConfig(cap=0)


def test_retracted_facts_are_ignored() -> None:
    facts = [*FACTS, Fact("tolkien", "born_in", "uk", status="retracted")]
    found = related_facts(
        "tolkien", facts, _text, config=RelatedConfig(threshold=0.0), embed=_bag_embed
    )
    assert ("tolkien", "born_in", "uk") not in {r.fact.triple for r in found}
