"""The audit page's drawings: labels that never overlap, only the change's subgraph, round
axis ticks, the ledger's version ids on the trend. Checked on the SVG itself (fast; the
Chromium screenshot of a real audit is in test_audit_html.py)."""

from __future__ import annotations

import itertools
import re
from html import unescape

from workers.audit.html import version_names
from workers.audit.placement import round_ticks, tick_digits
from workers.audit.svg import bar_chart, graph_drawing, histogram, line_chart

TEXT = re.compile(
    r'<text x="([\d.-]+)" y="([\d.-]+)" font-size="(\d+)" text-anchor="(\w+)"[^>]*>([^<]*)</text>'
)
CIRCLE = re.compile(r'<circle cx="([\d.-]+)" cy="([\d.-]+)" r="(\d+)"')


def _boxes(svg: str) -> list[tuple[str, int, tuple[float, float, float, float]]]:
    """Return (text, size, box) of every text, its width at 0.55 em per character (a little
    under DejaVu Sans' average, so boxes that touch here would overlap on screen too)."""
    out = []
    for x, y, size, anchor, text in TEXT.findall(svg):
        x, y, size, text = float(x), float(y), int(size), unescape(text)
        w = 0.55 * size * len(text)
        x0 = {"start": x, "middle": x - w / 2, "end": x - w}[anchor]
        out.append((text, size, (x0, y - 0.9 * size, x0 + w, y + 0.25 * size)))
    return out


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _crowded() -> tuple[list[str], list[dict]]:
    """A centre with many long-named neighbours, some joined to each other, plus two facts of
    other subjects that never touch the centre."""
    nodes = ["Imogen Stallard of the Northern Provinces", "York", "Leeds"]
    nodes += [f"Heliotrope Foods Subsidiary Number {i}" for i in range(12)]
    nodes += ["Lumeris Systems", "Unrelated Holdings"]
    edges = [
        {"head": 0, "tail": 1, "relation": "born in", "status": "new"},
        {"head": 0, "tail": 2, "relation": "born in", "status": "old"},
    ]
    edges += [
        {"head": 0, "tail": 3 + i, "relation": f"works for (role {i})", "status": "current"}
        for i in range(12)
    ]
    edges += [{"head": 3, "tail": 4, "relation": "owned by", "status": "current"}]
    edges += [{"head": 15, "tail": 16, "relation": "industry", "status": "current"}]
    return nodes, edges


def test_graph_labels_never_overlap_each_other_or_a_node():
    nodes, edges = _crowded()
    svg = graph_drawing(nodes, edges, 0, "crowded")
    boxes = _boxes(svg)
    circles = [(float(x), float(y), int(r)) for x, y, r in CIRCLE.findall(svg)]
    assert len(circles) == 15  # the two unrelated nodes are not drawn
    for (t1, _, b1), (t2, _, b2) in itertools.combinations(boxes, 2):
        assert not _overlap(b1, b2), (t1, t2)
    for text, size, box in boxes:
        if size == 8:  # a node's number, drawn inside its own circle
            continue
        for cx, cy, r in circles:
            assert not _overlap(box, (cx - r, cy - r, cx + r, cy + r)), text
    width = float(re.search(r'width="(\d+)"', svg).group(1))
    assert all(b[0] >= 0 and b[2] <= width for _, _, b in boxes)
    # every node and edge is named: on the drawing or in the key under it
    shown = " ".join(t for t, _, _ in boxes)
    for name in nodes[:15]:
        assert name[:20] in shown, name
    for e in edges[:-1]:
        assert e["relation"] in shown, e


def test_only_the_changes_subgraph_is_drawn():
    nodes, edges = _crowded()
    svg = graph_drawing(nodes, edges, 0, "crowded")
    assert "Lumeris" not in svg and "Unrelated Holdings" not in svg and "industry" not in svg
    # two relations between the same pair are one edge with both labels
    two = [{"head": 0, "tail": 1, "relation": r, "status": "current"} for r in ("a", "b")]
    svg = graph_drawing(["X", "Y"], two, 0, "pair")
    assert svg.count("<line") == 1 and ">a, b<" in svg


def test_round_ticks():
    assert round_ticks(0, 55, 4) == [0, 20, 40, 60]
    assert round_ticks(-1, 1) == [-1, -0.5, 0, 0.5, 1]
    assert round_ticks(0, 0.07) == [0, 0.02, 0.04, 0.06, 0.08]
    assert tick_digits([0, 0.02]) == 2 and tick_digits([0, 20]) == 0
    svg = histogram([-1.0, -0.5, 0.0, 0.5, 1.0], [3, 55, 40, 2], "shift")
    ticks = [t for t, _, _ in _boxes(svg)]
    assert {"0", "20", "40", "60"} <= set(ticks) and "28" not in ticks and "55" not in ticks
    assert {"-1.0", "-0.5", "+0.5", "+1.0"} <= set(ticks)


def test_a_bars_value_sits_after_its_interval():
    svg = bar_chart([("rewrite", 0.1, 0.91, 0.8, 0.99)])
    line = re.search(
        r'<line x1="([\d.]+)" y1="[\d.]+" x2="([\d.]+)" y2="[\d.]+" stroke="#0f172a"', svg
    )
    value = next(b for t, _, b in _boxes(svg) if t == "91%")
    assert value[0] > float(line.group(2))


def test_the_trend_names_the_ledgers_versions():
    trend = [
        {"version": 0, "label": "base", "metrics": {"rewrite": 0.1}},
        {"version": 1, "label": "+1 deltas", "metrics": {"rewrite": 0.9}},
        {"version": 2, "label": "+2 deltas", "metrics": {"rewrite": 0.95}},
    ]
    assert version_names(trend, {"version_ids": [1, 7, 9]}) == ["v1", "v7", "v9"]
    assert version_names(trend, {}) == ["base", "+1 deltas", "+2 deltas"]
    many = [f"v{i}" for i in range(100, 160)]
    svg = line_chart(many, {"s": [0.5] * len(many)}, "many")
    boxes = _boxes(svg)
    assert "v100" in svg and "v159" in svg
    for (t1, _, b1), (t2, _, b2) in itertools.combinations(boxes, 2):
        assert not _overlap(b1, b2), (t1, t2)
