"""Models a worker keeps loaded between jobs: an LRU bounded by memory.

One entry per registered model holds the loaded base plus the chain of deltas applied to
it, so moving to another version of that model only reverts and applies deltas (bit-exact,
checked per parameter). When the entries together exceed the bound, the least recently
used go first; the entry in use is never evicted, even when it alone is larger.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import psutil
import torch

from editor.delta import Delta
from workers.db import Database
from workers.ledger.registry import model_row
from workers.ledger.store import apply_verified, load_base, load_delta
from workers.ledger.versions import chain
from workers.settings import Settings

log = logging.getLogger(__name__)


def module_bytes(model: torch.nn.Module) -> int:
    """Return the bytes held by a module's parameters and buffers."""
    tensors = list(model.parameters()) + list(model.buffers())
    seen, total = set(), 0
    for t in tensors:
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        total += t.numel() * t.element_size()
    return total


def delta_bytes(delta: Delta) -> int:
    """Return the bytes a delta keeps in memory (factors, dense parts, fix-ups)."""
    total = 0
    for e in delta.entries:
        for t in (e.U, e.V, e.dense, e.fix_index, e.fix_value):
            if t is not None:
                total += t.numel() * t.element_size()
    return total


@dataclass
class WarmModel:
    """A loaded model at some version: root id, applied chain [(version id, delta)], size."""

    name: str
    model: Any
    tokenizer: Any
    root_id: int
    weights_sha256: str
    meta: dict[str, Any]
    graph_url: str | None
    chain: list[tuple[int, Delta]] = field(default_factory=list)

    @property
    def version_id(self) -> int:
        """Return the version the weights are at now."""
        return self.chain[-1][0] if self.chain else self.root_id

    @property
    def nbytes(self) -> int:
        """Return the memory held by the model and its applied deltas."""
        return module_bytes(self.model) + sum(delta_bytes(d) for _, d in self.chain)

    def checkout(self, db: Database, version_id: int, ledger: Any) -> None:
        """Move the weights to `version_id`: revert what is not on its chain, apply the rest."""
        with db.session() as session:
            rows = chain(session, self.name, version_id)
        target = [r.id for r in rows[1:]]
        keep = 0
        while keep < min(len(target), len(self.chain)) and self.chain[keep][0] == target[keep]:
            keep += 1
        with torch.no_grad():
            while len(self.chain) > keep:
                _, delta = self.chain.pop()
                delta.revert(self.model, strict=True)
            for row in rows[1 + keep :]:
                delta = load_delta(row, ledger)
                apply_verified(self.model, delta, row.id)
                self.chain.append((row.id, delta))


def default_max_bytes(settings: Settings) -> int:
    """Return the configured bound, or a quarter of the machine's memory."""
    return settings.warm_models_max_bytes or psutil.virtual_memory().total // 4


class WarmModels:
    """An LRU of `WarmModel`s bounded by `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, WarmModel] = OrderedDict()
        self._lock = threading.RLock()

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        """Return the loaded models, least recently used first."""
        return list(self._entries)

    def total_bytes(self) -> int:
        """Return the memory held by every entry."""
        return sum(e.nbytes for e in self._entries.values())

    def get(self, db: Database, name: str, device: str = "cpu") -> WarmModel:
        """Return the warm entry of `name`, loading the base (verified) when absent."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None:
                self._entries.move_to_end(name)
                return entry
            with db.session() as session:
                row = model_row(session, name)
                root = chain(session, name, row.head_version_id)[0]
                info = (row.weights_sha256, dict(row.meta or {}), row.graph_url)
            model, tok = load_base(row, device)
            entry = WarmModel(name, model, tok, root.id, *info)
            self._entries[name] = entry
            self._evict(keep=name)
            return entry

    def drop(self, name: str) -> None:
        """Forget a model (its in-memory weights can no longer be trusted, or to free memory)."""
        with self._lock:
            if self._entries.pop(name, None) is not None:
                _release()

    def _evict(self, keep: str) -> None:
        """Drop least recently used entries until the bound holds (never `keep`)."""
        while self.total_bytes() > self.max_bytes and len(self._entries) > 1:
            oldest = next(iter(self._entries))
            if oldest == keep:
                break
            log.info("evicting warm model %s", oldest)
            self._entries.pop(oldest)
            _release()


def _release() -> None:
    """Return freed tensor memory to the system (and the GPU)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
