"""The terminal summary of an audit report (a rich table plus verdict lines)."""

from __future__ import annotations

from rich.table import Table


def _fmt(value: float | None, entropy: bool) -> str:
    """Format a rate (or an entropy in bits)."""
    if value is None:
        return "–"
    return f"{value:.2f}" if entropy else f"{value:.1%}"


def _change(block: dict | None, entropy: bool) -> str:
    """Format the paired change with its interval."""
    delta = (block or {}).get("delta") or {}
    if delta.get("value") is None:
        return "–"
    scale, unit = (1.0, "") if entropy else (100.0, " pt")
    lo, hi = delta.get("lo"), delta.get("hi")
    span = f" [{lo * scale:+.1f}, {hi * scale:+.1f}]" if lo is not None and hi is not None else ""
    return f"{delta['value'] * scale:+.1f}{unit}{span}"


def summary_table(report: dict, buckets: bool = True) -> Table:
    """Return a table of every group: success (or entropy) before, after, change, verdict."""
    verdict = "[bold green]PASSED[/]" if report["passed"] else "[bold red]FAILED[/]"
    title = (
        f"{report['kind']} audit: {len(report['changes'])} changes, {report['n_probes']:,} "
        f"probes — {verdict}"
    )
    table = Table(title=title)
    for name in ("group", "n", "before", "after", "change [95% CI]", "exact match", "verdict"):
        table.add_column(name, justify="left" if name in {"group", "verdict"} else "right")
    for g in report["groups"]:
        if g["bucket"] is not None and not buckets:
            continue
        entropy = g.get("entropy") is not None
        block = g["entropy"] if entropy else g["success"]
        em = g.get("exact_match") or {}
        em_text = (
            "–"
            if not em
            else f"{_fmt(em['before']['value'], False)} → {_fmt(em['after']['value'], False)}"
        )
        status = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "info": "[dim]info[/]"}
        reason = f" {g['reason']}" if g["status"] == "fail" else ""
        table.add_row(
            ("  " if g["bucket"] else "") + g["group"],
            str(g["n"]),
            _fmt((block or {}).get("before", {}).get("value"), entropy),
            _fmt((block or {}).get("after", {}).get("value"), entropy),
            _change(block, entropy),
            em_text,
            status[g["status"]] + reason,
        )
    return table


def summary_lines(report: dict) -> list[str]:
    """Return the lines under the table: sample audit, failures, speed."""
    lines = []
    sample = report.get("sample")
    if sample:
        s = sample["success"]
        lines.append(
            f"whole-graph sample: {sample['n']} untouched facts, right "
            f"{s['before']['value']:.1%} → {s['after']['value']:.1%}; "
            f"{sample['flipped']['lost']} lost, {sample['flipped']['gained']} gained; "
            f"mean ΔP̄ {sample['shift']['mean']:+.4f}"
        )
    for f in report["failures"]:
        sig = " (outside the 95% interval)" if f["significant"] else ""
        lines.append(f"[red]regression[/] {f['group']}: {f['reason']}{sig}")
    t = report.get("timings", {})
    if t:
        lines.append(
            f"scored {report['n_probes']:,} probes twice at {t.get('probes_per_s', 0):,.0f} "
            f"probes/s (before {t.get('score_before_s', 0):.1f} s, after "
            f"{t.get('score_after_s', 0):.1f} s, trend {t.get('trend_s', 0):.1f} s)"
        )
    return lines
