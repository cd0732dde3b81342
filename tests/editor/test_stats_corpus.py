"""The statistics corpus from disk: formats, deterministic sampling, one-line errors, and its
use by `editor.prepare` with statistics cached per corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from editor.errors import EditorError
from editor.loading import load_model
from editor.prepare import prepare
from editor.stats_corpus import read_samples, sample_corpus


def _write_jsonl(path, texts) -> None:
    path.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(texts)))


def test_text_jsonl_and_directory_sources_read_alike(tmp_path, corpus) -> None:
    lines = tmp_path / "c.txt"
    lines.write_text("\n".join(corpus) + "\n\n   \n")
    rows = tmp_path / "c.jsonl"
    _write_jsonl(rows, corpus)
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, text in enumerate(corpus):
        (folder / f"{i:03d}.txt").write_text(text + "\n")
    (folder / "notes.md").write_text("not a sample")
    assert read_samples(lines) == read_samples(rows) == read_samples(folder) == corpus


def test_sampling_is_deterministic_and_keeps_source_order(tmp_path, corpus) -> None:
    path = tmp_path / "c.jsonl"
    _write_jsonl(path, corpus)
    a, b = sample_corpus(path, 10), sample_corpus(path, 10)
    assert a == b and len(a.texts) == 10 and a.available == len(corpus)
    assert a.texts == [t for t in corpus if t in a.texts]  # source order
    assert sample_corpus(path, 10, seed=1).sha256 != a.sha256
    whole = sample_corpus(path, 10_000)
    assert whole.texts == corpus and whole.describe()["samples"] == len(corpus)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.txt", None, "statistics corpus not found: "),
        ("empty.txt", "\n \n", "holds no text"),
        ("bad.jsonl", '{"text": "ok"}\n{oops\n', "bad.jsonl line 2: not JSON"),
        ("notext.jsonl", '{"text": "ok"}\n\n{"body": "x"}\n', "line 3: expected an object"),
        ("list.jsonl", '["text"]\n', "line 1: expected an object with a string 'text'"),
        ("binary.txt", b"\xff\xfe\x00", "is not UTF-8 text"),
    ],
)
def test_bad_corpora_give_one_line_errors(tmp_path, name, content, message) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(EditorError, match=message) as caught:
        sample_corpus(path, 5)
    assert "\n" not in str(caught.value)


def test_directories_without_samples_are_refused(tmp_path) -> None:
    with pytest.raises(EditorError, match=r"holds no \.txt files"):
        read_samples(tmp_path)
    with pytest.raises(EditorError, match="must be positive"):
        sample_corpus(tmp_path, 0)


def _save_shards(folder: Path, shards: list[list[str | None]], column: str = "text") -> None:
    """Write a directory in the layout `datasets`' `save_to_disk` uses: Arrow stream shards
    named in `state.json`, beside `dataset_info.json`."""
    import pyarrow as pa

    folder.mkdir(parents=True)
    names = [f"data-{i:05d}-of-{len(shards):05d}.arrow" for i in range(len(shards))]
    for name, texts in zip(names, shards, strict=True):
        table = pa.table({column: pa.array(texts, type=pa.string())})
        with (
            pa.OSFile(str(folder / name), "wb") as sink,
            pa.ipc.new_stream(sink, table.schema) as out,
        ):
            out.write_table(table)
    (folder / "state.json").write_text(
        json.dumps({"_data_files": [{"filename": n} for n in names]})
    )
    (folder / "dataset_info.json").write_text("{}")


def test_a_saved_dataset_is_read_shard_by_shard(tmp_path) -> None:
    _save_shards(tmp_path / "ds", [["first text", None, ""], ["second text", " third "]])
    assert read_samples(tmp_path / "ds") == ["first text", "second text", "third"]
    drawn = sample_corpus(tmp_path / "ds", 2)
    assert drawn.available == 3 and len(drawn.texts) == 2
    # a DatasetDict: its train split is read
    _save_shards(tmp_path / "dd" / "train", [["from train"]])
    (tmp_path / "dd" / "dataset_dict.json").write_text(json.dumps({"splits": ["train"]}))
    assert read_samples(tmp_path / "dd") == ["from train"]


def test_a_saved_dataset_that_cannot_be_read_is_refused_in_one_line(tmp_path) -> None:
    _save_shards(tmp_path / "other", [["x"]], column="content")
    (tmp_path / "dd").mkdir()
    (tmp_path / "dd" / "dataset_dict.json").write_text(json.dumps({"splits": ["test"]}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "state.json").write_text(
        json.dumps({"_data_files": [{"filename": "a.arrow"}]})
    )
    (tmp_path / "broken" / "a.arrow").write_bytes(b"not arrow")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "state.json").write_text("{}")
    cases = {
        "other": "expected a string column 'text'",
        "dd": "without a 'train' split",
        "broken": "is not readable",
        "empty": "lists no data files",
    }
    for folder, message in cases.items():
        with pytest.raises(EditorError, match=message) as caught:
            read_samples(tmp_path / folder)
        assert "\n" not in str(caught.value)


def test_prepare_draws_the_corpus_file_and_caches_per_corpus(model_dirs, corpus, tmp_path):
    model, tok = load_model(model_dirs["gpt2"])
    path = tmp_path / "c.jsonl"
    _write_jsonl(path, corpus)
    hp = {"mom2_n_samples": 40, "layer": 0}
    ready = prepare("rome", model, tok, path, model_key="k", cache_dir=tmp_path / "cache",
                    overrides=hp)  # fmt: skip
    assert ready.corpus == sample_corpus(path, 40).describe()
    first = ready.second_moment(0)
    assert not first.from_cache and first.meta["n_texts"] == 40
    # the same file again: from the cache; the same texts as a list: the same statistic
    again = prepare("rome", model, tok, path, model_key="k", cache_dir=tmp_path / "cache",
                    overrides=hp).second_moment(0)  # fmt: skip
    assert again.from_cache and again.meta["key"] == first.meta["key"]
    as_list = prepare("rome", model, tok, sample_corpus(path, 40).texts, model_key="k",
                      cache_dir=tmp_path / "cache", overrides=hp).second_moment(0)  # fmt: skip
    assert as_list.from_cache and as_list.meta["key"] == first.meta["key"]
    # another corpus gets its own statistic
    _write_jsonl(path, list(reversed(corpus))[:30])
    other = prepare("rome", model, tok, path, model_key="k", cache_dir=tmp_path / "cache",
                    overrides=hp).second_moment(0)  # fmt: skip
    assert not other.from_cache and other.meta["key"] != first.meta["key"]
    # a corpus path that does not exist is refused in one line
    with pytest.raises(EditorError, match="statistics corpus not found"):
        prepare("rome", model, tok, tmp_path / "nope.txt", model_key="k",
                cache_dir=tmp_path / "cache", overrides=hp)  # fmt: skip
