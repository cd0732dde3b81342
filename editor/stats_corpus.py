"""A statistics corpus on disk: the texts the second moments `E[k kᵀ]` are taken over.

The graph's verbalised facts are the default corpus; a real model's MLP keys need general
text (the released ROME statistics come from 100,000 Wikipedia samples). Accepted sources:

* a text file: one sample per non-empty line;
* a JSONL file (`.jsonl`): one JSON object per line with a string `text` field;
* a directory of `.txt` files: one sample per file (sorted by name).

A directory written by `datasets`' `save_to_disk` is recognised and refused with a clear
message: reading it needs the `datasets` package, which kgedit does not depend on (export
its `text` column to JSONL instead).

The samples are drawn deterministically: when the source holds more than the target count,
a seeded choice of that many (kept in source order); otherwise all of them. The drawn texts'
sha256 goes into the statistics cache key, so a changed corpus never reuses old statistics.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from editor.errors import EditorError
from editor.stats import corpus_sha256

# Files `datasets.Dataset.save_to_disk` writes beside its Arrow shards.
SAVED_DATASET_FILES = ("dataset_info.json", "state.json", "dataset_dict.json")


@dataclass(frozen=True)
class CorpusSample:
    """Texts drawn from a corpus source, with where they came from and how many it held."""

    source: str
    texts: list[str]
    available: int
    sha256: str

    def describe(self) -> dict[str, object]:
        """Return a JSON-ready summary (no texts)."""
        return {
            "source": self.source,
            "samples": len(self.texts),
            "available": self.available,
            "sha256": self.sha256,
        }


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, line) of a UTF-8 file, or raise a one-line `EditorError`."""
    try:
        with path.open(encoding="utf-8") as handle:
            yield from enumerate(handle, 1)
    except UnicodeDecodeError as exc:
        raise EditorError(f"statistics corpus {path} is not UTF-8 text: {exc.reason}") from None


def _jsonl_text(path: Path, number: int, line: str) -> str:
    """Return the `text` field of one JSONL line, or raise naming the line."""
    try:
        row = json.loads(line)
    except ValueError as exc:
        raise EditorError(f"statistics corpus {path} line {number}: not JSON ({exc})") from None
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        raise EditorError(
            f"statistics corpus {path} line {number}: expected an object with a string 'text' field"
        )
    return row["text"]


def read_samples(path: str | Path) -> list[str]:
    """Return every non-empty sample of a corpus source (file or directory), in order."""
    path = Path(path)
    if not path.exists():
        raise EditorError(f"statistics corpus not found: {path}")
    if path.is_dir():
        if any((path / name).is_file() for name in SAVED_DATASET_FILES):
            raise EditorError(
                f"statistics corpus {path} is a `datasets` save_to_disk directory; kgedit "
                "reads text files and JSONL only (write its 'text' column to a .jsonl file)"
            )
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix == ".txt")
        if not files:
            raise EditorError(f"statistics corpus directory {path} holds no .txt files")
        texts = ["".join(line for _, line in _lines(f)).strip() for f in files]
    elif path.suffix.lower() == ".jsonl":
        texts = [
            _jsonl_text(path, number, line).strip() for number, line in _lines(path) if line.strip()
        ]
    else:
        texts = [line.strip() for _, line in _lines(path)]
    texts = [t for t in texts if t]
    if not texts:
        raise EditorError(f"statistics corpus {path} holds no text")
    return texts


def sample_corpus(path: str | Path, n_samples: int, seed: int = 0) -> CorpusSample:
    """Return `n_samples` texts drawn deterministically from a corpus source (all if fewer)."""
    if n_samples < 1:
        raise EditorError(f"statistics corpus sample count must be positive, not {n_samples}")
    texts = read_samples(path)
    available = len(texts)
    if available > n_samples:
        keep = sorted(random.Random(seed).sample(range(available), n_samples))
        texts = [texts[i] for i in keep]
    return CorpusSample(str(path), texts, available, corpus_sha256(texts))
