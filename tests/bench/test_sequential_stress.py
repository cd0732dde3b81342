"""Sequential stress bench: overlapping runs of different methods share one results file."""

from __future__ import annotations

import json

from bench import common
from bench import sequential_stress as ss


def _data() -> dict:
    return {
        "date": "d",
        "machine": "m",
        "preset": "small",
        "edits": 1000,
        "batch_size": 1,
        "same_subject": False,
        "results": {},
    }


def _result(done: int, finished: bool) -> dict:
    point = {"edits": 100, "first_100_rewrite": 0.8, "untouched_recall": 0.5}
    return {
        "hparams": {"layers": [0, 1]},
        "points": [point],
        "done": done,
        "landed": 0.9,
        "untouched_recall_before": 0.95,
        "seconds_per_edit": 1.0,
        "finished": finished,
    }


def test_record_keeps_the_other_methods_results(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(ss, "RESULTS", tmp_path)
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    one, two = _data(), _data()  # two processes, each with its own view
    ss.record("out", one, "memit", _result(100, False))
    ss.record("out", two, "alphaedit", _result(100, False))
    ss.record("out", one, "memit", _result(200, False))
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["results"]["memit"]["done"] == 200
    assert saved["results"]["alphaedit"]["done"] == 100
    assert len(saved["load_average"]) == 3


def test_record_drops_results_of_another_setup(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(ss, "RESULTS", tmp_path)
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    ss.record("out", {**_data(), "edits": 150}, "memit", _result(100, False))
    ss.record("out", _data(), "rome", _result(100, False))
    assert set(json.loads((tmp_path / "out.json").read_text())["results"]) == {"rome"}
    wide = {**_data(), "preset": "small-wide"}
    ss.record("out", wide, "alphaedit", _result(100, False))
    saved = json.loads((tmp_path / "out.json").read_text())
    assert set(saved["results"]) == {"alphaedit"} and saved["preset"] == "small-wide"
    assert "`small-wide` model" in ss.readme_block(saved)


def test_readme_block_marks_a_stopped_run() -> None:
    data = {**_data(), "load_average": [3.0, 2.0, 1.0]}
    data["results"] = {"alphaedit": _result(1000, True), "rome": _result(140, False)}
    block = ss.readme_block(data)
    assert "| alphaedit | 0,1 |" in block and "rome (stopped after 140)" in block
    assert "After the run of alphaedit every delta was reverted" in block
    assert "load average 3.0" in block
