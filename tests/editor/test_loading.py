"""Model loading from local directories and checksums."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from editor.errors import ModelLoadError
from editor.loading import load_model, state_checksum, weights_sha256


def test_load_sets_padding_and_eval(model_dirs) -> None:
    model, tok = load_model(model_dirs["gpt2"])
    assert tok.pad_token is not None and tok.padding_side == "right"
    assert not model.training
    assert next(model.parameters()).dtype == torch.float32


def test_load_with_dtype(model_dirs) -> None:
    model, _ = load_model(model_dirs["llama"], dtype=torch.bfloat16)
    assert next(model.parameters()).dtype == torch.bfloat16


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here"
    with pytest.raises(ModelLoadError, match="does not exist") as info:
        load_model(missing)
    assert str(missing) in str(info.value)


def test_file_instead_of_directory(tmp_path: Path) -> None:
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="not a directory"):
        load_model(file)


def test_directory_without_config(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("not a model")
    with pytest.raises(ModelLoadError, match=r"no config\.json") as info:
        load_model(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_directory_without_safetensors(tmp_path: Path, model_dirs) -> None:
    shutil.copy(model_dirs["gpt2"] / "config.json", tmp_path / "config.json")
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ModelLoadError, match=r"no \*\.safetensors") as info:
        load_model(tmp_path)
    assert "pytorch_model.bin" in str(info.value) and str(tmp_path) in str(info.value)


def test_broken_weights_are_reported(tmp_path: Path, model_dirs) -> None:
    for f in model_dirs["gpt2"].iterdir():
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="cannot load model"):
        load_model(tmp_path)


def test_weights_sha256_is_stable_and_content_sensitive(tmp_path: Path, model_dirs) -> None:
    first = weights_sha256(model_dirs["gpt2"])
    assert first == weights_sha256(model_dirs["gpt2"])
    assert first != weights_sha256(model_dirs["llama"])


def test_state_checksum_sees_one_bit(model_dirs) -> None:
    model, _ = load_model(model_dirs["gpt2"])
    before = state_checksum(model)
    assert before == state_checksum(model)
    param = next(model.parameters())
    with torch.no_grad():
        flat = param.data.view(-1)
        flat[0] = torch.nextafter(flat[0], torch.tensor(float("inf")))
    assert state_checksum(model) != before
