"""Checksums of the ledger: per-parameter hashes, the version checksum, file hashes.

A version's checksum is the sha256 over the sorted lines ``name sha256(param)``, where the
parameter hash is `editor.loading.tensor_sha256` (dtype, shape, bytes). A delta records the
hash of every parameter it touches after applying, so the checksum of a child version is
computed from its parent's hashes without reading untouched weights; `param_hashes` of a
loaded model gives the same checksum, which is how a load is verified end to end.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from editor.loading import tensor_sha256

_CHUNK = 1 << 20


def param_hashes(model: nn.Module) -> dict[str, str]:
    """Return {parameter name: tensor_sha256} over every (deduplicated) parameter."""
    return {name: tensor_sha256(p) for name, p in model.named_parameters()}


def ledger_checksum(hashes: Mapping[str, str]) -> str:
    """Return the version checksum of a {parameter: hash} map (order independent)."""
    digest = hashlib.sha256()
    for name in sorted(hashes):
        digest.update(f"{name} {hashes[name]}\n".encode())
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """Return the sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
