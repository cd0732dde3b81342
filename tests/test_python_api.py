"""`import kgedit`: the Editor on a tiny random model, the shadowing check, and the example of
docs/python.md run as it stands (slow: a tiny knowledge model of the synthetic world)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from fresh_python import run_python

sys.path.insert(0, str(Path(__file__).resolve().parent / "workers"))
from jobs_helpers import CORPUS, random_model_dir  # noqa: F401

import kgedit
from editor.methods import get
from workers import settings as settings_mod

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "python.md"
TEST_CACHE = Path(os.environ.get("KGEDIT_TEST_CACHE", REPO / "var" / "test-cache"))
EDIT = {
    "subject": "Ada Lovelace",
    "prompt": "{} was born in",
    "target_new": "Tokyo",
    "target_true": "London",
    "paraphrases": ["{} is from"],
}


def example_code() -> str:
    """Return the first Python block under "## Example" of docs/python.md."""
    section = DOC.read_text().split("## Example", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "docs/python.md has no Python example"
    return match.group(1)


@pytest.fixture
def editor(random_model_dir, tmp_path):  # noqa: F811
    """An Editor on the tiny random GPT-2, its caches in a temporary folder."""
    return kgedit.Editor(random_model_dir, corpus=CORPUS, cache_dir=tmp_path / "cache")


def _tiny(method: str) -> dict:
    """Return the tiny-model hyper-parameters of a method (edited layer 0)."""
    return dict(get(method).tiny)


def test_edit_ask_save_revert_round_trip(editor, tmp_path):
    base = editor.checksum()
    method = kgedit.default_method("edit")
    first = editor.edit([EDIT], hparams=_tiny(method))
    assert first["method"] == method and first["request_ids"] == ["r0"]
    assert [type(d) for d in first["deltas"]] == [kgedit.Delta]
    assert first["metrics"]["rewrite"]["after"] == 1.0 and first["seconds"] > 0
    assert set(first["metrics"]) == {"rewrite", "paraphrase"}
    # a random tiny GPT-2 has no released shape: the family's row, and the result says so
    assert first["preset"]["shape"] is None and first["preset"]["row"] == "gpt2"
    assert first["preset"]["note"].startswith("unknown shape (gpt2 with")
    assert isinstance(editor.ask("Ada Lovelace was born in", max_new_tokens=2), str)
    assert [type(a) for a in editor.ask(["a", "b"], max_new_tokens=1)] == [str, str]
    request = kgedit.EditRequest("Mount Fuji", "{} is located in", "Paris")
    second = editor.edit([request], hparams=_tiny(method))
    assert second["request_ids"] == ["r1"] and len(editor.deltas) == 2
    assert "Delta(" in repr(second["deltas"][0]) and "tensor" not in repr(second["deltas"][0])
    saved = editor.save(tmp_path / "out")
    assert saved["deltas"] == [f"deltas/{i:04d}-{method}.safetensors" for i in range(2)]
    with pytest.raises(FileExistsError):
        editor.save(tmp_path / "out")
    reopened = kgedit.Editor(saved["path"], corpus=CORPUS)
    assert reopened.checksum() == editor.checksum() != base
    undone = editor.revert()
    assert undone == {"reverted": 2, "checksum": base, "matches_base": True}
    assert editor.deltas == [] and editor.requests == []


def test_unlearn_with_own_forms(editor):
    method = kgedit.default_method("unlearn")
    form = kgedit.Probe("Mount Fuji is located in", "Tokyo", "form_cloze")
    request = {"concept": "Mount Fuji", "anchor": "Paris", "forms": [form]}
    out = editor.unlearn([request], hparams=_tiny(method))
    assert out["method"] == method and len(out["deltas"]) == 1
    assert out["metrics"]["forget"]["n"] == 1
    assert editor.revert()["matches_base"]


@pytest.mark.parametrize(
    ("call", "request_body", "match"),
    [
        ("unlearn", {"concept": "Mount Fuji"}, "needs an anchor"),
        ("edit", {**EDIT, "prompt": "no slot"}, "exactly one"),
        ("edit", {**EDIT, "colour": "red"}, "unknown field"),
    ],
)
def test_bad_requests_are_refused_before_any_change(editor, call, request_body, match):
    base = editor.checksum()
    with pytest.raises(kgedit.InvalidInputError, match=match):
        getattr(editor, call)([request_body])
    assert editor.checksum() == base and editor.deltas == []


def test_bad_overrides_and_request_types_are_refused(editor):
    with pytest.raises(kgedit.InvalidInputError, match="v_num_grad_steps"):
        editor.edit([EDIT], hparams={"v_num_grad_steps": "many"})
    with pytest.raises(TypeError, match="EditRequest"):
        editor.edit([kgedit.UnlearnRequest("Mount Fuji")])
    with pytest.raises(ValueError, match="graph"):
        editor.audit()


def test_a_shadowing_module_is_named_at_import(tmp_path):
    (tmp_path / "kg.py").write_text("")
    shadowed = f"{tmp_path}{os.pathsep}{REPO}"
    out = run_python("import kgedit", timeout=120, cwd=tmp_path, path=shadowed, succeeds=False)
    assert "ImportError" in out.stderr and str(tmp_path / "kg.py") in out.stderr


@pytest.mark.slow
def test_the_documented_example_runs(monkeypatch, capsys):
    """docs/python.md's example, as written, on the tiny preset (model cached in the test cache)."""
    monkeypatch.setenv("KGEDIT_VAR_DIR", str(TEST_CACHE / "python-api"))
    settings_mod.get_settings.cache_clear()
    namespace: dict = {}
    try:
        exec(compile(example_code(), str(DOC), "exec"), namespace)
    finally:
        settings_mod.get_settings.cache_clear()
    printed = capsys.readouterr().out
    result, report, undone = namespace["result"], namespace["report"], namespace["undone"]
    assert result["method"] == kgedit.default_method("edit")
    assert result["metrics"]["rewrite"] == {**result["metrics"]["rewrite"], "n": 1, "after": 1.0}
    assert {"paraphrase", "neighbour"} <= set(result["metrics"])
    assert isinstance(result["deltas"][0], kgedit.Delta)
    assert namespace["answer"].strip().startswith("Zousaise")
    assert report["kind"] == "edit" and report["changes"][0]["id"] == "r0"
    assert undone["matches_base"] is True and undone["reverted"] == 1
    assert "rewrite 0% -> 100%" in printed and "base weights again: True" in printed
