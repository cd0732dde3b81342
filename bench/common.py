"""Shared helpers of the benchmarks: machine description and results-page table updates."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from rich.console import Console

    from workers.demo import EditSetup

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def machine() -> str:
    """Return a one-line description of the machine the benchmark ran on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {threads} threads"


def edit_bench_parser(doc: str | None, edits: int) -> argparse.ArgumentParser:
    """Return the arguments every edit benchmark takes: --edits, --preset, --no-results-page."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--edits", type=int, default=edits)
    parser.add_argument("--preset", default="small", help="knowledge model (trained if missing)")
    parser.add_argument("--no-results-page", action="store_true")
    return parser


def open_bench(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, Console, EditSetup]:
    """Parse a benchmark's arguments, then open its knowledge model and EVOKE cases as the demo
    does (`workers.demo.prepare`): the `--preset` and `--cases` options where the parser has
    them, else `small` and the demo's cases. Returns (args, console, setup)."""
    from rich.console import Console

    from workers.demo import prepare
    from workers.demo_graph import DEMO_CASES

    args = parser.parse_args()
    console = Console()
    setup = prepare(console, getattr(args, "preset", "small"), getattr(args, "cases", DEMO_CASES))
    return args, console, setup


def today() -> str:
    """Return today's date as YYYY-MM-DD."""
    return dt.date.today().isoformat()


def write_json(name: str, data: dict) -> Path:
    """Write a benchmark's results to bench/results/NAME.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def publish(console: Console, marker: str, data: dict, table: str, page: bool = True) -> None:
    """Write bench/results/<marker with underscores>.json, print the table and, with `page`,
    replace the `marker` block on its docs/results page."""
    path = write_json(marker.replace("-", "_"), data)
    console.print(table)
    console.print(f"wrote {path}")
    if page:
        update_results(marker, table)


# The docs/results page that holds each benchmark's generated block.
RESULT_PAGES = {
    "rome-evoke": "editing-quality.md",
    "editing-quality": "editing-quality.md",
    "edit-latency": "edit-latency.md",
    "sequential-stress": "sequential-stress.md",
    "audit-throughput": "audit-throughput.md",
    "api-throughput": "service-throughput.md",
    "jobs-throughput": "service-throughput.md",
    "graph-scale": "graph-scale.md",
    "unlearning-quality": "unlearning-quality.md",
    "tofu": "tofu.md",
    "cli-latency": "cli-latency.md",
    "sync-loop": "sync.md",
    "real-width": "real-width.md",
    "batch-edit": "batch-edit.md",
}


def update_results(marker: str, markdown: str, root: Path = REPO) -> Path:
    """Replace the block between `<!-- marker:start -->` and `<!-- marker:end -->` on its
    docs/results page (appended when the page lacks it) and return the page's path."""
    if marker not in RESULT_PAGES:
        raise KeyError(f"no docs/results page for block {marker!r}; add it to RESULT_PAGES")
    page = root / "docs" / "results" / RESULT_PAGES[marker]
    text = page.read_text() if page.is_file() else ""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    if start in text and end in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text.lstrip())
    return page
