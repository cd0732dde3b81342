"""Export a version as an ordinary HF directory: merged weights in safetensors, provenance
(`kgedit_version.json`) and a model card (`README.md`, `workers.ledger.card`)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from editor.loading import save_model, weights_sha256
from workers.errors import ConflictError
from workers.graph_models import REPORT_FILE
from workers.ledger.card import model_card
from workers.ledger.registry import db_of, model_row
from workers.ledger.store import load_version
from workers.ledger.versions import chain
from workers.settings import Settings

PROVENANCE_FILE = "kgedit_version.json"
CARD_FILE = "README.md"


@dataclass(frozen=True)
class ExportInfo:
    """Where a version was exported and the checksums that identify it."""

    path: str
    model: str
    version_id: int
    checksum: str
    weights_sha256: str

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-ready data."""
        return dict(self.__dict__)


def export_version(
    model: str,
    version_id: int | None,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    settings: Settings | None = None,
) -> ExportInfo:
    """Write base + deltas of a version, merged, as an HF directory with safetensors weights.

    The weights are verified against the ledger before writing; the directory appears only
    when complete (written under a temporary name, then renamed).
    """
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not overwrite:
        raise ConflictError(f"{out} exists; pass overwrite=True to replace it")
    lm, tok, _ = load_version(model, version_id, verify=True, settings=settings)
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(lm, tok, tmp)
    export_sha = weights_sha256(tmp)
    with db_of(settings).session() as session:
        row = model_row(session, model)
        version_id = row.head_version_id if version_id is None else version_id
        rows = chain(session, model, version_id)
        base_path, base_sha = Path(row.path), row.weights_sha256
        card = model_card(session, row, rows, export_sha)
    (tmp / CARD_FILE).write_text(card, encoding="utf-8")
    if (base_path / REPORT_FILE).is_file():
        shutil.copy2(base_path / REPORT_FILE, tmp / REPORT_FILE)
    provenance = {
        "model": model,
        "version_id": version_id,
        "checksum": rows[-1].checksum,
        "base": {"path": str(base_path), "weights_sha256": base_sha},
        "chain": [
            {"version_id": r.id, "method": r.method, "request_ids": list(r.request_ids or ())}
            for r in rows[1:]
        ],
    }
    (tmp / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=1) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return ExportInfo(str(out), model, version_id, rows[-1].checksum, export_sha)
