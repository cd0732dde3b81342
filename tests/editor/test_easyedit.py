"""EasyEdit hparams YAML files translated to kgedit overrides, naming what was dropped."""

from __future__ import annotations

import re

import pytest
from editor_helpers import tiny_config

from editor.errors import EditorError
from editor.methods import get
from editor.methods.defaults import default_hparams
from editor.methods.easyedit import translate_easyedit

# The layout of EasyEdit's hparams/MEMIT/gpt2-xl.yaml (values as released).
MEMIT_YAML = """\
alg_name: "MEMIT"
model_name: "./hugging_cache/gpt2-xl"
stats_dir: "./data/stats"
device: 0
layers: [13, 14, 15, 16, 17]
clamp_norm_factor: 0.75
layer_selection: "all"
fact_token: "subject_last"
v_num_grad_steps: 20
v_lr: 5e-1
v_loss_layer: 47
v_weight_decay: 0.5
kl_factor: 0.0625
mom2_adjustment: true
mom2_update_weight: 20000
rewrite_module_tmp: "transformer.h.{}.mlp.c_proj"
layer_module_tmp: "transformer.h.{}"
mlp_module_tmp: "transformer.h.{}.mlp"
attn_module_tmp: "transformer.h.{}.attn"
ln_f_module: "transformer.ln_f"
lm_head_module: "transformer.wte"
mom2_dataset: "wikipedia"
mom2_n_samples: 100000
mom2_dtype: "float32"
"""


class _Stub:
    def __init__(self, config) -> None:
        self.config = config


def _write(tmp_path, text: str, name: str = "hp.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_memit_file_translates_and_names_every_dropped_field(tmp_path) -> None:
    out = translate_easyedit(_write(tmp_path, MEMIT_YAML))
    assert out.method == "memit"
    assert out.overrides == {
        "layers": [13, 14, 15, 16, 17], "clamp_norm_factor": 0.75, "v_num_grad_steps": 20,
        "v_lr": 0.5, "v_weight_decay": 0.5, "kl_factor": 0.0625, "mom2_update_weight": 20000,
        "mom2_n_samples": 100000, "fact_token": "subject_last",
    }  # fmt: skip
    assert set(out.dropped) == {
        "model_name", "stats_dir", "device", "layer_selection", "v_loss_layer",
        "mom2_adjustment", "rewrite_module_tmp", "layer_module_tmp", "mlp_module_tmp",
        "attn_module_tmp", "ln_f_module", "lm_head_module", "mom2_dataset", "mom2_dtype",
    }  # fmt: skip
    assert "KGEDIT_STATS_CORPUS" in out.dropped["mom2_dataset"]
    assert out.dropped["mom2_adjustment"] == "memit always uses the second moment"
    assert out.dropped["v_loss_layer"] == "the v* loss is always read at the model's output"
    # the overrides build the method's hyper-parameters as any overrides do
    model = _Stub(tiny_config("gpt2", 100))
    hp = default_hparams("memit", model, overrides=out.overrides)
    assert hp.layers == (13, 14, 15, 16, 17) and hp.v_lr == 0.5
    assert out.to_dict()["dropped"] == out.dropped


def test_rome_takes_one_layer_and_alphaedit_renames_l2(tmp_path) -> None:
    rome = translate_easyedit(
        {"alg_name": "ROME", "layers": [5], "mom2_adjustment": False, "fact_token": "subject_last",
         "context_template_length_params": [[5, 10], [10, 10]], "v_lr": "5e-1"}
    )  # fmt: skip
    assert rome.method == "rome" and rome.dropped == {}
    assert rome.overrides["layer"] == 5 and rome.overrides["mom2_adjustment"] is False
    assert get("rome").hparams_cls.from_dict(rome.overrides).v_lr == 0.5
    with pytest.raises(EditorError, match=r"rome edits one layer; the file lists \[4, 5\]"):
        translate_easyedit({"alg_name": "ROME", "layers": [4, 5]})
    alpha = translate_easyedit(
        {"alg_name": "AlphaEdit", "layers": [4, 5], "L2": 10, "nullspace_threshold": "2e-2",
         "P_loc": "./null_space_project.pt"}
    )  # fmt: skip
    assert alpha.method == "alphaedit"
    assert alpha.overrides == {"layers": [4, 5], "l2": 10, "nullspace_threshold": 0.02}
    assert "computed from the second moment" in alpha.dropped["P_loc"]


def test_module_templates_are_checked_against_a_given_model(tmp_path) -> None:
    gpt2 = _Stub(tiny_config("gpt2", 100))
    assert translate_easyedit(_write(tmp_path, MEMIT_YAML), model=gpt2).method == "memit"
    llama = _Stub(tiny_config("llama", 100))
    message = re.escape(
        "rewrite_module_tmp 'transformer.h.{}.mlp.c_proj' does not match this llama"
    )
    with pytest.raises(EditorError, match=message):
        translate_easyedit(_write(tmp_path, MEMIT_YAML), model=llama)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alg_name: GRACE\nlayers: [1]\n", "alg_name 'GRACE' is not translated; kgedit reads"),
        ("layers: [1]\n", "alg_name None is not translated"),
        ("alg_name: MEMIT\nlayers: first\n", "'layers' must be a list of layer numbers"),
        ("alg_name: MEMIT\nv_lr: fast\n", "v_lr must be a number, not 'fast'"),
        ("- 1\n", "must be an object"),
        ("alg_name: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_files_are_refused_in_one_line(tmp_path, text, message) -> None:
    with pytest.raises(EditorError, match=message):
        translate_easyedit(_write(tmp_path, text))
