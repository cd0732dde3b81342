"""Read an EasyEdit hyper-parameter YAML (ROME, MEMIT, AlphaEdit) as kgedit overrides.

EasyEdit keeps one YAML per method and model (`hparams/ROME/gpt2-xl.yaml`, ...). Most of its
fields are the released ROME/MEMIT names and carry over unchanged; the rest describe things
kgedit decides elsewhere. The translation returns the method, the overrides, and every field
it dropped with the reason, so nothing is lost silently:

* `alg_name` → the registered method that declares it (`EditMethod.easyedit`: `ROME`,
  `MEMIT`, `AlphaEdit`);
* `layers` → `layer` for a single-layer method (one layer only), else `layers`;
* the method's declared renames (`EditMethod.easyedit_renames`, e.g. AlphaEdit's `L2`);
  the v*, clamp, KL, statistics and template fields keep their names where the method has
  them;
* `*_module_tmp`, `ln_f_module`, `lm_head_module` are dropped: module names come from
  `config.model_type` (they are checked against the model when one is given);
* `model_name`, `device`, `stats_dir`, `mom2_dataset`, ... are dropped, each naming where
  kgedit takes it from.

A field the method's hyper-parameter class lacks (MEMIT's `mom2_adjustment`, which it always
applies) is dropped and named too. PyYAML reads `5e-1` (no dot) as a string, as EasyEdit's
files write learning rates; such a string is read as a number where the field is a float.
The hyper-parameter class checks every value when the overrides are used.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from editor.errors import EditorError
from editor.methods.defaults import read_overrides_file
from editor.methods.registry import EditMethod, get, names

# Module-name templates EasyEdit spells out; kgedit's come from `editor.arch`.
MODULE_FIELDS = {
    "rewrite_module_tmp": "down_proj",
    "layer_module_tmp": "layer",
    "mlp_module_tmp": "mlp",
    "attn_module_tmp": "attn",
    "ln_f_module": "final_norm",
    "lm_head_module": None,
}
ELSEWHERE = {
    "model_name": "the model is the one kgedit loads (--model, Editor(model_dir))",
    "device": "the device is KGEDIT_DEVICE",
    "stats_dir": "statistics are cached under KGEDIT_VAR_DIR/cache/stats; released files are "
    "imported with `kgedit stats import`",
    "mom2_dataset": "the statistics corpus is KGEDIT_STATS_CORPUS (default: the graph's facts)",
    "v_loss_layer": "the v* loss is always read at the model's output",
    "layer_selection": "every listed layer is edited ('all')",
    "P_loc": "AlphaEdit's projection is computed from the second moment and cached",
    "model_parallel": "one device per worker",
    "fp16": "the weights load in the dtype of the model directory",
    "batch_size": "batches are the job's (all requests of a MEMIT/AlphaEdit job at once)",
    "max_length": "lengths come from the model's context size",
}


@dataclass(frozen=True)
class Translation:
    """An EasyEdit file read as kgedit overrides: the method, the fields, what was dropped."""

    method: str
    overrides: dict[str, Any]
    dropped: dict[str, str]  # field -> why

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"method": self.method, "overrides": self.overrides, "dropped": self.dropped}


def easyedit_method(alg_name: Any) -> EditMethod:
    """Return the registered method whose EasyEdit `alg_name` this is (case-insensitive)."""
    known = {get(n).easyedit.lower(): get(n) for n in names(None) if get(n).easyedit}
    entry = known.get(str(alg_name).lower()) if alg_name is not None else None
    if entry is None:
        listed = ", ".join(sorted(m.easyedit for m in known.values()))
        raise EditorError(
            f"EasyEdit alg_name {alg_name!r} is not translated; kgedit reads {listed}"
        )
    return entry


def _layers(method: str, value: Any, fields: set[str]) -> dict[str, Any]:
    """Return the layer field(s) of `method` from EasyEdit's `layers` list."""
    layers = value if isinstance(value, list) else [value]
    if not layers or not all(isinstance(x, int) and not isinstance(x, bool) for x in layers):
        raise EditorError(f"EasyEdit 'layers' must be a list of layer numbers, not {value!r}")
    if "layers" in fields:
        return {"layers": layers}
    if len(layers) != 1:
        raise EditorError(f"{method} edits one layer; the file lists {layers}")
    return {"layer": layers[0]}


def _number(name: str, value: Any) -> Any:
    """Return a float field's value, reading a number written as a string (`5e-1`)."""
    if not isinstance(value, str):
        return value
    try:
        return float(value)
    except ValueError:
        raise EditorError(f"EasyEdit {name} must be a number, not {value!r}") from None


def _check_modules(data: Mapping[str, Any], model: Any) -> None:
    """Refuse module templates that differ from the model's architecture table entry."""
    from editor.arch import arch_spec

    spec = arch_spec(model)
    for name, attr in MODULE_FIELDS.items():
        value = data.get(name)
        if value is None or attr is None:
            continue
        expected = getattr(spec, attr)
        if value != expected:
            raise EditorError(
                f"EasyEdit {name} {value!r} does not match this {spec.model_type} model "
                f"({expected!r}); the file is for another architecture"
            )


def translate_easyedit(
    source: Mapping[str, Any] | str | Path, model: Any | None = None
) -> Translation:
    """Return an EasyEdit ROME/MEMIT/AlphaEdit hparams mapping or YAML file as kgedit
    overrides; with `model`, its module templates are checked against the model."""
    data = dict(source) if isinstance(source, Mapping) else read_overrides_file(source)
    entry = easyedit_method(data.get("alg_name"))
    method, renamed = entry.name, dict(entry.easyedit_renames)
    if model is not None:
        _check_modules(data, model)
    hints = typing.get_type_hints(entry.hparams_cls)
    fields = set(hints)
    overrides: dict[str, Any] = {}
    dropped: dict[str, str] = {}
    for key, value in data.items():
        if key == "alg_name":
            continue
        if key == "layers":
            overrides.update(_layers(method, value, fields))
        elif key in MODULE_FIELDS:
            dropped[key] = "module names come from config.model_type (editor.arch)"
        elif key in ELSEWHERE:
            dropped[key] = ELSEWHERE[key]
        elif renamed.get(key, key) in fields:
            name = renamed.get(key, key)
            overrides[name] = _number(name, value) if hints[name] is float else value
        elif key == "mom2_adjustment":
            dropped[key] = f"{method} always uses the second moment"
        else:
            dropped[key] = f"{method} has no such hyper-parameter in kgedit"
    return Translation(method, overrides, dropped)
