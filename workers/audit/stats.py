"""Aggregation of probe scores: rates before and after, bootstrap intervals, thresholds.

Probes of one change are correlated (one edit moves its paraphrases together), so intervals
come from a *cluster* bootstrap: changes are resampled with replacement and the statistic is
recomputed on their pooled probes (sample-audit facts are their own clusters). Changes
before/after are paired: the interval of the change is the bootstrap of the per-probe
difference, so it is narrower than the two intervals side by side. Percentile intervals,
`n_boot` resamples from a seeded generator, so a report is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap interval (None where nothing was measured)."""

    value: float | None
    lo: float | None = None
    hi: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        """Return {value, lo, hi} with floats rounded to 6 places."""
        return {k: (None if v is None else round(float(v), 6)) for k, v in asdict(self).items()}


def cluster_bootstrap(
    values: Sequence[float],
    clusters: Sequence[str],
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Return the mean of `values` with a percentile interval from resampling whole clusters."""
    x = np.asarray(values, dtype=np.float64)  # (n,)
    keep = np.isfinite(x)
    x = x[keep]
    if x.size == 0:
        return Estimate(None)
    labels = np.asarray(clusters, dtype=object)[keep]
    _, idx = np.unique(labels.astype(str), return_inverse=True)  # (n,)
    k = int(idx.max()) + 1
    sums = np.bincount(idx, weights=x, minlength=k)  # (k,)
    counts = np.bincount(idx, minlength=k).astype(np.float64)  # (k,)
    point = float(x.mean())
    if k < 2 or n_boot < 1:
        return Estimate(point, point, point)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, k, size=(n_boot, k))  # (B, k)
    stats = sums[draws].sum(1) / counts[draws].sum(1)  # (B,)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return Estimate(point, float(lo), float(hi))


@dataclass(frozen=True)
class Threshold:
    """A gate on one report group ("rewrite", "same_subject:hard", "sample", ...).

    `min_after`: the metric after the change must reach this; `max_drop`: it may fall by at
    most this much (absolute, or relative to before when `relative`).
    """

    group: str
    metric: str = "success"
    min_after: float | None = None
    max_drop: float | None = None
    relative: bool = False

    def to_dict(self) -> dict:
        """Return the threshold as a JSON-ready dict."""
        return asdict(self)


EDIT_THRESHOLDS = (
    Threshold("rewrite", min_after=0.9),
    Threshold("paraphrase", min_after=0.5),
    Threshold("neighbour", max_drop=0.1),
    Threshold("same_subject", max_drop=0.1),
    Threshold("prefix_distraction", max_drop=0.2),
    Threshold("sample", max_drop=0.02),
    Threshold("fluency", metric="entropy", max_drop=0.1, relative=True),
)
UNLEARN_THRESHOLDS = (
    Threshold("form_cloze:forget", min_after=0.9),
    Threshold("form_question:forget", min_after=0.9),
    Threshold("form_mc:forget", min_after=0.75),
    Threshold("form_tf:forget", min_after=0.75),
    Threshold("reverse:forget", min_after=0.75),
    Threshold("retain", max_drop=0.1),
    Threshold("sample", max_drop=0.02),
    Threshold("fluency", metric="entropy", max_drop=0.1, relative=True),
)
DEFAULT_THRESHOLDS = EDIT_THRESHOLDS + tuple(
    t for t in UNLEARN_THRESHOLDS if t.group not in {e.group for e in EDIT_THRESHOLDS}
)


def check(threshold: Threshold, metric: dict) -> dict:
    """Return {status, reason, significant} of a threshold on a group's metric block."""
    before, after, delta = (metric.get(k) or {} for k in ("before", "after", "delta"))
    if after.get("value") is None:
        return {"status": "info", "reason": "nothing measured", "significant": False}
    reasons, significant = [], False
    if threshold.min_after is not None and after["value"] < threshold.min_after:
        reasons.append(f"after {after['value']:.3f} < {threshold.min_after:.3f}")
        significant = after.get("hi") is not None and after["hi"] < threshold.min_after
    if threshold.max_drop is not None and delta.get("value") is not None:
        limit = threshold.max_drop
        if threshold.relative:
            base = before.get("value")
            limit = threshold.max_drop * abs(base) if base else threshold.max_drop
        if delta["value"] < -limit:
            reasons.append(f"drop {-delta['value']:.3f} > {limit:.3f}")
            significant = significant or (delta.get("hi") is not None and delta["hi"] < -limit)
    if reasons:
        return {"status": "fail", "reason": "; ".join(reasons), "significant": significant}
    return {"status": "pass", "reason": "", "significant": False}


def finite_mean(values: Sequence[float | None]) -> float | None:
    """Return the mean of the finite values, or None."""
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return sum(kept) / len(kept) if kept else None
