"""A small geography graph whose relations compose into multi-hop prompts (test helper)."""

from __future__ import annotations

import numpy as np

from kg.types import Entity, Fact, Relation, RelationTemplates

ENTITIES = {
    "spike": "Spike Hughes",
    "max": "Max Mosley",
    "ada": "Ada Lovelace",
    "london": "London",
    "philly": "Philadelphia",
    "paris": "Paris",
    "uk": "United Kingdom",
    "usa": "United States",
    "france": "France",
    "english": "English",
    "french": "French",
    "washington": "Washington",
}


def rel(rid, label, cloze, question=(), functional=True) -> Relation:
    """Return a relation with these cloze and question templates."""
    return Relation(rid, label, RelationTemplates(cloze=cloze, question=question), functional)


BIRTH_CLOZE = ("{} was born in", "{} originates from", "The birthplace of {} is")
"""The place-of-birth cloze templates of the kg test graphs."""
CAPITAL = rel("P36", "capital", ("The capital of {} is",), ("What is the capital of {}?",))


def relations() -> list[Relation]:
    """Return birthplace, country, capital, official language and spoken languages."""
    return [
        rel("P19", "place of birth", BIRTH_CLOZE, ("What is the place of birth of {}?",)),
        rel(
            "P17", "country", ("{} is located in the country of",), ("What is the country of {}?",)
        ),
        CAPITAL,
        rel("P37", "official language", ("The official language of {} is",)),
        rel("P1412", "languages spoken", ("{} speaks",), functional=False),
    ]


FACTS = [
    ("spike", "P19", "london"),
    ("max", "P19", "london"),
    ("ada", "P19", "london"),
    ("spike", "P1412", "english"),
    ("london", "P17", "uk"),
    ("philly", "P17", "usa"),
    ("paris", "P17", "france"),
    ("uk", "P37", "english"),
    ("usa", "P37", "english"),
    ("france", "P37", "french"),
    ("uk", "P36", "london"),
    ("usa", "P36", "washington"),
    ("france", "P36", "paris"),
    ("washington", "P17", "usa"),
]


def build(store) -> None:
    """Fill a store with the geography graph."""
    store.add_entities([Entity(i, n) for i, n in ENTITIES.items()])
    store.add_relations(relations())
    store.add_facts([Fact(*t, source="geo") for t in FACTS])


def bag_embed(texts):
    """A deterministic bag-of-words embedder (no model load) for planner tests."""
    vocab = sorted({w for t in texts for w in t.lower().split()})
    out = np.zeros((len(texts), max(1, len(vocab))), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.lower().split():
            out[i, vocab.index(word)] += 1.0
    # project onto a fixed width so vectors from different calls are comparable
    width = 64
    fixed = np.zeros((len(texts), width), dtype=np.float32)
    for j, word in enumerate(vocab):
        fixed[:, hash_word(word) % width] += out[:, j]
    norms = np.linalg.norm(fixed, axis=1, keepdims=True)
    return fixed / np.where(norms == 0, 1.0, norms)


def hash_word(word: str) -> int:
    """Return a stable hash of a word."""
    import hashlib

    return int.from_bytes(hashlib.md5(word.encode()).digest()[:4], "big")
