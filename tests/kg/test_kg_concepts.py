"""Concepts: covered facts, anchor suggestion (same kind, no shared fact, nearest), override."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from kg.concepts import (
    anchor_candidates,
    concept_facts,
    retain_facts,
    suggest_anchor,
    unlearn_request,
)
from kg.errors import NotFoundError, ValidationError
from kg.store.sql import SqlGraphStore
from kg.types import Concept, Entity, Fact, Relation, RelationTemplates


def _rel(rid: str, label: str, cloze: str) -> Relation:
    return Relation(rid, label, RelationTemplates(cloze=(cloze,)))


@pytest.fixture
def people(sqlite_store: SqlGraphStore) -> SqlGraphStore:
    """Five people, two cities, two jobs and a company."""
    s = sqlite_store
    s.add_entities(
        [
            Entity("p:ada", "Ada Byron", ("Ada Lovelace",), kind="person"),
            Entity("p:bob", "Bob Stone", kind="person"),
            Entity("p:cy", "Cy Twombly", kind="person"),
            Entity("p:dee", "Dee Dee", kind="person"),
            Entity("p:eve", "Eve Arden", kind="person"),
            Entity("c:london", "London", kind="city"),
            Entity("c:paris", "Paris", kind="city"),
            Entity("j:math", "mathematician", kind="job"),
            Entity("j:paint", "painter", kind="job"),
            Entity("o:acme", "Acme", kind="company"),
        ]
    )
    s.add_relations(
        [
            _rel("born", "place of birth", "{} was born in"),
            _rel("job", "occupation", "{} works as a"),
            _rel("friend", "friend", "{} is a friend of"),
            _rel("hq", "headquarters", "{} is based in"),
        ]
    )
    s.add_facts(
        [
            Fact("p:ada", "born", "c:london"),
            Fact("p:ada", "job", "j:math"),
            Fact("p:bob", "born", "c:london"),  # shares (born, London): never an anchor
            Fact("p:bob", "job", "j:paint"),
            Fact("p:cy", "born", "c:paris"),
            Fact("p:cy", "job", "j:paint"),
            Fact("p:dee", "friend", "p:ada"),  # linked to Ada: never an anchor
            Fact("p:dee", "born", "c:paris"),
            Fact("p:eve", "born", "c:paris"),
            Fact("p:eve", "job", "j:paint"),
            Fact("o:acme", "hq", "c:paris"),  # no common relation with Ada
        ]
    )
    return s


def _fixed_embedder(similarity: dict[str, float]):
    """An embedder whose cosine to the first text is given per name a text starts with."""

    def embed(texts):
        out = [[1.0, 0.0]]
        for t in texts[1:]:
            cos = next((v for k, v in similarity.items() if t.startswith(k)), 0.0)
            out.append([cos, float(np.sqrt(1.0 - cos * cos))])
        return np.asarray(out, dtype=np.float32)

    return embed


def test_concept_facts_by_name_alias_or_entities(people):
    by_alias = Concept("k:ada", "Ada Lovelace")
    assert {f.relation for f in concept_facts(people, by_alias)} == {"born", "job"}
    explicit = Concept("k:x", "someone", entities=("p:cy",))
    assert {f.object for f in concept_facts(people, explicit)} == {"c:paris", "j:paint"}
    with pytest.raises(NotFoundError):
        concept_facts(people, Concept("k:y", "nobody", entities=("p:nope",)))


def test_candidates_share_no_fact_same_kind_and_harmless(people):
    ada = Concept("k:ada", "Ada Byron")
    assert anchor_candidates(people, ada) == ["p:cy", "p:eve"]
    people.add_concept(Concept("k:eve", "Eve Arden"))  # marked to forget: not harmless
    assert anchor_candidates(people, ada) == ["p:cy"]


def test_suggestion_is_the_nearest_candidate(people):
    ada = Concept("k:ada", "Ada Byron")
    pick = suggest_anchor(people, ada, embed=_fixed_embedder({"Cy": 0.1, "Eve": 0.9}))
    assert pick is not None and pick.entity_id == "p:eve" and "sharing no fact" in pick.reason
    pick = suggest_anchor(people, ada, embed=_fixed_embedder({"Cy": 0.9, "Eve": 0.1}))
    assert pick is not None and pick.entity_id == "p:cy"


@pytest.mark.slow  # loads the real sentence encoder
def test_suggestion_with_the_offline_sentence_encoder(people):
    pick = suggest_anchor(people, Concept("k:ada", "Ada Byron"))
    assert pick is not None and pick.entity_id in {"p:cy", "p:eve"}
    assert -1.0 <= pick.score <= 1.0


def test_no_candidate_and_unknown_concept(people):
    acme = Concept("k:acme", "Acme")
    assert suggest_anchor(people, acme, embed=_fixed_embedder({})) is None
    with pytest.raises(ValidationError):
        anchor_candidates(people, Concept("k:z", "Zed"))


def test_curator_override_is_logged_and_checked(people):
    people.add_concept(Concept("k:ada", "Ada Byron", entities=("p:ada",)))
    got = people.set_concept_redirect("k:ada", "p:cy", who="curator", why="override")
    assert got.redirect_to == "p:cy" and people.get_concept("k:ada").entities == ("p:ada",)
    entry = people.change_log()[-1]
    assert entry.action == "set_concept_redirect" and entry.payload["redirect_to"] == "p:cy"
    with pytest.raises(NotFoundError):
        people.set_concept_redirect("k:ada", "p:nobody", who="curator", why="typo")
    with pytest.raises(NotFoundError):
        people.set_concept_redirect("k:missing", "p:cy", who="curator", why="typo")
    assert people.get_concept("k:ada").redirect_to == "p:cy"  # the bad calls lost nothing


def test_unlearn_request_and_retain_facts(people):
    ada = Concept("k:ada", "Ada Byron", ("Ada Lovelace",), redirect_to="p:cy")
    request = unlearn_request(people, ada, n_retain=10)
    assert request.anchor == "Cy Twombly" and request.request_id == "k:ada"
    assert "Ada Byron was born in London." in request.forget_texts
    assert all("Ada" not in t and "Dee" not in t for t in request.retain_texts)
    facts = retain_facts(people, [ada], 100)
    assert facts and all("p:ada" not in (f.subject, f.object) for f in facts)


def test_old_concepts_table_gains_the_entities_column(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    store = SqlGraphStore(url)
    with store.engine.begin() as conn:  # a database made before the graph had migrations
        conn.execute(text("ALTER TABLE concepts DROP COLUMN entities"))
        conn.execute(text("DROP TABLE kg_alembic_version"))
    store.close()
    again = SqlGraphStore(url)
    again.add_concept(Concept("k:a", "A", entities=("x",)))
    assert again.get_concept("k:a").entities == ("x",)
