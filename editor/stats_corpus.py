"""A statistics corpus on disk: the texts the second moments `E[k kᵀ]` are taken over.

The graph's verbalised facts are the default corpus; a real model's MLP keys need general
text (the released ROME statistics come from 100,000 Wikipedia samples). Accepted sources:

* a text file: one sample per non-empty line;
* a JSONL file (`.jsonl`): one JSON object per line with a string `text` field;
* a directory of `.txt` files: one sample per file (sorted by name).

* a directory written by `datasets`' `save_to_disk` (a `Dataset`, or a `DatasetDict` whose
  `train` split is read): its string column `text`, read from the Arrow shards its
  `state.json` lists with `pyarrow` (the `corpus` extra, also in `dev`), without importing
  `datasets`.

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
SAVED_SPLIT = "train"  # the split read from a saved `DatasetDict`


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
            return _nonempty(path, saved_dataset_texts(path))
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
    return _nonempty(path, texts)


def _nonempty(path: Path, texts: list[str]) -> list[str]:
    """Return the non-empty texts (stripped), or raise when none is left."""
    texts = [t.strip() for t in texts if t and t.strip()]
    if not texts:
        raise EditorError(f"statistics corpus {path} holds no text")
    return texts


def saved_dataset_texts(path: Path) -> list[str]:
    """Return the `text` column of a `save_to_disk` directory (a `DatasetDict`: its `train`
    split), shard by shard in `state.json` order."""
    if (path / "dataset_dict.json").is_file():
        splits = _json_file(path / "dataset_dict.json").get("splits", [])
        if SAVED_SPLIT not in splits:
            raise EditorError(
                f"statistics corpus {path} is a saved DatasetDict without a '{SAVED_SPLIT}' "
                f"split (it has {splits}); point at one split's directory"
            )
        path = path / SAVED_SPLIT
    state = _json_file(path / "state.json")
    shards = [f.get("filename") for f in state.get("_data_files", [])]
    if not shards or not all(isinstance(f, str) for f in shards):
        raise EditorError(f"statistics corpus {path}: state.json lists no data files")
    try:
        import pyarrow as pa
    except ImportError:
        raise EditorError(
            f"statistics corpus {path} is a `datasets` save_to_disk directory; reading it needs "
            "pyarrow: pip install 'kgedit[corpus]' (or write its 'text' column to .jsonl)"
        ) from None
    texts: list[str] = []
    for name in shards:
        shard = path / name
        try:
            with pa.memory_map(str(shard)) as source:
                table = pa.ipc.open_stream(source).read_all()
        except (OSError, pa.ArrowInvalid) as exc:
            raise EditorError(f"statistics corpus shard {shard} is not readable: {exc}") from None
        names = table.column_names
        if "text" not in names or not pa.types.is_string(table.schema.field("text").type):
            raise EditorError(
                f"statistics corpus {path}: expected a string column 'text', have {names}"
            )
        texts += [t for t in table.column("text").to_pylist() if isinstance(t, str)]
    return texts


def _json_file(path: Path) -> dict:
    """Return a JSON object file's content, or raise a one-line `EditorError`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EditorError(f"statistics corpus file {path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EditorError(f"statistics corpus file {path} is not a JSON object")
    return data


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
