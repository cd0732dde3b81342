"""The audit report as one self-contained HTML page (inline CSS and SVG, no scripts, no links).

Sections: verdict and failures; per-kind bars before and after; the table of every group
with intervals; the histogram of the probability shift on untouched facts; the subgraph
around each change; the worst regressions; the trend across the version chain.
"""

from __future__ import annotations

from html import escape

from workers.audit.svg import COLOURS, bar_chart, graph_drawing, histogram, line_chart

MAX_GRAPHS = 6

CSS = """
body { font-family: 'DejaVu Sans', Arial, sans-serif; margin: 24px; color: #0f172a;
       background: #f8fafc; max-width: 1180px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.meta { color: #475569; font-size: 12px; }
.verdict { display: inline-block; padding: 4px 10px; border-radius: 4px; color: white;
           font-weight: bold; margin: 10px 0; }
.pass { background: #15803d; } .fail { background: #b91c1c; } .info { color: #64748b; }
table { border-collapse: collapse; font-size: 12px; background: white; }
th, td { border: 1px solid #e2e8f0; padding: 3px 7px; text-align: right; }
th { background: #f1f5f9; } td.l, th.l { text-align: left; }
td.st-fail { color: #b91c1c; font-weight: bold; } td.st-pass { color: #15803d; }
td.st-info { color: #64748b; }
.card { background: white; border: 1px solid #e2e8f0; padding: 10px; margin: 8px 0;
        display: inline-block; vertical-align: top; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
.small { font-size: 11px; color: #475569; }
"""


def _pct(value: float | None) -> str:
    """Format a rate as a percentage ('–' when missing)."""
    return "–" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int = 3) -> str:
    """Format a number ('–' when missing)."""
    return "–" if value is None else f"{value:.{digits}f}"


def _main_metric(group: dict) -> tuple[str, dict | None]:
    """Return (name, block) of the metric a group is judged on."""
    if group.get("entropy"):
        return "entropy", group["entropy"]
    return "success", group.get("success")


def _groups_table(groups: list[dict]) -> str:
    """The table of every group: metric before, after, change with interval, verdict."""
    head = (
        "<tr><th class=l>group</th><th>n</th><th>changes</th><th>metric</th><th>before</th>"
        "<th>after</th><th>change [95% interval]</th><th>exact match before → after</th>"
        "<th>kept</th><th class=l>verdict</th></tr>"
    )
    rows = [head]
    for g in groups:
        name, block = _main_metric(g)
        fmt = _num if name == "entropy" else _pct
        b, a, d = (
            (block or {}).get("before", {}),
            (block or {}).get("after", {}),
            (block or {}).get("delta", {}),
        )
        em = g.get("exact_match") or {}
        kept = (g.get("kept") or {}).get("value")
        verdict = g["status"] + (f": {g['reason']}" if g.get("reason") else "")
        rows.append(
            f"<tr><td class=l>{escape(g['group'])}</td><td>{g['n']}</td><td>{g['n_changes']}</td>"
            f"<td>{name}</td><td>{fmt(b.get('value'))}</td><td>{fmt(a.get('value'))}</td>"
            f"<td>{_signed(d, name)}</td>"
            f"<td>{_pct(_value(em, 'before'))} → {_pct(_value(em, 'after'))}</td>"
            f"<td>{_pct(kept)}</td><td class='l st-{g['status']}'>{escape(verdict)}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def _value(block: dict, key: str) -> float | None:
    """Return block[key]["value"], or None."""
    return (block.get(key) or {}).get("value")


def _signed(delta: dict, name: str) -> str:
    """Format a change with its interval."""
    if not delta or delta.get("value") is None:
        return "–"
    scale, unit = (1.0, "") if name == "entropy" else (100.0, " pt")
    v, lo, hi = (delta.get(k) for k in ("value", "lo", "hi"))
    inner = f" [{lo * scale:+.1f}, {hi * scale:+.1f}]" if lo is not None and hi is not None else ""
    return f"{v * scale:+.1f}{unit}{inner}"


def _bars(groups: list[dict]) -> str:
    """The per-kind bar chart (kind-level rows with a success rate)."""
    rows = []
    for g in groups:
        if g["bucket"] is not None or not g.get("success"):
            continue
        s = g["success"]
        rows.append(
            (
                g["kind"],
                s["before"]["value"],
                s["after"]["value"],
                s["after"]["lo"],
                s["after"]["hi"],
            )
        )
    return bar_chart(rows, "success rate per probe kind, before and after") if rows else ""


def _sample(sample: dict | None) -> str:
    """The whole-graph sample: histogram of the probability shift and its numbers."""
    if not sample:
        return "<p class=info>No whole-graph sample in this audit.</p>"
    shift, s = sample["shift"], sample["success"]
    chart = histogram(
        shift["edges"], shift["counts"], "P̄(true object) after − before, untouched facts"
    )
    facts = (
        f"<p class=small>{sample['n']} random untouched facts (seed {sample['seed']}): right "
        f"{_pct(s['before']['value'])} before, {_pct(s['after']['value'])} after "
        f"(change {_signed(s['delta'], 'success')}); kept {_pct(sample['kept']['value'])} of "
        f"those right before; {sample['flipped']['lost']} lost, {sample['flipped']['gained']} "
        f"gained. Shift mean {_num(shift['mean'])}, median {_num(shift['median'])}, 5–95 % "
        f"[{_num(shift['p05'])}, {_num(shift['p95'])}].</p>"
    )
    return f"<div class=card>{chart}{facts}</div>"


def _graphs(changes: list[dict]) -> str:
    """The subgraph around each change (the first few)."""
    cards, undrawn = [], []
    for change in changes:
        sub = change.get("subgraph")
        if not sub or not sub["nodes"]:
            undrawn.append(f"<li>{escape(change['id'])}: {escape(change.get('note') or '')}</li>")
            continue
        if len(cards) == MAX_GRAPHS:
            continue
        title = change["id"]
        if change["kind"] == "edit":
            old, new = change.get("target_true"), change.get("target_new")
            title += f": {change.get('subject')} — {old} → {new}"
        else:
            title += f": forget {change.get('concept')}"
        drawing = graph_drawing(sub["nodes"], sub["edges"], sub["center"], title)
        cards.append(f"<div class=card><div class=small>{escape(title)}</div>{drawing}</div>")
    missing = (
        f"<p class=small>Not drawn:</p><ul class=small>{''.join(undrawn)}</ul>" if undrawn else ""
    )
    if not cards:
        return missing or "<p class=info>No changes in this audit.</p>"
    legend = (
        f"<p class=small><span style='color:{COLOURS['new']}'>━ new edge</span> &nbsp; "
        f"<span style='color:{COLOURS['old']}'>╌ old or forgotten edge</span> &nbsp; "
        f"<span style='color:{COLOURS['current']}'>━ unchanged</span></p>"
    )
    more = len(changes) - len(undrawn) - len(cards)
    tail = f"<p class=small>… and {more} more changes.</p>" if more > 0 else ""
    return legend + "<div class=grid>" + "".join(cards) + "</div>" + tail + missing


def _worst(worst: list[dict]) -> str:
    """The table of the worst regressions."""
    if not worst:
        return "<p class=info>No probe went from right to wrong.</p>"
    rows = [
        "<tr><th class=l>group</th><th class=l>change</th><th class=l>prompt</th>"
        "<th class=l>expected</th><th class=l>rival</th><th>P̄ before</th><th>P̄ after</th>"
        "<th>margin drop (nats)</th></tr>"
    ]
    for w in worst:
        rows.append(
            f"<tr><td class=l>{escape(w['group'])}</td>"
            f"<td class=l>{escape(str(w.get('change') or ''))}</td>"
            f"<td class=l>{escape(w['prompt'])}</td><td class=l>{escape(w['expected'])}</td>"
            f"<td class=l>{escape(str(w.get('rival') or ''))}</td>"
            f"<td>{_num(w.get('p_before'))}</td>"
            f"<td>{_num(w.get('p_after'))}</td><td>{_num(w['margin_drop'], 2)}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def version_names(trend: list[dict], model: dict) -> list[str]:
    """Name each trend point by the ledger's version id (`model.version_ids`: the chain from
    the base, one id per delta applied), else by its label ('base', '+2 deltas')."""
    ids = model.get("version_ids") or []
    return [
        f"v{ids[p['version']]}" if p["version"] < len(ids) else p.get("label") or f"+{p['version']}"
        for p in trend
    ]


def _trend(trend: list[dict], model: dict) -> str:
    """The trend across the version chain (success rate per group at each version)."""
    if len(trend) < 2:
        return "<p class=info>One version only: no trend.</p>"
    names = sorted(
        {k for point in trend for k in point["metrics"]}, key=lambda k: (k != "sample", k)
    )
    series = {n: [point["metrics"].get(n) for point in trend] for n in names}
    labels = version_names(trend, model)
    chart = line_chart(labels, series, "success rate at each version of the chain")
    note = (
        "<p class=small>Change-bound groups count the changes applied by that version; "
        "sample = a fixed subset of the untouched facts.</p>"
    )
    return f"<div class=card>{chart}{note}</div>"


def model_label(model: dict) -> str:
    """Name the audited model: 'small v7 (base + 3 deltas)', or its path plus the deltas."""
    n = len(model.get("deltas", []))
    deltas = f"{n} delta" + ("" if n == 1 else "s")
    if model.get("name") and model.get("version_id") is not None:
        return f"{model['name']} v{model['version_id']} (base + {deltas})"
    return f"{model.get('path') or '–'} + {deltas}"


def _notes(notes: list[str]) -> str:
    """The report's notes (changes it could not probe), as a list."""
    if not notes:
        return ""
    items = "".join(f"<li>{escape(n)}</li>" for n in notes)
    return f"<ul class='small notes'>{items}</ul>"


def render_html(report: dict) -> str:
    """Return the report as one self-contained HTML page."""
    passed = report["passed"]
    verdict = "PASSED" if passed else "FAILED"
    failures = "".join(
        f"<li><b>{escape(f['group'])}</b> ({escape(f['metric'])}): {escape(f['reason'])}"
        + (" — outside the 95 % interval" if f["significant"] else "")
        + "</li>"
        for f in report["failures"]
    )
    graph = report.get("graph", {})
    timings = report.get("timings", {})
    meta = (
        f"{escape(report['kind'])} audit · {len(report['changes'])} changes · "
        f"{report['n_probes']:,} probes · model {escape(model_label(report.get('model', {})))} "
        f"· graph {escape(str(graph.get('url') or '–'))} "
        f"({graph.get('facts', '–')} facts) · {escape(report['created_at'])} · "
        f"schema {escape(report['schema'])} {escape(report['schema_version'])} · "
        f"{timings.get('probes_per_s', 0):,.0f} probes/s"
    )
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f"<title>kgedit audit — {verdict}</title><style>{CSS}</style></head><body>",
        f"<h1>kgedit audit report</h1><div class=meta>{meta}</div>",
        _notes(report.get("notes", [])),
        f"<div class='verdict {'pass' if passed else 'fail'}'>{verdict}</div>",
        f"<ul>{failures}</ul>" if failures else "",
        "<h2>Per-kind success before and after</h2>",
        f"<div class=card id=bars>{_bars(report['groups'])}</div>",
        "<h2>Every group</h2>",
        _groups_table(report["groups"]),
        "<h2>Untouched facts: probability shift</h2>",
        f"<div id=sample>{_sample(report.get('sample'))}</div>",
        "<h2>Subgraph around each change</h2>",
        f"<div id=graphs>{_graphs(report['changes'])}</div>",
        "<h2>Worst regressions</h2>",
        _worst(report["worst"]),
        "<h2>Trend across the version chain</h2>",
        f"<div id=trend>{_trend(report['trend'], report.get('model') or {})}</div>",
        "</body></html>",
    ]
    return "\n".join(parts)
