"""Build the audit report (a JSON-ready dict, schema in `workers.audit.schema`) from scores.

Groups are one row per probe kind plus one per (kind, bucket) where a kind has buckets, e.g.
`same_subject:hard`, `multi_hop:3-hop`, `form_cloze:forget`. Each row holds the success rate,
the exact-match rate and the mean probability of the expected answer before and after, with
the paired change, all with cluster-bootstrap intervals, and the threshold verdict.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import numpy as np

from contracts.types import Probe, ProbeKind
from editor.probe_scoring import ProbeScore
from kg.probes import KIND_RETAIN, KIND_SAMPLE, ChangeProbes
from workers.audit.schema import SCHEMA_ID, SCHEMA_VERSION
from workers.audit.stats import Threshold, check, cluster_bootstrap, finite_mean

KIND_ORDER = (*(k.value for k in ProbeKind), KIND_RETAIN, KIND_SAMPLE)
SHIFT_BINS = 40


def group_of(probe: Probe) -> tuple[str, str | None]:
    """Return (kind, bucket) of a probe."""
    return str(probe.kind), probe.meta.get("bucket") or None


def _cluster(probe: Probe, index: int) -> str:
    """The bootstrap cluster of a probe: its change, or itself for sample facts."""
    return probe.meta.get("change") or f"probe:{index}"


def _p(score: ProbeScore) -> float:
    """Return P̄(expected) = exp(mean log-prob), NaN when not scored."""
    lp = score.logp_expected
    return math.exp(lp) if lp is not None and math.isfinite(lp) else float("nan")


def _metric(
    before: Sequence[float],
    after: Sequence[float],
    clusters: Sequence[str],
    n_boot: int,
    confidence: float,
    seed: int,
) -> dict[str, dict]:
    """Return {before, after, delta} estimates of a per-probe quantity (paired delta)."""
    b = np.asarray(before, dtype=np.float64)  # (n,)
    a = np.asarray(after, dtype=np.float64)  # (n,)
    args = (n_boot, confidence, seed)
    return {
        "before": cluster_bootstrap(b, clusters, *args).to_dict(),
        "after": cluster_bootstrap(a, clusters, *args).to_dict(),
        "delta": cluster_bootstrap(a - b, clusters, *args).to_dict(),
    }


def summarise(
    probes: Sequence[Probe],
    before: Sequence[ProbeScore],
    after: Sequence[ProbeScore],
    thresholds: Sequence[Threshold],
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Return the report's group rows, in kind order, each with its threshold verdict."""
    members: dict[str, list[int]] = defaultdict(list)
    for i, probe in enumerate(probes):
        kind, bucket = group_of(probe)
        members[kind].append(i)
        if bucket:
            members[f"{kind}:{bucket}"].append(i)
    by_group = {t.group: t for t in thresholds}
    order = {k: n for n, k in enumerate(KIND_ORDER)}
    rows = []
    for name in sorted(members, key=lambda g: (order.get(g.split(":")[0], 99), g)):
        idx = members[name]
        kind, _, bucket = name.partition(":")
        clusters = [_cluster(probes[i], i) for i in idx]
        row: dict[str, Any] = {
            "group": name,
            "kind": kind,
            "bucket": bucket or None,
            "n": len(idx),
            "n_changes": len({probes[i].meta.get("change") for i in idx} - {None}),
        }
        args = (n_boot, confidence, seed)
        if kind == ProbeKind.FLUENCY.value:
            row["success"] = row["exact_match"] = row["p_expected"] = row["kept"] = None
            row["entropy"] = _metric(
                [before[i].entropy or 0.0 for i in idx],
                [after[i].entropy or 0.0 for i in idx],
                clusters,
                *args,
            )
        else:
            row["success"] = _metric(
                [float(bool(before[i].success)) for i in idx],
                [float(bool(after[i].success)) for i in idx],
                clusters,
                *args,
            )
            row["exact_match"] = _metric(
                [float(before[i].exact_match) for i in idx],
                [float(after[i].exact_match) for i in idx],
                clusters,
                *args,
            )
            row["p_expected"] = _metric(
                [_p(before[i]) for i in idx], [_p(after[i]) for i in idx], clusters, *args
            )
            right = [i for i in idx if before[i].success]
            row["kept"] = cluster_bootstrap(
                [float(bool(after[i].success)) for i in right],
                [_cluster(probes[i], i) for i in right],
                *args,
            ).to_dict()
            row["entropy"] = None
        threshold = by_group.get(name)
        row["threshold"] = threshold.to_dict() if threshold else None
        if threshold is None:
            row.update(status="info", reason="", significant=False)
        else:
            row.update(check(threshold, row[threshold.metric] or {}))
        rows.append(row)
    return rows


def _margin(score: ProbeScore) -> float | None:
    """Return log P̄(expected) − log P̄(best rival), or log P̄(expected) when no rival."""
    lp = score.logp_expected
    if lp is None or not math.isfinite(lp):
        return None
    return lp - score.logp_rival if score.logp_rival is not None else lp


def probe_record(index: int, probe: Probe, before: ProbeScore, after: ProbeScore) -> dict:
    """Return one probe with its two scores, JSON-ready."""
    kind, bucket = group_of(probe)
    meta = {k: v for k, v in probe.meta.items() if k not in {"change", "bucket", "role"}}
    return {
        "id": index,
        "change": probe.meta.get("change"),
        "kind": kind,
        "bucket": bucket,
        "role": probe.meta.get("role", "keep"),
        "prompt": probe.prompt,
        "expected": probe.expected,
        "unexpected": probe.unexpected,
        "rivals": list(probe.rivals),
        "meta": meta,
        "before": before.to_dict(),
        "after": after.to_dict(),
    }


def worst_regressions(
    probes: Sequence[Probe],
    before: Sequence[ProbeScore],
    after: Sequence[ProbeScore],
    limit: int = 25,
) -> list[dict]:
    """Return the probes that went from success to failure, largest margin drop first."""
    found = []
    for i, probe in enumerate(probes):
        if not (before[i].success and after[i].success is False):
            continue
        mb, ma = _margin(before[i]), _margin(after[i])
        drop = (mb - ma) if mb is not None and ma is not None else 0.0
        kind, bucket = group_of(probe)
        found.append(
            {
                "probe": i,
                "change": probe.meta.get("change"),
                "group": f"{kind}:{bucket}" if bucket else kind,
                "prompt": probe.prompt,
                "expected": probe.expected,
                "rival": probe.unexpected,
                "p_before": _finite(_p(before[i])),
                "p_after": _finite(_p(after[i])),
                "margin_drop": round(drop, 6),
            }
        )
    found.sort(key=lambda r: -r["margin_drop"])
    return found[:limit]


def _finite(value: float | None) -> float | None:
    """Return a rounded float, or None for missing or non-finite values."""
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


def sample_section(
    probes: Sequence[Probe],
    before: Sequence[ProbeScore],
    after: Sequence[ProbeScore],
    seed: int,
    n_boot: int,
    confidence: float,
) -> dict | None:
    """Return the whole-graph sample audit: rates, flips and the histogram of ΔP̄."""
    idx = [i for i, p in enumerate(probes) if str(p.kind) == KIND_SAMPLE]
    if not idx:
        return None
    clusters = [f"fact:{i}" for i in idx]
    args = (n_boot, confidence, seed)
    shift = np.array([_p(after[i]) - _p(before[i]) for i in idx])  # (n,)
    shift = shift[np.isfinite(shift)]
    counts, edges = np.histogram(shift, bins=SHIFT_BINS, range=(-1.0, 1.0))
    right = [i for i in idx if before[i].success]
    return {
        "n": len(idx),
        "seed": seed,
        "success": _metric(
            [float(bool(before[i].success)) for i in idx],
            [float(bool(after[i].success)) for i in idx],
            clusters,
            *args,
        ),
        "kept": cluster_bootstrap(
            [float(bool(after[i].success)) for i in right], [f"fact:{i}" for i in right], *args
        ).to_dict(),
        "flipped": {
            "lost": sum(1 for i in idx if before[i].success and not after[i].success),
            "gained": sum(1 for i in idx if not before[i].success and after[i].success),
        },
        "shift": {
            "edges": [round(float(e), 6) for e in edges],
            "counts": [int(c) for c in counts],
            "mean": _finite(float(shift.mean())) if shift.size else None,
            "median": _finite(float(np.median(shift))) if shift.size else None,
            "p05": _finite(float(np.quantile(shift, 0.05))) if shift.size else None,
            "p95": _finite(float(np.quantile(shift, 0.95))) if shift.size else None,
        },
    }


def change_record(change: ChangeProbes) -> dict:
    """Return one change with its subgraph, JSON-ready."""
    r = change.request
    out: dict[str, Any] = {
        "id": change.change_id,
        "kind": change.kind,
        "n_probes": len(change.probes),
    }
    if change.kind == "edit":
        out.update(
            subject=r.subject,
            relation=r.relation,
            prompt=r.prompt,
            target_true=r.target_true,
            target_new=r.target_new,
        )
    else:
        out.update(concept=r.concept, aliases=list(r.aliases), anchor=r.anchor)
    if change.note:
        out["note"] = change.note
    sub = change.subgraph
    out["subgraph"] = None
    if sub is not None:
        out["subgraph"] = {
            "nodes": list(sub.nodes),
            "center": sub.center,
            "edges": [
                {"head": e.head, "tail": e.tail, "relation": e.relation, "status": s}
                for e, s in zip(sub.edges, change.edge_status, strict=True)
            ],
        }
    return out


def _version() -> str:
    """Return the installed kgedit version."""
    try:
        return metadata.version("kgedit")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


def build_report(
    *,
    kind: str,
    changes: Sequence[ChangeProbes],
    probes: Sequence[Probe],
    before: Sequence[ProbeScore],
    after: Sequence[ProbeScore],
    thresholds: Sequence[Threshold],
    settings: dict,
    model: dict,
    graph: dict,
    trend: list[dict],
    timings: dict,
    keep_probes: bool = True,
    worst: int = 25,
) -> dict:
    """Assemble the whole report (see docs/audit-report.md for every field)."""
    n_boot, confidence, seed = settings["bootstrap"], settings["confidence"], settings["seed"]
    groups = summarise(probes, before, after, thresholds, n_boot, confidence, seed)
    failures = [
        {
            "group": g["group"],
            "metric": g["threshold"]["metric"],
            "reason": g["reason"],
            "significant": g["significant"],
        }
        for g in groups
        if g["status"] == "fail"
    ]
    counts = Counter(str(p.kind) for p in probes)
    return {
        "schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "kgedit_version": _version(),
        "kind": kind,
        "model": model,
        "graph": graph,
        "settings": settings,
        "passed": not failures,
        "failures": failures,
        "n_probes": len(probes),
        "probe_counts": dict(sorted(counts.items())),
        "changes": [change_record(c) for c in changes],
        "groups": groups,
        "sample": sample_section(
            probes, before, after, settings["sample_seed"], n_boot, confidence
        ),
        "worst": worst_regressions(probes, before, after, worst),
        "trend": trend,
        "timings": {k: round(float(v), 4) for k, v in timings.items()},
        "probes": (
            [probe_record(i, p, before[i], after[i]) for i, p in enumerate(probes)]
            if keep_probes
            else []
        ),
    }


def trend_point(
    version: int,
    label: str,
    probes: Sequence[Probe],
    scores: Sequence[ProbeScore],
    applied: set[str] | None,
) -> dict:
    """Return the success rate per trend group at one version of the chain.

    Change-bound groups count only the changes applied by then (all when `applied` is None).
    """
    rates: dict[str, list[float]] = defaultdict(list)
    for probe, score in zip(probes, scores, strict=True):
        if score.success is None:
            continue
        kind, _ = group_of(probe)
        change = probe.meta.get("change")
        if kind != KIND_SAMPLE and applied is not None and change not in applied:
            continue
        rates[kind].append(float(score.success))
    return {
        "version": version,
        "label": label,
        "metrics": {k: finite_mean(v) for k, v in sorted(rates.items())},
    }


def settings_dict(config: Any) -> dict:
    """Return the JSON-ready settings of an `AuditConfig`."""
    out = asdict(config)
    out["thresholds"] = [t.to_dict() for t in config.thresholds]
    return out
