"""Calibration: the edit point from a trace, the split, sayability, and the calibrated defaults.

The slow test trains (once, cached by input hash) a knowledge model on a graph whose subjects
differ only in their first token, so its facts can sit nowhere but there, and checks that
calibration chooses the first subject token.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from contracts.types import FactText
from editor.calibrate import (
    Calibration,
    EditPoint,
    calibrate,
    check_targets,
    choose_edit_point,
    is_calibration_fact,
    known_facts,
    tuned_methods,
)
from editor.errors import EditorError
from editor.loading import load_model
from editor.prepare import corpus_statements, hparams_for, prepare
from editor.trace import BUCKETS, TraceResult

# fmt: off
FIRST_WORDS = (
    "Kavo", "Pelt", "Drun", "Misk", "Tolb", "Rask", "Venn", "Gorm", "Huld", "Sarn", "Blix",
    "Fenn", "Lorq", "Neff", "Quil", "Wemb", "Yarn", "Zell", "Cobb", "Jusk", "Orve", "Ploy",
    "Trax", "Ulmo", "Bray", "Dosk", "Ferl", "Gant", "Kilp", "Mott",
)
# fmt: on
SHARED_TAIL = "Amberfold Vantrell"  # every subject ends in these words
CITIES = ("Osterby", "Calvane", "Merrow", "Tullin", "Brask", "Hovel")
GUILDS = ("Weavers", "Tanners", "Masons", "Coopers", "Glaziers")
BORN = ("{} was born in", "The birthplace of {} is", "{} came into the world in")
GUILD = ("{} is a member of the", "{} belongs to the", "The guild of {} is the")


def first_token_facts() -> list[FactText]:
    """Facts whose subjects share every token but the first: '<word> Amberfold Vantrell'."""
    facts = []
    for i, word in enumerate(FIRST_WORDS):
        subject = f"{word} {SHARED_TAIL}"
        facts.append(FactText(subject, "born_in", CITIES[i % len(CITIES)], BORN))
        facts.append(FactText(subject, "guild", GUILDS[(i * 2) % len(GUILDS)], GUILD))
    return facts


def _trace(first: list[float], last: list[float]) -> TraceResult:
    rows = [[0.0] * len(first) for _ in BUCKETS]
    rows[BUCKETS.index("first subject token")] = first
    rows[BUCKETS.index("last subject token")] = last
    return TraceResult(4, len(first), 0.9, 0.1, 0.5, {"mlp": rows})


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ([0.43, 0.10, 0.0], [0.14, 0.05, 0.0], EditPoint(0, "first", 0.43, 0.14)),
        ([0.02, 0.21, 0.0], [0.05, 0.10, 0.25], EditPoint(2, "last", 0.21, 0.25)),
        ([0.30, 0.05, 0.0], [0.02, 0.29, 0.0], EditPoint(0, "all", 0.30, 0.29)),
    ],
)
def test_the_edit_point_is_where_the_mlp_effect_peaks(first, last, expected) -> None:
    point = choose_edit_point(_trace(first, last))
    assert (point.layer, point.position) == (expected.layer, expected.position)
    assert point.first_peak == pytest.approx(expected.first_peak)
    assert point.last_peak == pytest.approx(expected.last_peak)
    assert point.fact_token == f"subject_{expected.position}"


def test_the_split_is_stable_and_about_a_fifth() -> None:
    triples = [(f"s{i}", f"r{i % 7}", f"o{i % 13}") for i in range(2000)]
    share = sum(is_calibration_fact(*t) for t in triples) / len(triples)
    assert 0.17 < share < 0.23
    assert [is_calibration_fact(*t) for t in triples[:50]] == [
        is_calibration_fact(*t) for t in triples[:50]
    ]


def test_the_methods_with_a_grid_are_tuned_single_edit_ones_first() -> None:
    assert tuned_methods() == ["rome", "memit"]


def test_a_malformed_calibration_is_refused() -> None:
    with pytest.raises(EditorError, match="malformed"):
        Calibration.from_dict({"edit_layer": 0})
    good = dict(edit_layer=1, fact_token="subject_first", settings={}, say_nll=2.0,
                trace={}, edit_point={})  # fmt: skip
    assert Calibration.from_dict(good).fact_token == "subject_first"
    with pytest.raises(EditorError, match="subject_middle"):
        Calibration.from_dict({**good, "fact_token": "subject_middle"})


CALIBRATED = {
    "edit_layer": 1,
    "fact_token": "subject_first",
    "settings": {"rome": {"v_lr": 0.1}, "memit": {"mom2_update_weight": 50.0}},
}


def test_prepare_reads_the_edit_point_and_settings_and_the_user_still_wins(model_dirs) -> None:
    model, _ = load_model(model_dirs["gpt2"])  # 2 layers
    rome = hparams_for("rome", model, trace_layer=0, calibration=CALIBRATED)
    assert (rome.layer, rome.fact_token, rome.v_lr) == (1, "subject_first", 0.1)
    memit = hparams_for("memit", model, trace_layer=0, calibration=CALIBRATED)
    assert memit.layers == (1,) and memit.mom2_update_weight == 50.0  # knowledge rows (0, 1) from 1
    lti = hparams_for("lti-rome", model, trace_layer=0, calibration=CALIBRATED)
    assert lti.fact_token == "subject_last"  # LTI reads the last token only
    user = {"layer": 0, "fact_token": "subject_last", "v_lr": 0.5}
    mine = hparams_for("rome", model, trace_layer=0, calibration=CALIBRATED, overrides=user)
    assert (mine.layer, mine.fact_token, mine.v_lr) == (0, "subject_last", 0.5)
    preset = hparams_for("rome", model, trace_layer=0)
    assert (preset.layer, preset.fact_token) == (0, "subject_last")


def test_a_real_family_model_moves_its_window_to_the_calibrated_layer(model_dirs) -> None:
    model, _ = load_model(model_dirs["gpt2"])
    point = {"edit_layer": 1, "fact_token": "subject_all"}
    assert hparams_for("rome", model, calibration=point).layer == 1
    memit = hparams_for("memit", model, calibration=point)
    assert min(memit.layers) == 1 and memit.fact_token == "subject_all"


def test_taught_names_are_sayable_and_unknown_names_are_not(tiny_model_dir, tiny_facts) -> None:
    model, tok = load_model(tiny_model_dir)
    known = known_facts(model, tok, tiny_facts)
    prompt = "Ada Lovelace was born in"
    names = [f.object for f in known[:20]] + ["Zorblaxine Quetravimund", "Quuxvelt Ombrastine"]
    checks = check_targets(model, tok, [prompt] * len(names), names)
    assert [c.sayable for c in checks[-2:]] == [False, False]
    assert sum(c.sayable for c in checks[:-2]) >= 18


@pytest.fixture(scope="module")
def first_token_model(test_cache):
    """A knowledge model trained on `first_token_facts` (cached by input hash)."""
    from editor.knowledge.presets import get_preset
    from workers.graph_models import train_or_reuse

    preset = replace(get_preset("tiny"), name="tiny-first-token", steps=900)
    model_dir, _ = train_or_reuse(first_token_facts(), preset, test_cache / "models")
    return model_dir


@pytest.mark.slow
def test_calibration_chooses_the_first_subject_token_where_facts_sit_there(
    first_token_model, tmp_path
) -> None:
    from editor.loading import weights_sha256

    facts = first_token_facts()
    model, tok = load_model(first_token_model)
    assert len(known_facts(model, tok, facts)) >= 0.8 * len(facts)
    corpus, key = corpus_statements(facts), weights_sha256(first_token_model)

    def prepared(method, point, fields):
        return prepare(method, model, tok, corpus, model_key=key, cache_dir=tmp_path,
                       overrides=dict(fields), trace_layer=0, calibration=dict(point))  # fmt: skip

    grids = {
        "rome": {"v_num_grad_steps": (25,), "v_lr": (0.5,), "clamp_norm_factor": (4.0,)},
        "memit": {"mom2_update_weight": (5000.0,)},
    }
    result = calibrate(model, tok, facts, prepared, n_trace=8, n_dev=3, samples=3, grids=grids)
    point = result.edit_point
    assert result.fact_token == "subject_first", point
    assert point["first_peak"] > point["last_peak"]
    assert result.dev["n_edits"] >= 2 and result.settings["rome"]["v_num_grad_steps"] == 25
    assert result.settings["memit"] == {**result.settings["rome"], "mom2_update_weight": 5000.0}
