"""Second-moment statistics `C = E[k kᵀ]` of the edited module's input keys over a corpus.

Every non-pad token position of every document contributes one key. Sums are accumulated in
float64 and stored as float32 in an on-disk cache keyed by the model, layer, module, corpus
and sample count.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from tqdm.auto import tqdm

from editor.arch import ArchSpec, arch_spec, get_module
from editor.cancel import checkpoint
from editor.errors import EditorError
from editor.hooks import capture_input
from editor.loading import state_checksum

DEFAULT_CACHE_DIR = Path("var/cache/stats")


@dataclass
class SecondMoment:
    """The uncentred second moment `mom2` (m×m, float32) of `count` key vectors."""

    mom2: torch.Tensor  # (m, m)
    count: int
    meta: dict[str, Any] = field(default_factory=dict)
    from_cache: bool = False
    _inverse: torch.Tensor | None = field(default=None, repr=False)

    @property
    def dim(self) -> int:
        """Return the key dimension m."""
        return int(self.mom2.shape[0])

    def inverse(self) -> torch.Tensor:
        """Return `C⁻¹` (float32, computed in float64 once and cached)."""
        if self._inverse is None:
            if self.count < self.dim:
                raise EditorError(
                    f"second moment from {self.count} keys is singular (key dim {self.dim}); "
                    "use a larger corpus"
                )
            inv = torch.linalg.inv(self.mom2.double())  # (m, m)
            self._inverse = inv.float()
        return self._inverse

    def solve(self, k: torch.Tensor) -> torch.Tensor:
        """Return `C⁻¹ k` for k of shape (m,) or (m, n), on k's device and dtype."""
        inv = self.inverse().to(k.device)  # (m, m)
        return (inv @ k.float()).to(k.dtype)  # (m,) or (m, n)


def corpus_texts(corpus: Iterable[str] | str | Path, n_samples: int) -> list[str]:
    """Return the first `n_samples` non-empty texts of an iterable or of a text file's lines."""
    if isinstance(corpus, str | Path):
        path = Path(corpus)
        if not path.is_file():
            raise EditorError(f"corpus file not found: {path}")
        with path.open(encoding="utf-8") as handle:
            return list(islice((ln.rstrip("\n") for ln in handle if ln.strip()), n_samples))
    return list(islice((t for t in corpus if t and t.strip()), n_samples))


def corpus_sha256(texts: Iterable[str]) -> str:
    """Return the sha256 over the texts (length-prefixed, in order)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def stats_key(
    model_key: str, layer: int, module: str, corpus_hash: str, n_samples: int, max_length: int
) -> str:
    """Return the cache key of one statistic."""
    payload = json.dumps([model_key, layer, module, corpus_hash, n_samples, max_length])
    return hashlib.sha256(payload.encode()).hexdigest()


def _length_batches(lengths: list[int], batch_tokens: int) -> Iterator[list[int]]:
    """Yield index lists, length-sorted, whose padded size stays within `batch_tokens`."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) + 1) * lengths[i] > batch_tokens:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


@torch.no_grad()
def compute_second_moment(
    model: nn.Module,
    tokenizer: Any,
    module: nn.Module,
    texts: list[str],
    *,
    max_length: int,
    batch_tokens: int,
    progress: bool | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[torch.Tensor, int]:
    """Return (Σ k kᵀ in float64, count) of `module`'s input over all non-pad positions."""
    device = next(model.parameters()).device
    ids = [tokenizer(t, truncation=True, max_length=max_length)["input_ids"] for t in texts]
    lengths = [len(x) for x in ids]
    total: torch.Tensor | None = None
    count, done = 0, 0
    disable = (not sys.stderr.isatty()) if progress is None else not progress
    bar = tqdm(total=len(ids), desc="second moment", unit="doc", disable=disable)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for batch in _length_batches(lengths, batch_tokens):
        checkpoint()
        width = max(lengths[i] for i in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)  # (B, L)
        mask = torch.zeros((len(batch), width), dtype=torch.long)  # (B, L)
        for row, i in enumerate(batch):
            input_ids[row, : lengths[i]] = torch.tensor(ids[i])
            mask[row, : lengths[i]] = 1
        input_ids, mask = input_ids.to(device), mask.to(device)
        with capture_input(module, stop=True) as cap:
            model(input_ids=input_ids, attention_mask=mask, use_cache=False)
        assert cap.value is not None
        keys = cap.value[mask.bool()].double()  # (N, m)
        outer = keys.T @ keys  # (m, m)
        total = outer if total is None else total + outer
        count += int(keys.shape[0])
        bar.update(len(batch))
        done += len(batch)
        if on_progress is not None:
            on_progress(done, len(ids))
    bar.close()
    if total is None:
        raise EditorError("corpus is empty; cannot compute a second moment")
    return total, count


def layer_second_moment(
    model: nn.Module,
    tokenizer: Any,
    layer: int,
    corpus: Iterable[str] | str | Path,
    *,
    n_samples: int = 100_000,
    max_length: int | None = None,
    batch_tokens: int | None = None,
    spec: ArchSpec | None = None,
    cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
    model_key: str | None = None,
    progress: bool | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> SecondMoment:
    """Return `E[k kᵀ]` of the edited module's input at `layer`, from cache when present.

    `model_key` identifies the weights (default: `state_checksum(model)`); pass the base
    model's `weights_sha256` so statistics survive edits, as in the reference code.
    """
    spec = spec or arch_spec(model)
    module_name = spec.down_proj_name(layer)
    cap = spec.max_positions(model.config)
    max_length = min(max_length or cap, cap)
    batch_tokens = batch_tokens or 3 * max_length
    texts = corpus_texts(corpus, n_samples)
    model_key = model_key or state_checksum(model)
    key = stats_key(model_key, layer, module_name, corpus_sha256(texts), n_samples, max_length)
    meta = {
        "model_key": model_key,
        "layer": layer,
        "module": module_name,
        "n_samples": n_samples,
        "n_texts": len(texts),
        "max_length": max_length,
        "key": key,
    }
    path = Path(cache_dir) / f"{key}.safetensors" if cache_dir is not None else None
    if path is not None and path.is_file():
        with safe_open(str(path), framework="pt") as handle:
            stored = json.loads(handle.metadata()["kgedit_stats"])
            mom2 = handle.get_tensor("mom2")  # (m, m)
        return SecondMoment(mom2=mom2, count=int(stored["count"]), meta=stored, from_cache=True)
    was_training = model.training
    model.eval()
    try:
        total, count = compute_second_moment(
            model,
            tokenizer,
            get_module(model, module_name),
            texts,
            max_length=max_length,
            batch_tokens=batch_tokens,
            progress=progress,
            on_progress=on_progress,
        )
    finally:
        model.train(was_training)
    mom2 = (total / count).float().cpu().contiguous()  # (m, m)
    meta["count"] = count
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file({"mom2": mom2}, str(tmp), metadata={"kgedit_stats": json.dumps(meta)})
        tmp.replace(path)
    return SecondMoment(mom2=mom2, count=count, meta=meta)
