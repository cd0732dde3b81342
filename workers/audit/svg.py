"""Inline SVG charts for the audit page: bars with intervals, histogram, graph, trend lines.

Plain SVG strings, no scripts and no external assets. Each chart draws its marks in colours
of its own (the `COLOURS` table), so a screenshot test can find every chart by its pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from workers.audit.placement import (
    Box,
    Placer,
    Spot,
    edge_spots,
    node_spots,
    round_ticks,
    tick_digits,
)

COLOURS = {
    "before": "#9aa5b1",
    "after": "#2563eb",
    "histogram": "#7c3aed",
    "node": "#0ea5e9",
    "center": "#f59e0b",
    "new": "#16a34a",
    "old": "#dc2626",
    "forget": "#dc2626",
    "current": "#94a3b8",
    "axis": "#475569",
    "grid": "#e2e8f0",
}
SERIES = ["#ea580c", "#db2777", "#0d9488", "#65a30d", "#7c2d12", "#4f46e5", "#ca8a04"]
FONT = 'font-family="DejaVu Sans, Arial, sans-serif"'


def _text(
    x: float, y: float, text: str, size: int = 11, anchor: str = "start", **attrs: str
) -> str:
    """Return an SVG text element (escaped)."""
    extra = " ".join(f'{k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" {FONT} '
        f"{extra}>{escape(text)}</text>"
    )


def _svg(width: int, height: int, body: Sequence[str], label: str) -> str:
    """Wrap elements in an <svg> of the given size."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
        + "".join(body)
        + "</svg>"
    )


def bar_chart(
    rows: Sequence[tuple[str, float | None, float | None, float | None, float | None]],
    label: str = "success before and after",
) -> str:
    """Horizontal bars per row: (label, before, after, after lo, after hi), values in [0, 1]."""
    left, width, bar, gap = 190, 420, 9, 8
    height = 40 + len(rows) * (2 * bar + gap)
    body = [f'<rect width="{left + width + 70}" height="{height}" fill="white"/>']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = left + tick * width
        body.append(
            f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{height - 16}" '
            f'stroke="{COLOURS["grid"]}" stroke-width="1"/>'
        )
        body.append(_text(x, height - 4, f"{tick:.0%}", 10, "middle", fill=COLOURS["axis"]))
    for i, (name, before, after, lo, hi) in enumerate(rows):
        y = 22 + i * (2 * bar + gap)
        body.append(_text(left - 8, y + bar + 3, name, 11, "end", fill="#0f172a"))
        if before is not None:
            body.append(
                f'<rect x="{left}" y="{y}" width="{before * width:.1f}" height="{bar}" '
                f'fill="{COLOURS["before"]}"/>'
            )
        if after is not None:
            body.append(
                f'<rect x="{left}" y="{y + bar}" width="{after * width:.1f}" height="{bar}" '
                f'fill="{COLOURS["after"]}"/>'
            )
            end = max(after, hi if hi is not None else after)
            body.append(
                _text(left + end * width + 4, y + 2 * bar - 1, f"{after:.0%}", 9, fill="#0f172a")
            )
        if lo is not None and hi is not None:
            cy = y + 1.5 * bar
            body.append(
                f'<line x1="{left + lo * width:.1f}" y1="{cy}" x2="{left + hi * width:.1f}" '
                f'y2="{cy}" stroke="#0f172a" stroke-width="1"/>'
            )
    legend_y = 12
    body.append(
        f'<rect x="{left}" y="{legend_y - 8}" width="10" height="8" fill="{COLOURS["before"]}"/>'
    )
    body.append(_text(left + 14, legend_y, "before", 10))
    after = COLOURS["after"]
    body.append(f'<rect x="{left + 70}" y="{legend_y - 8}" width="10" height="8" fill="{after}"/>')
    body.append(_text(left + 84, legend_y, "after (line: 95% interval)", 10))
    return _svg(left + width + 70, height, body, label)


def histogram(edges: Sequence[float], counts: Sequence[int], label: str) -> str:
    """A histogram of counts over bins `edges` (len(counts) + 1), with the zero line marked."""
    left, top, width, height = 46, 14, 560, 190
    y_ticks = round_ticks(0, max(counts) if counts and max(counts) > 0 else 1, 4)
    top_count = y_ticks[-1]
    body = [f'<rect width="{left + width + 20}" height="{top + height + 40}" fill="white"/>']
    lo, hi = edges[0], edges[-1]

    def sx(v: float) -> float:
        """Map a shift value to an x pixel."""
        return left + (v - lo) / (hi - lo) * width

    for count in y_ticks:
        y = top + height - count / top_count * height
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + width}" y2="{y:.1f}" '
            f'stroke="{COLOURS["grid"]}"/>'
        )
        body.append(_text(left - 6, y + 4, f"{count:.0f}", 10, "end"))
    for c, a, b in zip(counts, edges[:-1], edges[1:], strict=True):
        if c <= 0:
            continue
        h = max(2.0, c / top_count * height)
        body.append(
            f'<rect x="{sx(a) + 0.5:.1f}" y="{top + height - h:.1f}" '
            f'width="{max(1.0, sx(b) - sx(a) - 1):.1f}" height="{h:.1f}" '
            f'fill="{COLOURS["histogram"]}"/>'
        )
    zero = sx(0.0)
    body.append(
        f'<line x1="{zero:.1f}" y1="{top}" x2="{zero:.1f}" y2="{top + height}" '
        f'stroke="{COLOURS["axis"]}" stroke-dasharray="4 3"/>'
    )
    x_ticks = [v for v in round_ticks(lo, hi, 5) if lo - 1e-9 <= v <= hi + 1e-9]
    digits = tick_digits(x_ticks)
    for v in x_ticks:
        shown = f"{v:+.{digits}f}" if abs(v) > 1e-12 else "0"
        body.append(_text(sx(v), top + height + 16, shown, 10, "middle"))
    body.append(_text(left + width / 2, top + height + 32, label, 11, "middle"))
    return _svg(left + width + 20, top + height + 40, body, label)


def _layout(n: int, edges: Sequence[tuple[int, int]], center: int) -> list[tuple[float, float]]:
    """Return deterministic node positions in [0, 1]² (spring layout, the centre fixed)."""
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(edges)
    if n == 1:
        return [(0.5, 0.5)]
    pos = nx.spring_layout(graph, seed=7, pos={center: (0.0, 0.0)}, fixed=[center], k=1.2)
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    span_x = (max(xs) - min(xs)) or 1.0
    span_y = (max(ys) - min(ys)) or 1.0
    return [((pos[i][0] - min(xs)) / span_x, (pos[i][1] - min(ys)) / span_y) for i in range(n)]


def change_component(n: int, edges: Sequence[dict], center: int) -> tuple[list[int], list[dict]]:
    """Return the nodes joined to the centre by edges (any direction) and only their edges:
    facts of other subjects (kept for neighbourhood probes) are not the change's subgraph."""
    reach, frontier = {center}, [center]
    while frontier:
        here = frontier.pop()
        for e in edges:
            for a, b in ((e["head"], e["tail"]), (e["tail"], e["head"])):
                if a == here and b not in reach and 0 <= b < n:
                    reach.add(b)
                    frontier.append(b)
    return sorted(reach), [e for e in edges if e["head"] in reach and e["tail"] in reach]


def _merged(edges: Sequence[dict]) -> list[dict]:
    """Return one edge per (head, tail, status), its relations joined into one label."""
    out: dict[tuple[int, int, str], dict] = {}
    for e in edges:
        key = (e["head"], e["tail"], e.get("status", "current"))
        if key in out:
            if e["relation"] not in out[key]["relation"].split(", "):
                out[key]["relation"] += ", " + e["relation"]
        else:
            out[key] = {**e, "status": key[2]}
    return list(out.values())


def _spread(pos: list[tuple[float, float]], fixed: int, gap: float, box: tuple) -> None:
    """Push nodes apart (in place) until no two centres are closer than `gap` pixels."""
    x0, y0, x1, y1 = box
    for _ in range(60):
        moved = False
        for i in range(len(pos)):
            for j in range(i + 1, len(pos)):
                (ax, ay), (bx, by) = pos[i], pos[j]
                dx, dy = bx - ax, by - ay
                dist = math.hypot(dx, dy)
                if dist >= gap:
                    continue
                moved = True
                if dist < 1e-6:
                    dx, dy, dist = 1.0, 0.5, math.hypot(1.0, 0.5)
                push = (gap - dist) / 2 + 0.5
                ux, uy = dx / dist * push, dy / dist * push
                if i != fixed:
                    pos[i] = (min(max(ax - ux, x0), x1), min(max(ay - uy, y0), y1))
                if j != fixed:
                    pos[j] = (min(max(bx + ux, x0), x1), min(max(by + uy, y0), y1))
        if not moved:
            return


def _short(text: str, limit: int) -> str:
    """Return text cut to `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def graph_drawing(
    nodes: Sequence[str], edges: Sequence[dict], center: int = 0, label: str = "subgraph"
) -> str:
    """Draw the change's subgraph: the nodes joined to the centre and their edges, coloured
    by status (new, old, current, forget). Labels never overlap one another or a node: each
    goes to the first free spot around its node (or along its edge); one that finds none is
    listed in a key under the drawing (a node by a number drawn in its circle)."""
    width, pad, radius, node_size, edge_size, key_size = 600, 60, 9, 10, 9, 10
    height = 320
    keep, kept_edges = change_component(len(nodes), edges, center)
    index = {old: new for new, old in enumerate(keep)}
    names = [nodes[i] for i in keep]
    drawn = _merged([{**e, "head": index[e["head"]], "tail": index[e["tail"]]} for e in kept_edges])
    centre = index[center]
    pairs = [(e["head"], e["tail"]) for e in drawn]
    pos = [
        (pad + x * (width - 2 * pad), 36 + y * (height - 72))
        for x, y in _layout(len(names), pairs, centre)
    ]
    _spread(pos, centre, 4 * radius, (pad, 36, width - pad, height - 36))
    circles = [Box(x - radius, y - radius, x + radius, y + radius) for x, y in pos]
    placer = Placer(width, height, circles)
    key: list[str] = []
    node_labels: list[tuple[int, Spot | None, str]] = []
    for i in [centre] + [k for k in range(len(names)) if k != centre]:
        text = _short(names[i], 28)
        spot = placer.place(text, node_size, node_spots(*pos[i], radius, node_size))
        node_labels.append((i, spot, text))
    numbered = {}
    for i, spot, _ in node_labels:
        if spot is None:
            numbered[i] = len(numbered) + 1
            key.append(f"{numbered[i]} = {names[i]}")
    edge_labels = []
    for e in drawn:
        (x1, y1), (x2, y2) = pos[e["head"]], pos[e["tail"]]
        text = _short(e["relation"], 40)
        spot = placer.place(text, edge_size, edge_spots(x1, y1, x2, y2, edge_size))
        if spot is None:
            head, tail = names[e["head"]], names[e["tail"]]
            key.append(f"{_short(head, 30)} —{e['relation']}→ {_short(tail, 30)}")
        edge_labels.append((spot, text))
    line = key_size + 5
    total = height + (len(key) * line + 8 if key else 0)
    body = [f'<rect width="{width}" height="{total}" fill="white"/>', "<defs>"]
    for status in ("new", "old", "current", "forget"):
        body.append(
            f'<marker id="arrow-{status}" viewBox="0 0 10 10" refX="19" refY="5" '
            f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{COLOURS[status]}"/></marker>'
        )
    body.append("</defs>")
    for e in drawn:
        (x1, y1), (x2, y2) = pos[e["head"]], pos[e["tail"]]
        status = e["status"]
        dash = ' stroke-dasharray="6 4"' if status in {"old", "forget"} else ""
        stroke = 3 if status in {"new", "old", "forget"} else 1.5
        body.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{COLOURS[status]}" stroke-width="{stroke}"{dash} '
            f'marker-end="url(#arrow-{status})"/>'
        )
    halo = {"stroke": "white", "stroke_width": "3", "paint_order": "stroke"}
    for spot, text in edge_labels:
        if spot is not None:
            body.append(
                _text(spot.x, spot.y, text, edge_size, spot.anchor, fill=COLOURS["axis"], **halo)
            )
    for i, spot, text in node_labels:
        x, y = pos[i]
        fill = COLOURS["center"] if i == centre else COLOURS["node"]
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{fill}" stroke="white"/>'
        )
        if spot is not None:
            body.append(_text(spot.x, spot.y, text, node_size, spot.anchor, fill="#0f172a", **halo))
        else:
            body.append(_text(x, y + 3, str(numbered[i]), 8, "middle", fill="white"))
    for k, entry in enumerate(key):
        y = height + 4 + (k + 1) * line - 4
        body.append(_text(8, y, _short(entry, 95), key_size, fill="#0f172a"))
    return _svg(width, total, body, label)


def line_chart(labels: Sequence[str], series: dict[str, Sequence[float | None]], label: str) -> str:
    """Lines over versions, one per series (values in [0, 1]; gaps where None)."""
    left, top, width, height = 46, 16, 560, 200
    n = max(1, len(labels) - 1)
    body = [f'<rect width="{left + width + 150}" height="{top + height + 40}" fill="white"/>']

    def sx(i: int) -> float:
        """Map a version index to an x pixel."""
        return left + i / n * width

    def sy(v: float) -> float:
        """Map a rate to a y pixel."""
        return top + (1.0 - v) * height

    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        body.append(
            f'<line x1="{left}" y1="{sy(frac):.1f}" x2="{left + width}" y2="{sy(frac):.1f}" '
            f'stroke="{COLOURS["grid"]}"/>'
        )
        body.append(_text(left - 6, sy(frac) + 4, f"{frac:.0%}", 10, "end"))
    axis = Placer(left + width + 150, top + height + 40)
    last = len(labels) - 1
    for i in sorted(range(len(labels)), key=lambda i: (i not in (0, last), i)):
        spot = axis.place(labels[i], 10, [Spot(sx(i), top + height + 16, "middle")])
        if spot is not None:  # a label that would overlap a placed one is left out
            body.append(_text(spot.x, spot.y, labels[i], 10, "middle"))
    for k, (name, values) in enumerate(series.items()):
        colour = SERIES[k % len(SERIES)]
        points = [(sx(i), sy(v)) for i, v in enumerate(values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            body.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="3"/>'
            )
        for x, y in points:
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>')
        ly = top + 10 + 16 * k
        body.append(
            f'<line x1="{left + width + 14}" y1="{ly - 4}" x2="{left + width + 34}" '
            f'y2="{ly - 4}" stroke="{colour}" stroke-width="3"/>'
        )
        body.append(_text(left + width + 40, ly, name, 10))
    body.append(_text(left + width / 2, top + height + 34, label, 11, "middle"))
    return _svg(left + width + 150, top + height + 40, body, label)
