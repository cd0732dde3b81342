"""Shared machinery of the per-architecture default hyper-parameters, plus overrides.

Each method declares its own rows (`EditMethod.defaults`) in its module: a `Row` per family,
a `config.model_type` (gpt2, gptj, gpt_neox, llama, mistral, qwen2) or `knowledge` (the
GPT-2-architecture models kgedit trains on a graph). This module resolves them.

Layers:
* HF families: the released layer choice of a reference model of `depth` layers, scaled to
  the model's depth (⌊l·n/depth⌋, duplicates dropped), e.g. MEMIT GPT-2 XL 13–17 of 48;
* knowledge models: offsets from the layer the causal trace picks (`trace_layer`, the
  preset's `edit_layer`; docs/knowledge-model.md). Only layer 0's MLP stores facts in the
  6-layer `small` model, so single-layer methods edit it and MEMIT/AlphaEdit spread over it
  and the next one (z at the output of block 1); LTI's middle layer sits at ~60 % depth as
  in the released configs.

Overrides come from a dict or a JSON or YAML file (`.yaml`/`.yml`, read with `safe_load`,
so no tags that build Python objects): either the fields themselves or an object keyed by
method name (`{"memit": {"mom2_update_weight": 5000}}`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from editor.errors import EditorError
from editor.methods.registry import get, names
from editor.shapes import PRESET_KEY, PresetChoice, describe_shape, match_shape, named_shape
from editor.tokens import fact_token_position

KNOWLEDGE = "knowledge"
LLAMA_LIKE = ("llama", "mistral", "qwen2")


@dataclass(frozen=True)
class Row:
    """Default layers and fields of one method on one family.

    `depth` None: `layers` are offsets from the traced layer (knowledge models).
    `layer_fields`: other single-layer fields (LTI's `mid_layer`, GLAME's `repr_layer`),
    resolved like `layers`. `source`: the paper or released configuration the values come
    from (or the kgedit measurement that chose them).
    """

    layers: tuple[int, ...]
    depth: int | None
    fields: dict[str, Any] = field(default_factory=dict)
    layer_fields: dict[str, int] = field(default_factory=dict)
    source: str = ""


def sourced(rows: dict[str, Row], source: str) -> dict[str, Row]:
    """Return the rows with `source` set on every row that names none."""
    return {k: row if row.source else replace(row, source=source) for k, row in rows.items()}


def llama_like(row: Row) -> dict[str, Row]:
    """Return the same row for every Llama-like family (llama, mistral, qwen2)."""
    return dict.fromkeys(LLAMA_LIKE, row)


# Knowledge models, shared by the methods that optimise a v*/z: the MEMIT family's λ,
# threshold and ridge were chosen on EVOKE edits of the `small` model (docs/methods/memit.md).
# Every v*/z optimisation gets up to 100 steps on every knowledge preset (it stops at loss
# 0.05, so only hard edits use them): with 40, ROME left 11 of 192 EVOKE edits unflipped, all
# with NLL > 0.5; 100 steps flipped 7 of those 11. The demo, the service and the benchmarks
# all read these rows (`editor.prepare`), so their figures are one method's. On `tiny` (40
# EVOKE cases, 10 sequential ROME edits, the demo's run) 40 → 100 steps moved rewrite 70 → 60
# % (one edit) and neighbourhood 63 → 70 %: within the noise of 10 edits, so one count serves
# every preset.
KNOWLEDGE_STATS = {"mom2_n_samples": 20_000}
KNOWLEDGE_STEPS = {"v_num_grad_steps": 100, **KNOWLEDGE_STATS}
# z at the output of block 1 of the `small` model: ‖h‖ ≈ 77 there, and flipping a fact takes
# ‖δ‖ ≈ 50–60 (the decay term is negligible at that scale). With the released clamp 0.75·‖h‖
# v* ended above NLL 0.5 on 6 of 30 EVOKE edits (MEMIT efficacy 86.7 %); 1.5·‖h‖ left 2 of 30
# (96.7 %); z at block 3 needed ‖δ‖ ≈ 110 (docs/methods/memit.md).
KNOWLEDGE_Z = {"clamp_norm_factor": 1.5, **KNOWLEDGE_STEPS}
# The form option (docs/methods/rome.md): ROME and MEMIT on a knowledge model optimise v* and
# read the key over the request's question form and three other cloze wordings besides its
# prompt (`kg.forms.edit_forms`), as a model trained on a graph is asked in all of them.
KNOWLEDGE_FORMS = {"forms": 4}


def family_of(model: nn.Module) -> str:
    """Return the table family of a loaded model: its `config.model_type`."""
    return str(model.config.model_type)


def resolve_layers(row: Row, n_layers: int, trace_layer: int | None) -> tuple[int, ...]:
    """Return the row's layers for a model of `n_layers` layers."""
    if row.depth is None:
        if trace_layer is None:
            raise EditorError("knowledge-model defaults need the traced edit layer")
        raw = [trace_layer + off for off in row.layers]
    else:
        raw = [layer * n_layers // row.depth for layer in row.layers]
    layers = tuple(sorted({min(max(0, x), n_layers - 1) for x in raw}))
    return layers


YAML_SUFFIXES = (".yaml", ".yml")


def read_overrides_file(path: str | Path) -> dict[str, Any]:
    """Return the object in a JSON or YAML overrides file (YAML by its suffix)."""
    path = Path(path)
    if not path.is_file():
        raise EditorError(f"no such hyper-parameter file: {path}")
    text = path.read_text(encoding="utf-8")
    is_yaml = path.suffix.lower() in YAML_SUFFIXES
    try:
        data = yaml.safe_load(text) if is_yaml else json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "YAML" if is_yaml else "JSON"
        raise EditorError(f"{path} is not valid {kind}: {exc}") from exc
    if not isinstance(data, dict):
        raise EditorError(f"hyper-parameter overrides in {path} must be an object (a mapping)")
    return data


def load_overrides(source: Mapping[str, Any] | str | Path | None, method: str) -> dict[str, Any]:
    """Return the override fields for `method` from a dict or a JSON or YAML file."""
    if source is None:
        return {}
    data = dict(source) if isinstance(source, Mapping) else read_overrides_file(source)
    if "alg_name" in data:  # whose dropped fields must be named, not silently ignored
        raise EditorError(
            "this is an EasyEdit hparams file; translate it with `kgedit translate-hparams` "
            "or `kgedit edit --hparams-yaml` (kgedit.easyedit_hparams in Python)"
        )
    keyed = [k for k in data if k in names(None)]
    if keyed:  # an object keyed by method name: this method's entry (or nothing)
        entry = data.get(method, {})
        if not isinstance(entry, dict):
            raise EditorError(f"overrides for {method!r} must be an object, not {entry!r}")
        return dict(entry)
    return data


def choose_row(
    method: str, model: nn.Module, *, family: str | None = None, preset: str | None = None
) -> tuple[Row | None, PresetChoice]:
    """Return the method's default row for `model` and how it was chosen.

    Order: the knowledge row when `family` is `knowledge`; else the row of the named
    `preset` or of the model's recognised released shape (`editor.shapes`); else the
    family's row, its layers scaled to the model's depth. A method without rows gets None.
    """
    rows = get(method).defaults
    if not rows:
        return None, PresetChoice(method, None, "-", "the hyper-parameter class's defaults", "")
    config = model.config
    asked = family is not None
    shape = None
    if family != KNOWLEDGE:
        shape = named_shape(preset, config) if preset else None
        if shape is None and family is None:
            shape = match_shape(config)
    family = family or family_of(model)
    if shape is not None and shape.name in rows:
        how = "named by the user" if preset else "recognised by model_type, depth and width"
        row = rows[shape.name]
        return row, PresetChoice(method, shape.name, shape.name, row.source, how)
    row = rows.get(family)
    if row is None:
        raise EditorError(f"no {method} defaults for family {family!r}; have {sorted(rows)}")
    if family == KNOWLEDGE:
        note = "knowledge model: offsets from the traced edit layer"
    elif shape is not None:
        note = f"{shape.name}: no {method} row of its own, so the family's, scaled to depth"
    elif asked:
        note = f"family {family!r} as asked, scaled to depth"
    else:
        note = f"unknown shape ({describe_shape(config)}): the family's row, scaled to depth"
    return row, PresetChoice(method, shape.name if shape else None, family, row.source, note)


def default_hparams(method: str, model: nn.Module, **options: Any) -> Any:
    """Return the method's hyper-parameters for `model` (`hparams_and_choice`, without the
    choice): its chosen row (`choose_row`), then the overrides; a method without rows starts
    from its hyper-parameter class's defaults. `options`: `family`, `trace_layer`,
    `overrides` (an override `preset: NAME` picks the rows of a released shape by name)."""
    return hparams_and_choice(method, model, **options)[0]


def hparams_and_choice(
    method: str,
    model: nn.Module,
    *,
    family: str | None = None,
    trace_layer: int | None = None,
    overrides: Mapping[str, Any] | str | Path | None = None,
) -> tuple[Any, PresetChoice]:
    """Return `default_hparams` and the `PresetChoice` naming the row it started from."""
    entry = get(method)
    cls = entry.hparams_cls
    fields = load_overrides(overrides, method)
    preset = fields.pop(PRESET_KEY, None)
    if preset is not None and not isinstance(preset, str):
        raise EditorError(f"{PRESET_KEY!r} must be a preset name, not {preset!r}")
    row, choice = choose_row(method, model, family=family, preset=preset)
    data: dict[str, Any] = {}
    if row is not None:
        n_layers = int(model.config.num_hidden_layers)
        layers = resolve_layers(row, n_layers, trace_layer)
        data.update(row.fields)
        if "layers" in set(getattr(cls, "__dataclass_fields__", {})):
            data["layers"] = layers
        else:
            data["layer"] = layers[0]
        for name, ref in row.layer_fields.items():
            data[name] = resolve_layers(Row((ref,), row.depth), n_layers, trace_layer)[0]
    data.update(fields)
    hparams = cls.from_dict(data) if hasattr(cls, "from_dict") else cls(**data)
    fact_token = getattr(hparams, "fact_token", None)
    if fact_token is not None and fact_token_position(fact_token) not in entry.subject_positions:
        raise EditorError(
            f"{method} reads the subject at {list(entry.subject_positions)} only, "
            f"not fact_token {fact_token!r}"
        )
    return hparams, choice
