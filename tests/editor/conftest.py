"""Fixtures for editor tests: an in-test BPE tokenizer and tiny random models of six families."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from editor_helpers import ARCHS, make_corpus, make_tokenizer, save_tiny_model


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    """The in-test corpus."""
    return make_corpus()


@pytest.fixture(scope="session")
def tokenizer_factory() -> Callable[..., object]:
    """Factory `(bos=True) -> tokenizer`."""
    return make_tokenizer


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Saved tiny random models of all six architectures, by model_type."""
    root = tmp_path_factory.mktemp("tiny_models")
    return {arch: save_tiny_model(arch, root / arch) for arch in ARCHS}
