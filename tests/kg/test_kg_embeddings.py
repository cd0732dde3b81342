"""The offline sentence encoder: loads from site-packages, normalised vectors, sane neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from kg.embeddings import EMBEDDING_DIM, cosine_matrix, embed_texts, model_dir


def test_model_dir_is_local_package():
    assert (model_dir() / "model.safetensors").is_file()


def test_vectors_are_normalised_and_meaningful():
    vecs = embed_texts(
        ["Paris is the capital of France.", "The capital of France is Paris.", "I like jazz."]
    )
    assert vecs.shape == (3, EMBEDDING_DIM)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    sims = cosine_matrix(vecs, vecs)
    assert sims[0, 1] > 0.8 > sims[0, 2]


def test_empty_and_bad_input():
    assert embed_texts([]).shape == (0, EMBEDDING_DIM)
    with pytest.raises(TypeError):
        embed_texts("one string")
