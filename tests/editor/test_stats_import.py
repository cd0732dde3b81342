"""Released second-moment files (.npz of `mom2.mom2`, `mom2.count`) imported for a model's
layer, checked against its MLP width, and used by `editor.prepare` instead of a computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from editor.arch import arch_spec
from editor.errors import EditorError
from editor.loading import load_model
from editor.prepare import prepare
from editor.stats_import import import_released_stats, load_imported, read_released_npz


def write_released(path, width: int, count: int = 500, seed: int = 0) -> np.ndarray:
    """Write an .npz in the released layout (sum of k kᵀ, count, the object fields beside
    them) and return the moment it holds."""
    rng = np.random.default_rng(seed)
    keys = rng.standard_normal((count, width)).astype(np.float32)  # (n, m)
    total = keys.T @ keys  # (m, m)
    np.savez(
        path,
        **{"mom2.mom2": total, "mom2.count": np.array(count), "mom2.constructor":
           np.array("util.runningstats.SecondMoment()"), "constructor":
           np.array("util.runningstats.CombinedStat(mom2=SecondMoment())"),
           "sample_size": np.array(100000)},
    )  # fmt: skip
    return total / count


def test_a_released_file_is_imported_and_prepare_uses_it(model_dirs, corpus, tmp_path) -> None:
    model, tok = load_model(model_dirs["llama"])
    width = arch_spec(model).inner_size(model.config)
    expected = write_released(tmp_path / "layer1.npz", width)
    cache = tmp_path / "cache"
    summary = import_released_stats(tmp_path / "layer1.npz", model, 1, "k", cache / "stats")
    assert summary["module"] == "model.layers.1.mlp.down_proj"
    assert (summary["width"], summary["count"]) == (width, 500)
    ready = prepare("memit", model, tok, corpus, model_key="k", cache_dir=cache,
                    overrides={"layers": (0, 1), "mom2_n_samples": 40})  # fmt: skip
    imported, computed = ready.second_moment(1), ready.second_moment(0)
    assert imported.count == 500 and imported.meta["source"].endswith("layer1.npz")
    torch.testing.assert_close(imported.mom2, torch.from_numpy(expected).float())
    assert computed.meta.get("n_texts") == 40  # the other layer still comes from the corpus
    # another model's weights do not see it
    assert load_imported(cache / "stats", "other", summary["module"]) is None


def test_mismatched_or_malformed_files_are_refused(model_dirs, tmp_path) -> None:
    model, _ = load_model(model_dirs["gpt2"])
    width = arch_spec(model).inner_size(model.config)
    write_released(tmp_path / "wide.npz", width * 2, count=50)
    with pytest.raises(EditorError, match=f"are {2 * width}-dimensional but the model's MLP is "
                       f"{width} wide"):  # fmt: skip
        import_released_stats(tmp_path / "wide.npz", model, 0, "k", tmp_path)
    write_released(tmp_path / "ok.npz", width, count=50)
    with pytest.raises(EditorError, match="layer 7 is out of range: the model has 2 layers"):
        import_released_stats(tmp_path / "ok.npz", model, 7, "k", tmp_path)
    np.savez(tmp_path / "other.npz", mean=np.zeros(3))
    with pytest.raises(EditorError, match=r"lacks mom2\.mom2, mom2\.count"):
        read_released_npz(tmp_path / "other.npz")
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(EditorError, match=r"not a readable \.npz archive"):
        read_released_npz(tmp_path / "text.npz")
    np.savez(tmp_path / "flat.npz", **{"mom2.mom2": np.zeros(4), "mom2.count": np.array(1)})
    with pytest.raises(EditorError, match="not a square matrix"):
        read_released_npz(tmp_path / "flat.npz")
    with pytest.raises(EditorError, match="no such statistics file"):
        read_released_npz(tmp_path / "missing.npz")
