"""Reversible weight changes: low-rank factors or dense differences, stored as safetensors.

Bit-exact revert (design decision)
----------------------------------
`(W + D) - D` is not always bit-equal to `W` in floating point: when `W + D` rounds into a
higher binade, the rounding error of the addition exceeds half an ulp of `W`. So `apply`
(1) builds the update `D` in float64 with element-wise operations only (outer products
summed in a fixed order, no matmul), which gives the same bits on every device;
(2) writes `W_new = round(W + D)`; (3) computes `round(W_new - D)` right away and records,
for the few elements where that differs from `W` bit for bit, their flat index and original
value (the *fix-up*). `revert` computes `round(W_new - D)` the same way and writes the
fix-up values back, which restores `W` exactly. Per-parameter sha256 checksums before and
after are recorded and checked. The fix-up is stored in the delta file, so a delta saved
after `apply` can be reverted in another process. When the update is large next to the
weights (many binade crossings) the sparse fix-up would outgrow the parameter; then the
whole original parameter is kept instead (`fix_index` None), so the cost is never more than
one copy of the edited parameter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from editor.errors import EditorError
from editor.loading import tensor_sha256

FORMAT = "kgedit.delta/1"
_ROW_CHUNK = 1024
_INT_VIEW = {8: torch.int64, 4: torch.int32, 2: torch.int16, 1: torch.int8}


@dataclass
class DeltaEntry:
    """The change of one parameter: math-orientation factors `U Vᵀ` or a dense difference."""

    param: str
    shape: tuple[int, ...]
    transpose: bool = False  # storage = (U Vᵀ)ᵀ, e.g. GPT-2 Conv1D
    U: torch.Tensor | None = None  # (d_out, r)
    V: torch.Tensor | None = None  # (d_in, r)
    dense: torch.Tensor | None = None  # storage shape
    sha_before: str | None = None
    sha_after: str | None = None
    fix_index: torch.Tensor | None = None  # (n_fix,) flat indices into the parameter
    fix_value: torch.Tensor | None = None  # (n_fix,) originals there, or the whole original

    @property
    def kind(self) -> str:
        """Return "low_rank" or "dense"."""
        return "dense" if self.dense is not None else "low_rank"

    @property
    def rank(self) -> int | None:
        """Return the number of factor columns, or None for a dense entry."""
        return None if self.U is None else int(self.U.shape[1])

    def _factor_pair(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (A, B) in float64 with storage = A Bᵀ."""
        assert self.U is not None and self.V is not None
        U = self.U.to(device=device, dtype=torch.float64)  # (d_out, r)
        V = self.V.to(device=device, dtype=torch.float64)  # (d_in, r)
        return (V, U) if self.transpose else (U, V)

    def update_rows(self, start: int, stop: int, device: torch.device) -> torch.Tensor:
        """Return rows [start, stop) of the storage-orientation update in float64."""
        if self.dense is not None:
            return self.dense[start:stop].to(device=device, dtype=torch.float64)
        A, B = self._factor_pair(device)
        A = A[start:stop]  # (rows, r)
        out = A[:, 0:1] * B[:, 0].unsqueeze(0)  # (rows, cols), exact: fp32*fp32 fits fp64
        for i in range(1, A.shape[1]):
            out = out + A[:, i : i + 1] * B[:, i].unsqueeze(0)  # fixed order, element-wise
        return out

    def update(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """Return the full storage-orientation update in float64."""
        return self.update_rows(0, self.shape[0], torch.device(device))

    def math_update(self) -> torch.Tensor:
        """Return the update in math orientation (d_out, d_in), float64 on CPU."""
        full = self.update()
        return full.T if self.transpose else full

    def norm(self) -> float:
        """Return the Frobenius norm of the update."""
        if self.U is None or self.V is None:
            return float(torch.linalg.norm(self.update()))
        U, V = self.U.double(), self.V.double()  # (d_out, r), (d_in, r)
        gram = (U.T @ U) * (V.T @ V)  # (r, r): ‖U Vᵀ‖² = Σ (UᵀU ∘ VᵀV)
        return float(gram.sum().clamp(min=0).sqrt())


def _bits(t: torch.Tensor) -> torch.Tensor:
    """View a floating tensor as integers of the same width (for bitwise comparison)."""
    return t.view(_INT_VIEW[t.element_size()])


def _param(model: nn.Module, name: str) -> nn.Parameter:
    """Return the parameter called `name` or raise `EditorError`."""
    try:
        return model.get_parameter(name)
    except AttributeError as exc:
        raise EditorError(f"model has no parameter {name!r}") from exc


def _row_chunks(n: int) -> Iterator[tuple[int, int]]:
    """Yield [start, stop) row ranges of at most `_ROW_CHUNK` rows."""
    for start in range(0, n, _ROW_CHUNK):
        yield start, min(n, start + _ROW_CHUNK)


@dataclass
class Delta:
    """A reversible set of parameter changes made by one method for some requests."""

    method: str
    entries: list[DeltaEntry]
    request_ids: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def low_rank(
        cls,
        method: str,
        param: str,
        shape: Sequence[int],
        U: torch.Tensor,
        V: torch.Tensor,
        *,
        transpose: bool = False,
        request_ids: Sequence[str] = (),
        meta: dict[str, Any] | None = None,
    ) -> Delta:
        """Build a one-parameter delta `W_math += U Vᵀ` (U: (d_out, r), V: (d_in, r))."""
        U = U.detach().float().cpu().contiguous()  # (d_out, r)
        V = V.detach().float().cpu().contiguous()  # (d_in, r)
        expected = (V.shape[0], U.shape[0]) if transpose else (U.shape[0], V.shape[0])
        if tuple(shape) != expected or U.shape[1] != V.shape[1]:
            raise EditorError(f"factors {tuple(U.shape)}, {tuple(V.shape)} do not fit {shape}")
        entry = DeltaEntry(param=param, shape=tuple(shape), transpose=transpose, U=U, V=V)
        return cls(method, [entry], list(request_ids), dict(meta or {}))

    @classmethod
    def from_dense(
        cls,
        method: str,
        diffs: dict[str, torch.Tensor],
        *,
        request_ids: Sequence[str] = (),
        meta: dict[str, Any] | None = None,
    ) -> Delta:
        """Build a delta of dense storage-orientation differences, one per parameter name."""
        entries = [
            DeltaEntry(param=name, shape=tuple(d.shape), dense=d.detach().cpu().contiguous())
            for name, d in diffs.items()
        ]
        return cls(method, entries, list(request_ids), dict(meta or {}))

    def __repr__(self) -> str:
        """Return a one-line summary (method, requests, parameters and their kind), no tensors."""
        params = ", ".join(
            f"{e.param} ({e.kind}{'' if e.rank is None else f', rank {e.rank}'})"
            for e in self.entries
        )
        return f"Delta({self.method!r}, requests={self.request_ids}, params=[{params}])"

    def norms(self) -> dict[str, float]:
        """Return the Frobenius norm of each parameter's update."""
        return {e.param: e.norm() for e in self.entries}

    @torch.no_grad()
    def apply(self, model: nn.Module, *, strict: bool = True) -> None:
        """Add the update to the model in place and record what `revert` needs."""
        for entry in self.entries:
            param = _param(model, entry.param)
            if tuple(param.shape) != entry.shape:
                raise EditorError(f"{entry.param}: shape {tuple(param.shape)} != {entry.shape}")
            before = tensor_sha256(param)
            if strict and entry.sha_before is not None and entry.sha_before != before:
                raise EditorError(f"{entry.param}: weights differ from those the delta was made on")
            fix_idx, fix_val, originals = [], [], []
            n_cols = param[0].numel()
            for start, stop in _row_chunks(entry.shape[0]):
                old = param.data[start:stop].clone()  # (rows, ...)
                upd = entry.update_rows(start, stop, param.device).reshape(old.shape)
                new = (old.double() + upd).to(param.dtype)  # (rows, ...)
                back = (new.double() - upd).to(param.dtype)  # (rows, ...)
                bad = (_bits(back) != _bits(old)).reshape(-1).nonzero().squeeze(1)  # (n_bad,)
                fix_idx.append(bad.cpu() + start * n_cols)
                fix_val.append(old.reshape(-1)[bad].cpu())
                originals.append(old.cpu())
                param.data[start:stop] = new
            index = torch.cat(fix_idx)  # (n_fix,)
            if param.numel() < 2**31:
                index = index.to(torch.int32)
            sparse_bytes = index.numel() * (index.element_size() + param.element_size())
            if sparse_bytes < param.numel() * param.element_size():
                entry.fix_index, entry.fix_value = index, torch.cat(fix_val)  # (n_fix,) each
            else:  # most elements need fixing: keep the whole original instead
                entry.fix_index, entry.fix_value = None, torch.cat(originals)  # param shape
            del originals
            after = tensor_sha256(param)
            if strict and entry.sha_after is not None and entry.sha_after != after:
                raise EditorError(f"{entry.param}: applying gave other weights than recorded")
            entry.sha_before, entry.sha_after = before, after

    @torch.no_grad()
    def revert(self, model: nn.Module, *, strict: bool = True) -> None:
        """Subtract the update again, restoring the pre-apply weights bit for bit."""
        for entry in reversed(self.entries):
            if entry.fix_value is None:
                raise EditorError(f"{entry.param}: delta was never applied; nothing to revert")
            param = _param(model, entry.param)
            if strict and tensor_sha256(param) != entry.sha_after:
                raise EditorError(f"{entry.param}: weights are not those this delta produced")
            if entry.fix_index is None:  # the whole original was kept
                param.data.copy_(entry.fix_value.to(device=param.device, dtype=param.dtype))
            else:
                self._revert_sparse(param, entry)
            if strict and tensor_sha256(param) != entry.sha_before:
                raise EditorError(f"{entry.param}: revert did not restore the recorded weights")

    @staticmethod
    def _revert_sparse(param: nn.Parameter, entry: DeltaEntry) -> None:
        """Write round(W_new - D) and then the recorded original values at the fix-up indices."""
        assert entry.fix_index is not None and entry.fix_value is not None
        fix_index = entry.fix_index.long()  # (n_fix,)
        n_cols = param[0].numel()
        for start, stop in _row_chunks(entry.shape[0]):
            cur = param.data[start:stop]  # (rows, ...)
            upd = entry.update_rows(start, stop, param.device).reshape(cur.shape)
            back = (cur.double() - upd).to(param.dtype).reshape(-1)  # (rows * cols,)
            lo, hi = start * n_cols, stop * n_cols
            sel = (fix_index >= lo) & (fix_index < hi)  # (n_fix,)
            idx = (fix_index[sel] - lo).to(param.device)  # (n_sel,)
            back[idx] = entry.fix_value[sel].to(device=param.device, dtype=param.dtype)
            param.data[start:stop] = back.reshape(cur.shape)

    def save(self, path: str | Path) -> None:
        """Write the delta (factors, dense parts, fix-ups) and JSON metadata as safetensors."""
        tensors: dict[str, torch.Tensor] = {}
        entries_meta = []
        for i, e in enumerate(self.entries):
            for key in ("U", "V", "dense", "fix_index", "fix_value"):
                value = getattr(e, key)
                if value is not None:
                    tensors[f"{i}.{key}"] = value.detach().cpu().contiguous()
            entries_meta.append(
                {
                    "param": e.param,
                    "shape": list(e.shape),
                    "transpose": e.transpose,
                    "sha_before": e.sha_before,
                    "sha_after": e.sha_after,
                    "norm": e.norm(),
                    "n_fix": None if e.fix_index is None else int(e.fix_index.numel()),
                }
            )
        header = {
            "format": FORMAT,
            "method": self.method,
            "request_ids": self.request_ids,
            "entries": entries_meta,
            "meta": self.meta,
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(path), metadata={"kgedit_delta": json.dumps(header)})

    @classmethod
    def load(cls, path: str | Path) -> Delta:
        """Read a delta written by `save`."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get("kgedit_delta")
        if raw is None:
            raise EditorError(f"{path} is not a kgedit delta file")
        header = json.loads(raw)
        if header.get("format") != FORMAT:
            raise EditorError(f"{path}: unknown delta format {header.get('format')!r}")
        tensors = load_file(str(path))
        entries = []
        for i, em in enumerate(header["entries"]):
            parts = {
                k: tensors.get(f"{i}.{k}") for k in ("U", "V", "dense", "fix_index", "fix_value")
            }
            entries.append(
                DeltaEntry(
                    param=em["param"],
                    shape=tuple(em["shape"]),
                    transpose=em["transpose"],
                    sha_before=em["sha_before"],
                    sha_after=em["sha_after"],
                    **parts,
                )
            )
        return cls(header["method"], entries, list(header["request_ids"]), header["meta"])


def scaled(
    delta: Delta, factor: float, method: str | None = None, meta: dict[str, Any] | None = None
) -> Delta:
    """Return θ₀ + factor·Δ as a new delta: dense differences (or U) times `factor` in
    float64, stored in their own dtype; it reverts bit for bit like any delta."""
    if not isinstance(factor, int | float) or factor != factor:
        raise EditorError(f"scale factor must be a number, not {factor!r}")
    entries = []
    for e in delta.entries:
        if e.dense is not None:
            dense = (e.dense.double() * factor).to(e.dense.dtype)  # storage shape
            entries.append(DeltaEntry(param=e.param, shape=e.shape, dense=dense))
        elif e.U is not None and e.V is not None:
            U = (e.U.double() * factor).to(e.U.dtype)  # (rows, rank)
            entries.append(
                DeltaEntry(param=e.param, shape=e.shape, transpose=e.transpose, U=U, V=e.V.clone())
            )
        else:
            raise EditorError(f"{e.param}: delta entry holds no update")
    info = {**delta.meta, "scale": float(factor), **(meta or {})}
    return Delta(method or delta.method, entries, list(delta.request_ids), info)


def apply_all(model: nn.Module, deltas: Sequence[Delta]) -> None:
    """Apply deltas in order."""
    for delta in deltas:
        delta.apply(model)


def revert_all(model: nn.Module, deltas: Sequence[Delta]) -> None:
    """Revert deltas in reverse order (the inverse of `apply_all`)."""
    for delta in reversed(deltas):
        delta.revert(model)
