"""The HTML audit page: self-contained, and its plots render in headless Chromium.

The page of a real audit (two ROME edits on the tiny model, so the version chain has three
versions) is opened in headless Chromium; the screenshot's pixels must show each chart in
its own colours (`workers.audit.svg.COLOURS`). Without Chromium the test skips, and under
CI=true it fails (`make chromium` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from editor.loading import load_model
from editor.methods.rome import apply_rome
from kg.importers.evoke import evoke_cases
from workers.audit.html import render_html
from workers.audit.run import AuditConfig, audit_edits
from workers.audit.schema import validate_report
from workers.audit.svg import COLOURS, SERIES
from workers.edit_run import select_known_edits

pytestmark = pytest.mark.slow
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


@pytest.fixture(scope="module")
def report(tiny_model_dir, tiny_graph, tiny_facts, evoke_paths, tiny_cases, prepare_tiny):
    """An audit of two sequential ROME edits on the tiny model (deltas reverted after)."""
    model, tok = load_model(tiny_model_dir)
    edits = select_known_edits(model, tok, evoke_cases(*evoke_paths, limit=tiny_cases), 3)[1:]
    ready = prepare_tiny("rome", model, tok)
    hp, sm, ctx = ready.hparams, ready.second_moment, ready.context_templates
    deltas = [apply_rome(model, tok, e, hp, sm, context_templates=ctx)[0] for e in edits]
    config = AuditConfig(sample_size=200, bootstrap=100)
    out = audit_edits(model, tok, tiny_graph, edits, deltas, applied=True, config=config)
    for delta in reversed(deltas):
        delta.revert(model)
    validate_report(out)
    return out


def _chromium() -> str:
    """Return the Chromium binary, skipping (failing under CI=true) when there is none."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        reason = "chromium not installed (run `make chromium`)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return tuple(int(value[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


def _pixels(image: Image.Image, hex_colour: str, tolerance: int = 10) -> list[tuple[int, int]]:
    """Return the (x, y) of every pixel within `tolerance` of the colour on each channel."""
    pixels = np.asarray(image, dtype=np.int16)  # (H, W, 3)
    target = np.array(_rgb(hex_colour), dtype=np.int16)  # (3,)
    close = (np.abs(pixels - target) <= tolerance).all(axis=-1)  # (H, W)
    ys, xs = np.nonzero(close)
    return list(zip(xs.tolist(), ys.tolist(), strict=True))


def test_page_is_self_contained(report):
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") >= 4
    assert "<script" not in page and "<link" not in page and "src=" not in page
    urls = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert urls == {"http://www.w3.org/2000/svg"}  # the SVG namespace, never fetched
    assert all(ref.startswith("#") for ref in re.findall(r"url\(([^)]*)\)", page))
    for section in ("id=bars", "id=sample", "id=graphs", "id=trend", "Worst regressions"):
        assert section in page
    assert len(report["trend"]) == 3


def test_chromium_screenshot_shows_every_plot(report, tmp_path):
    chromium = _chromium()
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    shot = tmp_path / "report.png"
    profile = tmp_path / "profile"
    command = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--window-size=1280,6000",
        f"--screenshot={shot}",
        page.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert shot.exists(), result.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 6000)
    found = {
        "bars after": _pixels(image, COLOURS["after"]),
        "bars before": _pixels(image, COLOURS["before"]),
        "histogram": _pixels(image, COLOURS["histogram"]),
        "graph nodes": _pixels(image, COLOURS["node"]),
        "graph new edge": _pixels(image, COLOURS["new"]),
        "trend line": _pixels(image, SERIES[0]),
    }
    minimum = {
        "bars after": 400,
        "bars before": 200,
        "histogram": 100,
        "graph nodes": 150,
        "graph new edge": 40,
        "trend line": 100,
    }
    for name, pixels in found.items():
        assert len(pixels) >= minimum[name], f"{name}: {len(pixels)} pixels"
    top = {name: min(y for _, y in pixels) for name, pixels in found.items()}
    # the sections come in page order: bars, histogram, subgraphs, trend
    assert top["bars after"] < top["histogram"] < top["graph nodes"] < top["trend line"]
