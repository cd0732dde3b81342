"""TOFU: importer checks, KS forget quality, model utility, a tiny QA model end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from data_sets import data_set_or_skip

from editor.knowledge.presets import get_qa_preset
from editor.loading import load_model, state_checksum
from editor.methods.gradient_unlearning import GradUnlearnHyperParams
from kg.errors import ImportFormatError, ValidationError
from kg.importers.tofu import authors, load_tofu, read_split
from workers.tofu import (
    EvalConfig,
    evaluate,
    forget_quality,
    harmonic_mean,
    train_or_reuse_qa,
    unlearn_split,
)

TEST_CACHE = Path(__file__).resolve().parents[2] / "var" / "test-cache"


@pytest.fixture(scope="module")
def tofu():
    """The real TOFU files from the data folder (skipped, or failed under CI=true, if absent)."""
    return load_tofu(data_set_or_skip("tofu"))


def test_importer_reads_and_checks_the_splits(tofu):
    assert len(tofu.split("full")) == 4000 and len(authors(tofu.split("full"))) == 200
    assert len(tofu.split("forget01")) == 40 and len(tofu.split("retain99")) == 3960
    item = tofu.split("forget01_perturbed")[0]
    assert item.paraphrased_answer and len(item.perturbed_answers) == 5
    with pytest.raises(ValidationError, match="unknown TOFU split"):
        tofu.split("forget50")


def test_importer_refuses_malformed_lines(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"question": "q?", "answer": "a"}\n{"question": "", "answer": "a"}\n')
    with pytest.raises(ImportFormatError, match="line 2"):
        read_split(bad)
    bad.write_text('{"question": "q?", "answer": "a"}\nnot json\n')
    with pytest.raises(ImportFormatError, match="line 2"):
        read_split(bad)
    bad.write_text('{"question": "q?", "answer": "a", "perturbed_answer": "x"}\n')
    with pytest.raises(ImportFormatError, match="perturbed_answer"):
        read_split(bad, perturbed=True)
    with pytest.raises(ValidationError, match="not found"):
        read_split(tmp_path / "missing.json")


def test_ks_forget_quality_of_identical_distributions_is_one():
    values = [0.1, 0.5, 0.7, 0.9, 1.3]
    assert forget_quality(values, list(values)) == 1.0
    assert forget_quality([0.01 * i for i in range(40)], [5 + i for i in range(40)]) < 1e-6
    with pytest.raises(ValueError):
        forget_quality([], values)


def test_harmonic_mean():
    assert harmonic_mean([0.5, 0.5]) == pytest.approx(0.5)
    assert harmonic_mean([1.0, 0.25]) == pytest.approx(0.4)
    assert harmonic_mean([0.3, 0.0]) == 0.0


@pytest.mark.slow
def test_tiny_qa_model_unlearns_forget01(tofu, tmp_path):
    """Train the tiny preset on 5 authors plus forget01; GA lowers forget probability."""
    pairs = tofu.pairs("retain99")[:100] + tofu.pairs("forget01")
    model_dir, _ = train_or_reuse_qa(pairs, get_qa_preset("tofu-qa-tiny"), TEST_CACHE / "qa", "t")
    assert json.loads((model_dir / "kgedit_qa.json").read_text())["n_pairs"] == 140
    model, tok = load_model(model_dir)
    before = state_checksum(model)
    config = EvalConfig(retain_eval_size=20, max_new_tokens=8)
    base = evaluate(model, tok, tofu, "forget01", config)
    assert 0.0 <= base["model_utility"] <= 1.0 and base["forget"]["n"] == 40
    hp = GradUnlearnHyperParams(lr=1e-3, epochs=2, batch_size=8, warmup_epochs=0.0)
    delta, _ = unlearn_split(model, tok, tofu, "forget01", "ga", hp)
    after = evaluate(model, tok, tofu, "forget01", config)
    assert after["forget"]["probability"] < base["forget"]["probability"]
    fq = forget_quality(after["forget"]["truth_ratios"], base["forget"]["truth_ratios"])
    assert 0.0 <= fq <= 1.0 and math.isfinite(fq)
    delta.revert(model)
    assert state_checksum(model) == before
