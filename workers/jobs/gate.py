"""The audit gate: score a job's probes before and after its deltas, check its thresholds.

A minimal probe runner over the audit's own parts: `editor.probe_scoring.score_probes`
scores, `workers.audit.build.summarise` groups by kind (and bucket) with bootstrap
intervals and applies the thresholds. The full audit (graph-derived probes, HTML report)
stays in `workers.audit`; a job carries its probes and thresholds in its payload.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contracts.types import Probe
from editor.probe_scoring import ProbeScore, ScoringConfig, score_probes
from workers.audit.build import summarise
from workers.audit.stats import Threshold

BOOTSTRAP = 200


def score(model: Any, tokenizer: Any, probes: Sequence[Probe]) -> list[ProbeScore]:
    """Score the probes on the model as it is now."""
    return score_probes(model, tokenizer, list(probes), ScoringConfig())


def scores_to_json(scores: Sequence[ProbeScore]) -> list[dict[str, Any]]:
    """Return scores as JSON-ready dicts (kept in the job row between deliveries)."""
    return [s.to_dict() for s in scores]


def scores_from_json(data: Sequence[dict[str, Any]]) -> list[ProbeScore]:
    """Read scores written by `scores_to_json`."""
    out = []
    for d in data:
        d = dict(d)
        if d.get("logp_expected") is None:
            d["logp_expected"] = float("nan")
        d["hop_answers"] = tuple(d.get("hop_answers") or ())
        d["hop_prompts"] = tuple(d.get("hop_prompts") or ())
        out.append(ProbeScore(**d))
    return out


def _value(block: dict | None, key: str) -> float | None:
    """Return block[key]["value"] or None."""
    return ((block or {}).get(key) or {}).get("value")


def evaluate(
    probes: Sequence[Probe],
    before: Sequence[ProbeScore],
    after: Sequence[ProbeScore],
    thresholds: Sequence[Threshold],
) -> dict[str, Any]:
    """Return {passed, checked, groups, failing}: per-group figures and the verdicts.

    `checked` counts the groups a threshold judged (pass or fail); 0 means nothing was.
    """
    rows = summarise(probes, before, after, thresholds, n_boot=BOOTSTRAP)
    groups = []
    for row in rows:
        metric = row.get("entropy") if row["kind"] == "fluency" else row.get("success")
        groups.append(
            {
                "group": row["group"],
                "n": row["n"],
                "before": _value(metric, "before"),
                "after": _value(metric, "after"),
                "change": _value(metric, "delta"),
                "status": row["status"],
                "reason": row["reason"],
                "threshold": row["threshold"],
            }
        )
    failing = [g for g in groups if g["status"] == "fail"]
    checked = [g for g in groups if g["status"] in ("pass", "fail")]
    return {"passed": not failing, "checked": len(checked), "groups": groups, "failing": failing}
