"""`kgedit ask`: the greedy continuation of a registered model's head or a given version."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workers"))
from jobs_helpers import job_settings, random_model_dir  # noqa: F401
from test_ledger import chain3  # noqa: F401

from api.cli import app
from editor.generation import generate
from editor.loading import load_model
from kg.types import fill
from workers.ledger import load_version, register_model

runner = CliRunner()


def _ask(*args: str) -> dict:
    result = runner.invoke(app, ["ask", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # nothing but the JSON on stdout


@pytest.mark.slow  # the tiny knowledge model
def test_ask_the_tiny_model_what_it_learned(job_settings, tiny_model_dir, tiny_facts):  # noqa: F811
    register_model("tiny", tiny_model_dir)
    model, tok = load_model(tiny_model_dir)
    facts = tiny_facts[:6]
    prompts = [fill(f.templates[0], f.subject) for f in facts]
    expected = generate(model, tok, prompts, max_new_tokens=4)
    answers = [_ask(p, "--model", "tiny", "--max-new-tokens", "4") for p in prompts]
    assert [a["continuation"] for a in answers] == expected
    assert {a["version_id"] for a in answers} == {1} and answers[0]["model"] == "tiny"
    right = [
        a["continuation"].strip().startswith(f.object) for a, f in zip(answers, facts, strict=True)
    ]
    assert any(right), "the tiny model answers none of its training facts"


def test_ask_a_given_version_and_the_head(chain3):  # noqa: F811
    name, _, ids, _ = chain3
    prompt = "Ada was born in"
    for version in (ids[0], ids[2], None):
        lm, tok, _ = load_version(name, version)
        (expected,) = generate(lm, tok, [prompt], max_new_tokens=6)
        args = [prompt, "--model", name, "--max-new-tokens", "6"]
        answer = _ask(*args, *(["--version", str(version)] if version else []))
        assert answer["continuation"] == expected
        assert answer["version_id"] == (version or ids[-1])
    text = runner.invoke(app, ["ask", prompt, "--model", name])
    assert text.exit_code == 0 and prompt in text.stdout and f"v{ids[-1]}" in text.stdout


def test_ask_refuses_unknown_models_versions_and_bad_sizes(chain3):  # noqa: F811
    name = chain3[0]
    for args, message in [
        (["--model", "ghost"], "ghost"),
        (["--model", name, "--version", "999"], "no version 999"),
        (["--model", name, "--max-new-tokens", "0"], "--max-new-tokens"),
        (["--model", name, "--max-new-tokens", "513"], "--max-new-tokens"),
    ]:
        result = runner.invoke(app, ["ask", "Ada was born in", *args, "--json"])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and result.stdout == "", (args, result.output)
    result = runner.invoke(app, ["ask", "  ", "--model", name])
    assert result.exit_code == 2 and "empty" in result.stderr
