"""Import of ROME's released second-moment files, and the store of imported statistics.

The ROME and MEMIT releases publish, per model and layer, the uncentred second moment of the
down-projection's input over 100,000 Wikipedia samples, as a NumPy `.npz` archive of the
collected statistics' state. kgedit reads two arrays of it:

* `mom2.mom2`: Σ k kᵀ over every key, shape (m, m) with m the MLP width;
* `mom2.count`: the number of keys summed (a scalar).

The moment is `mom2.mom2 / mom2.count`. The archive is read without pickle, so the object
arrays it also holds (the statistic's constructor, the sample settings) are never loaded.
The width is checked against the model's MLP width; a mismatch is refused.

An imported moment is stored under `<stats cache>/imported/`, keyed by the model's weights
checksum and the module, and `editor.prepare` uses it for that layer before computing one.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from editor.arch import arch_spec
from editor.errors import EditorError
from editor.stats import SecondMoment

MOM2_KEY, COUNT_KEY = "mom2.mom2", "mom2.count"
IMPORTED = "imported"


def imported_path(cache_dir: str | Path, model_key: str, module: str) -> Path:
    """Return where the imported moment of `module` of the weights `model_key` is kept."""
    digest = hashlib.sha256(json.dumps([model_key, module]).encode()).hexdigest()
    return Path(cache_dir) / IMPORTED / f"{digest}.safetensors"


def read_released_npz(path: str | Path) -> tuple[torch.Tensor, int]:
    """Return (E[k kᵀ] (m, m) float32, count) from a released ROME statistics file."""
    path = Path(path)
    if not path.is_file():
        raise EditorError(f"no such statistics file: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in (MOM2_KEY, COUNT_KEY) if k not in data.files]
            if missing:
                raise EditorError(
                    f"{path} is not a ROME second-moment file: it lacks {', '.join(missing)} "
                    f"(has {', '.join(sorted(data.files)[:6]) or 'nothing'})"
                )
            total = np.asarray(data[MOM2_KEY], dtype=np.float64)  # (m, m)
            count = int(np.asarray(data[COUNT_KEY]).reshape(-1)[0])
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise EditorError(f"{path} is not a readable .npz archive: {exc}") from None
    if total.ndim != 2 or total.shape[0] != total.shape[1]:
        raise EditorError(f"{path}: {MOM2_KEY} has shape {total.shape}, not a square matrix")
    if count < 1:
        raise EditorError(f"{path}: {COUNT_KEY} is {count}; no keys were summed")
    mom2 = torch.from_numpy(total / count).float().contiguous()  # (m, m)
    return mom2, count


def import_released_stats(
    path: str | Path, model_or_config: Any, layer: int, model_key: str, cache_dir: str | Path
) -> dict[str, Any]:
    """Check a released file against the model's MLP width at `layer`, store it, and
    return a summary (module, width, count, where it was stored)."""
    config = getattr(model_or_config, "config", model_or_config)
    spec = arch_spec(config)
    n_layers = spec.n_layers(config)
    if not 0 <= layer < n_layers:
        raise EditorError(f"layer {layer} is out of range: the model has {n_layers} layers")
    mom2, count = read_released_npz(path)
    width = spec.inner_size(config)
    if mom2.shape[0] != width:
        raise EditorError(
            f"{path}: the statistics are {mom2.shape[0]}-dimensional but the model's MLP is "
            f"{width} wide; this file belongs to another model"
        )
    module = spec.down_proj_name(layer)
    out = imported_path(cache_dir, model_key, module)
    meta = {"model_key": model_key, "layer": layer, "module": module, "count": count,
            "source": str(path)}  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    save_file({"mom2": mom2}, str(tmp), metadata={"kgedit_stats": json.dumps(meta)})
    tmp.replace(out)
    return {**meta, "width": width, "stored": str(out)}


def load_imported(cache_dir: str | Path, model_key: str, module: str) -> SecondMoment | None:
    """Return the imported moment of `module` of the weights `model_key`, or None."""
    path = imported_path(cache_dir, model_key, module)
    if not path.is_file():
        return None
    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()["kgedit_stats"])
        mom2 = handle.get_tensor("mom2")  # (m, m)
    return SecondMoment(mom2=mom2, count=int(meta["count"]), meta=meta, from_cache=True)
