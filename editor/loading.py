"""Load a causal LM and its tokenizer from a local directory; checksums of weights."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from editor.errors import ModelLoadError

_CHUNK = 1 << 20


def _check_model_dir(path: Path) -> list[Path]:
    """Raise `ModelLoadError` unless `path` is a directory with config.json and safetensors."""
    if not path.exists():
        raise ModelLoadError(f"model path does not exist: {path}")
    if not path.is_dir():
        raise ModelLoadError(f"model path is not a directory: {path}")
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"no config.json in model directory {path}")
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        others = sorted(p.name for p in path.iterdir() if p.suffix in {".bin", ".pt", ".pth"})
        hint = f" (found only {', '.join(others)}; only safetensors are loaded)" if others else ""
        raise ModelLoadError(f"no *.safetensors weights in model directory {path}{hint}")
    return weights


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Set a pad token (eos if missing) and right padding; return the tokenizer."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelLoadError("tokenizer has neither a pad token nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


# transformers names a model's loss by its class name; GPT2LMHeadModel and the other
# `*LMHeadModel`s match none, so each forward with labels warns before it falls back to this
CAUSAL_LM_LOSS = "ForCausalLM"


@contextmanager
def hf_bars_off() -> Iterator[None]:
    """Hide transformers' own tqdm bars ("Loading weights", "Writing model shards") for a block
    (kgedit reports its own progress), then restore them as they were."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def save_model(model: nn.Module, tokenizer: Any, out: str | Path) -> None:
    """Save a model (safetensors) and its tokenizer as an HF directory, without tqdm bars."""
    with hf_bars_off():
        model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def load_model(
    path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> tuple[nn.Module, Any]:
    """Load `(model, tokenizer)` from a local HF directory (safetensors only, no download).

    `dtype=None` keeps the dtype stored in the checkpoint.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    _check_model_dir(path)
    try:
        with hf_bars_off():
            model = AutoModelForCausalLM.from_pretrained(
                str(path),
                local_files_only=True,
                use_safetensors=True,
                dtype=dtype if dtype is not None else "auto",
            )
    except Exception as exc:
        raise ModelLoadError(f"cannot load model from {path}: {exc}") from exc
    model.loss_type = CAUSAL_LM_LOSS
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:
        raise ModelLoadError(f"cannot load tokenizer from {path}: {exc}") from exc
    model.to(device)
    model.eval()
    return model, prepare_tokenizer(tokenizer)


def weights_sha256(model_dir: str | Path) -> str:
    """Return the sha256 over the names and bytes of the directory's safetensors files."""
    digest = hashlib.sha256()
    for file in _check_model_dir(Path(model_dir)):
        digest.update(file.name.encode() + b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def tensor_bytes(tensor: torch.Tensor) -> bytes:
    """Return the raw bytes of a tensor (moved to CPU, made contiguous)."""
    flat = tensor.detach().reshape(-1).contiguous().cpu()  # (numel,)
    return flat.view(torch.uint8).numpy().tobytes()


def tensor_sha256(tensor: torch.Tensor) -> str:
    """Return the sha256 over one tensor's dtype, shape and bytes."""
    digest = hashlib.sha256()
    digest.update(f"{tensor.dtype}|{tuple(tensor.shape)}|".encode())
    digest.update(tensor_bytes(tensor))
    return digest.hexdigest()


def state_checksum(model: nn.Module) -> str:
    """Return the sha256 over every parameter (name, dtype, shape, bytes) in name order."""
    digest = hashlib.sha256()
    params = dict(model.named_parameters())
    for name in sorted(params):
        param = params[name]
        digest.update(f"{name}|{param.dtype}|{tuple(param.shape)}|".encode())
        digest.update(tensor_bytes(param))
    return digest.hexdigest()
