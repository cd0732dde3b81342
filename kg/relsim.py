"""Relation similarity from the graph itself, for FINE-KED-style easy / middle / hard buckets.

FINE-KED buckets a same-subject fact (s, r', o') by how related r' is to the edited relation r:
closely related relations (place of birth vs place of death) are the hard cases. No sentence
encoder can be downloaded here, so the default embedding of a relation is built from the graph:

- a TF-IDF vector of the words of its label and templates (what the relation says), and
- the distribution of its objects (what it points at: cities, languages, people).

Both parts are L2-normalised and weighted equally, so the cosine of two relation vectors is
the mean of the two cosines. Any other embedder (e.g. sentence-transformers, when a model is
on disk) can be passed in instead. Bucket thresholds are the tertiles of the similarities of
all relation pairs of the graph, so "hard" means "among the most related third in this graph".
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from kg.types import Relation

EASY, MIDDLE, HARD = "easy", "middle", "hard"
BUCKETS = (EASY, MIDDLE, HARD)

RelationEmbedder = Callable[[Sequence[Relation]], np.ndarray]

_WORD = re.compile(r"[a-z]+")
_STOP_WORDS = (
    "a an and are as at be by for from in is it its of on or that the their this to was "
    "were what which who whom whose where when how name names"
)
_STOP = frozenset(_STOP_WORDS.split(" "))


def _words(relation: Relation) -> list[str]:
    """Return the content words of a relation's label and templates."""
    texts = [relation.label, *relation.templates.cloze, *relation.templates.question]
    words: list[str] = []
    for text in texts:
        words += [w for w in _WORD.findall(text.casefold()) if w not in _STOP and len(w) > 1]
    return words


def _tfidf(docs: Sequence[Counter[str]]) -> np.ndarray:
    """Return L2-normalised TF-IDF rows (n_docs, vocab) of word-count documents."""
    vocab = sorted({w for doc in docs for w in doc})
    index = {w: i for i, w in enumerate(vocab)}
    df = Counter(w for doc in docs for w in doc)
    out = np.zeros((len(docs), max(1, len(vocab))))  # (R, W)
    for row, doc in enumerate(docs):
        total = sum(doc.values()) or 1
        for word, count in doc.items():
            idf = math.log((1 + len(docs)) / (1 + df[word])) + 1.0
            out[row, index[word]] = count / total * idf
    return _normalise(out)


def _normalise(matrix: np.ndarray) -> np.ndarray:
    """Return the rows of `matrix` scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)  # (R, 1)
    return matrix / np.where(norms == 0, 1.0, norms)


def graph_relation_vectors(
    relations: Sequence[Relation], objects: Mapping[str, Sequence[str]]
) -> np.ndarray:
    """Return (R, D) unit vectors: half words of label and templates, half object distribution."""
    text = _tfidf([Counter(_words(r)) for r in relations])  # (R, W)
    object_ids = sorted({o for r in relations for o in objects.get(r.id, ())})
    col = {o: i for i, o in enumerate(object_ids)}
    dist = np.zeros((len(relations), max(1, len(object_ids))))  # (R, O)
    for row, relation in enumerate(relations):
        for obj in objects.get(relation.id, ()):
            dist[row, col[obj]] += 1.0
    dist = _normalise(dist)
    both = np.concatenate([text, dist], axis=1) * math.sqrt(0.5)  # (R, W + O)
    return _normalise(both)


class RelationSimilarity:
    """Cosine similarity between the relations of a graph and the easy/middle/hard buckets."""

    def __init__(
        self,
        relations: Sequence[Relation],
        objects: Mapping[str, Sequence[str]],
        embed: RelationEmbedder | None = None,
    ) -> None:
        self.ids = [r.id for r in relations]
        self._index = {rid: i for i, rid in enumerate(self.ids)}
        vectors = embed(relations) if embed else graph_relation_vectors(relations, objects)
        vectors = _normalise(np.asarray(vectors, dtype=np.float64))  # (R, D)
        self.matrix = vectors @ vectors.T  # (R, R)
        upper = self.matrix[np.triu_indices(len(self.ids), k=1)]  # (R(R-1)/2,)
        if upper.size:
            low, high = np.quantile(upper, [1 / 3, 2 / 3])
        else:
            low, high = 1 / 3, 2 / 3
        self.thresholds = (float(low), float(high))

    def similarity(self, a: str, b: str) -> float:
        """Return the cosine similarity of two relations (0 if either is unknown)."""
        if a not in self._index or b not in self._index:
            return 0.0
        return float(self.matrix[self._index[a], self._index[b]])

    def bucket(self, edited: str, other: str) -> str:
        """Return "hard" for the most related third of relation pairs, "easy" for the least."""
        value = self.similarity(edited, other)
        low, high = self.thresholds
        if value > high:
            return HARD
        if value > low:
            return MIDDLE
        return EASY
