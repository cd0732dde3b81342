"""Targets the model can say, checked when an edit job is submitted (docs/calibration.md).

Each request's `target_new` is scored on the model's head version after the request's own
prompt: sayable when greedy decoding continues the target's first token with exactly the
rest of it, or when the rest's mean NLL is at most the model's calibrated threshold
(`say_nll`; `editor.calibrate.DEFAULT_SAY_NLL` without a calibration). A target the model
cannot say is reported as a warning in the job (`result["warnings"]`), never refused: ROME
lands few such edits, and the operator may teach the name first.
"""

from __future__ import annotations

import threading
from typing import Any

from workers.db import ModelRow, get_database
from workers.jobs.spec import JobSpec
from workers.settings import Settings

UNSAYABLE = "unsayable_target"
UNCHECKED = "targets_not_checked"
_LOCK = threading.Lock()
_WARM: dict[str, Any] = {}  # a WarmModels per metadata database, made on first use


def _model_at(model: str, weights: str, version_id: int, settings: Settings) -> tuple[Any, Any]:
    """Return the warm (model, tokenizer) of `model` moved to `version_id` (verified); a warm
    copy of other base weights (the name registered again) is loaded afresh."""
    from workers.jobs.warm import WarmModels, default_max_bytes  # torch: only to check

    url = settings.metadata_db_url
    warm = _WARM.get(url)
    if warm is None:
        warm = _WARM[url] = WarmModels(default_max_bytes(settings))
    db = get_database(url)
    entry = warm.get(db, model, settings.device)
    if entry.weights_sha256 != weights:
        warm.drop(model)
        entry = warm.get(db, model, settings.device)
    entry.checkout(db, version_id, settings.ledger_path)
    return entry.model, entry.tokenizer


def target_warnings(spec: JobSpec, settings: Settings) -> list[dict[str, Any]]:
    """Return a warning per edit target the model's head cannot say ([] for other kinds)."""
    from editor.calibrate import DEFAULT_SAY_NLL, check_targets
    from editor.errors import EditorError
    from workers.errors import WorkersError

    if spec.kind != "edit" or not spec.requests or not settings.check_targets:
        return []
    with get_database(settings.metadata_db_url).session() as session:
        row = session.get(ModelRow, spec.model)
        if row is None or row.head_version_id is None:
            return []
        head, weights = row.head_version_id, row.weights_sha256
        threshold = float((row.calibration or {}).get("say_nll", DEFAULT_SAY_NLL))
    prompts = [r.rendered() for r in spec.requests]
    targets = [r.target_new for r in spec.requests]
    try:
        with _LOCK:
            model, tok = _model_at(spec.model, weights, head, settings)
            checks = check_targets(model, tok, prompts, targets, threshold)
    except (EditorError, WorkersError, OSError) as exc:
        return [{"kind": UNCHECKED, "message": f"targets were not checked: {exc}"}]
    return [
        {
            "kind": UNSAYABLE,
            "request_id": r.request_id,
            "target": c.target,
            "tail_nll": c.nll,
            "threshold": c.threshold,
            "message": (
                f"the model cannot say {c.target!r}: after its first token the rest has mean "
                f"NLL {c.nll:.2f} > {c.threshold:.2f} and greedy decoding does not produce it"
            ),
        }
        for r, c in zip(spec.requests, checks, strict=True)
        if not c.sayable
    ]
