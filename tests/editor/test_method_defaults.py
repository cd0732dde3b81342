"""The per-architecture defaults table and the overrides read from dicts, JSON and YAML files."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from editor.errors import EditorError
from editor.methods.defaults import KNOWLEDGE, default_hparams, load_overrides


def _model(model_type: str, n_layers: int) -> SimpleNamespace:
    """A stand-in with the two config fields the table reads."""
    return SimpleNamespace(
        config=SimpleNamespace(model_type=model_type, num_hidden_layers=n_layers)
    )


def test_layers_scale_with_depth_and_knowledge_rows_follow_the_trace() -> None:
    # MEMIT on GPT-2 XL edits 13-17 of 48; a 12-layer GPT-2 gets ⌊l·12/48⌋ without duplicates
    assert default_hparams("memit", _model("gpt2", 48)).layers == (13, 14, 15, 16, 17)
    assert default_hparams("memit", _model("gpt2", 12)).layers == (3, 4)
    hp = default_hparams("alphaedit", _model("gpt2", 6), family=KNOWLEDGE, trace_layer=0)
    assert hp.layers == (0, 1, 2) and hp.nullspace_energy == 0.1
    with pytest.raises(EditorError, match="traced edit layer"):
        default_hparams("rome", _model("gpt2", 6), family=KNOWLEDGE)
    with pytest.raises(EditorError, match="no rome defaults for family 'bert'"):
        default_hparams("rome", _model("bert", 6))


def test_json_and_yaml_files_give_the_same_overrides(tmp_path) -> None:
    as_json = tmp_path / "hp.json"
    as_json.write_text(json.dumps({"memit": {"mom2_update_weight": 5000, "layers": [2, 3]}}))
    as_yaml = tmp_path / "hp.YML"
    as_yaml.write_text("memit:\n  mom2_update_weight: 5000\n  layers: [2, 3]\n")
    model = _model("gpt2", 12)
    a = default_hparams("memit", model, overrides=as_json)
    b = default_hparams("memit", model, overrides=as_yaml)
    assert a == b and a.mom2_update_weight == 5000 and tuple(a.layers) == (2, 3)
    # a file keyed by other methods only leaves this one at its defaults
    assert load_overrides(as_yaml, "rome") == {}
    flat = tmp_path / "flat.yaml"
    flat.write_text("v_lr: 0.25\n")
    assert default_hparams("rome", model, overrides=flat).v_lr == 0.25


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.json", "{not json", "not valid JSON"),
        ("bad.yaml", "rome: [unclosed\n", "not valid YAML"),
        ("unsafe.yaml", "!!python/object/apply:os.system ['true']\n", "not valid YAML"),
        ("list.yaml", "- 1\n", "must be an object"),
        ("scalar.json", "3", "must be an object"),
        ("entry.yaml", "rome: 3\n", "overrides for 'rome' must be an object"),
        ("easyedit.yaml", "alg_name: ROME\nlayers: [5]\n", "is an EasyEdit hparams file"),
    ],
)
def test_bad_override_files_raise_clear_errors(tmp_path, name, text, message) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(EditorError, match=message):
        load_overrides(path, "rome")


def test_a_missing_override_file_is_named() -> None:
    with pytest.raises(EditorError, match="no such hyper-parameter file"):
        load_overrides("/nonexistent/hp.yaml", "rome")
