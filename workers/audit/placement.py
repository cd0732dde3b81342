"""Where the audit drawings put their labels: text boxes estimated from the font size, placed
at the first candidate spot that stays on the canvas and overlaps nothing placed before, and
round axis ticks."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CHAR_WIDTH = 0.62  # of the font size: wider than DejaVu Sans' average glyph, so boxes are safe
GAP = 2.0  # pixels kept free between two boxes


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle in SVG pixels."""

    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: Box, gap: float = GAP) -> bool:
        """Return whether the two boxes come closer than `gap` pixels."""
        return not (
            self.x1 + gap <= other.x0
            or other.x1 + gap <= self.x0
            or self.y1 + gap <= other.y0
            or other.y1 + gap <= self.y0
        )

    def inside(self, width: float, height: float) -> bool:
        """Return whether the box lies on a canvas of that size."""
        return self.x0 >= 0 and self.y0 >= 0 and self.x1 <= width and self.y1 <= height


def text_box(x: float, y: float, text: str, size: float, anchor: str) -> Box:
    """Return the box of an SVG text at baseline (x, y) with that text-anchor."""
    width = CHAR_WIDTH * size * len(text)
    left = {"start": x, "middle": x - width / 2, "end": x - width}[anchor]
    return Box(left, y - 0.95 * size, left + width, y + 0.3 * size)


@dataclass(frozen=True)
class Spot:
    """A candidate place for a label: its baseline and anchor."""

    x: float
    y: float
    anchor: str


class Placer:
    """Places labels one by one on a canvas so that no two boxes overlap."""

    def __init__(self, width: float, height: float, taken: Iterable[Box] = ()) -> None:
        self.width, self.height = width, height
        self.taken: list[Box] = list(taken)

    def place(self, text: str, size: float, spots: Sequence[Spot]) -> Spot | None:
        """Return the first spot where the label fits (and reserve it), or None."""
        for spot in spots:
            box = text_box(spot.x, spot.y, text, size, spot.anchor)
            if box.inside(self.width, self.height) and not any(box.overlaps(t) for t in self.taken):
                self.taken.append(box)
                return spot
        return None


def node_spots(x: float, y: float, radius: float, size: float) -> list[Spot]:
    """Return candidate label spots around a node: below, above, right, left, then farther."""
    out = []
    for far in (0.0, size + 2, 2 * (size + 2)):
        out += [
            Spot(x, y + radius + size + far, "middle"),
            Spot(x, y - radius - 4 - far, "middle"),
            Spot(x + radius + 4 + far, y + size / 3, "start"),
            Spot(x - radius - 4 - far, y + size / 3, "end"),
        ]
    return out


def edge_spots(x1: float, y1: float, x2: float, y2: float, size: float) -> list[Spot]:
    """Return candidate label spots along an edge, from its middle outwards, above then below."""
    out = []
    for t in (0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8):
        x, y = x1 + (x2 - x1) * t, y1 + (y2 - y1) * t
        out += [Spot(x, y - 4, "middle"), Spot(x, y + size + 2, "middle")]
    return out


def round_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Return about `count` round ticks (steps of 1, 2 or 5 times a power of ten) from a
    multiple of the step at or below `lo` to one at or above `hi`."""
    if not hi > lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    first = math.floor(lo / step + 1e-9) * step
    n = math.ceil((hi - first) / step - 1e-9)
    return [round(first + i * step, 12) for i in range(n + 1)]


def tick_digits(ticks: Sequence[float]) -> int:
    """Return the decimals that show ticks exactly (0 for whole numbers)."""
    if len(ticks) < 2:
        return 0
    step = abs(ticks[1] - ticks[0])
    return max(0, -math.floor(math.log10(step) + 1e-9))
