"""The entity page's neighbourhood drawing: a radial layout computed here, drawn as SVG by the
template (no script). The entity sits in the centre; each neighbour sits on a circle, its label
outside the circle on its own side (left-hand labels end at the node, right-hand ones start
there), so labels never cross the edges or each other; relation labels sit on the edges."""

from __future__ import annotations

import math
from dataclasses import dataclass

from api.schemas.graph import NeighbourhoodPublic

WIDTH, HEIGHT = 760, 480
RADIUS = 170
MAX_NEIGHBOURS = 24


@dataclass(frozen=True)
class Node:
    """A drawn entity: its position, label and where the label is anchored."""

    id: str
    name: str
    x: float
    y: float
    label_x: float
    label_y: float
    anchor: str  # SVG text-anchor: start | middle | end


@dataclass(frozen=True)
class Edge:
    """A drawn edge between the centre and a neighbour, with its relation labels."""

    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    label_x: float
    label_y: float
    outgoing: bool


@dataclass(frozen=True)
class Drawing:
    """Everything the template needs to draw a neighbourhood."""

    width: int
    height: int
    centre: Node
    nodes: list[Node]
    edges: list[Edge]
    left_out: int


def layout(view: NeighbourhoodPublic, labels: dict[str, str]) -> Drawing:
    """Return the radial drawing of the centre's direct neighbours (`labels`: relation id to
    label), at most `MAX_NEIGHBOURS` of them, ordered by name."""
    cx, cy = WIDTH / 2, HEIGHT / 2
    names = {n.id: n.name for n in view.nodes}
    rels: dict[str, dict[bool, list[str]]] = {}
    for e in view.edges:
        if e.source == view.center and e.target != view.center:
            rels.setdefault(e.target, {}).setdefault(True, []).append(e.relation)
        elif e.target == view.center and e.source != view.center:
            rels.setdefault(e.source, {}).setdefault(False, []).append(e.relation)
    neighbours = sorted(rels, key=lambda i: (names.get(i, i).casefold(), i))
    shown = neighbours[:MAX_NEIGHBOURS]
    centre = Node(view.center, names.get(view.center, view.center), cx, cy, cx, cy + 4, "middle")
    nodes, edges = [], []
    for k, node_id in enumerate(shown):
        angle = -math.pi / 2 + 2 * math.pi * k / max(len(shown), 1)
        x, y = cx + RADIUS * math.cos(angle), cy + RADIUS * math.sin(angle)
        dx = math.cos(angle)
        anchor = "middle" if abs(dx) < 0.2 else ("start" if dx > 0 else "end")
        lx = x + 12 * dx if anchor != "middle" else x
        ly = y + (22 * math.sin(angle) if anchor == "middle" else 0) + 4
        nodes.append(Node(node_id, names.get(node_id, node_id), x, y, lx, ly, anchor))
        for outgoing, relation_ids in sorted(rels[node_id].items(), reverse=True):
            label = ", ".join(labels.get(r, r) for r in sorted(relation_ids))
            share = 0.55 if outgoing else 0.45
            edges.append(
                Edge(
                    cx, cy, x, y, label,
                    cx + (x - cx) * share, cy + (y - cy) * share - (6 if outgoing else -12),
                    outgoing,
                )
            )  # fmt: skip
    return Drawing(WIDTH, HEIGHT, centre, nodes, edges, len(neighbours) - len(shown))
