"""Benchmarks write their tables into blocks of the docs/results pages."""

from __future__ import annotations

import pytest

from bench.common import REPO, RESULT_PAGES, update_results


@pytest.mark.parametrize("marker", sorted(RESULT_PAGES))
def test_every_block_sits_on_its_results_page(marker):
    """Each benchmark block's start and end markers are on the page `RESULT_PAGES` names."""
    text = (REPO / "docs" / "results" / RESULT_PAGES[marker]).read_text(encoding="utf-8")
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    assert text.count(start) == 1 and text.count(end) == 1
    assert text.index(start) < text.index(end)


def test_update_results_replaces_only_its_block(tmp_path):
    """A rewrite replaces the block between the markers and keeps the hand-written text."""
    page = tmp_path / "docs" / "results" / RESULT_PAGES["edit-latency"]
    page.parent.mkdir(parents=True)
    page.write_text(
        "# Edit latency\n\nbefore\n\n<!-- edit-latency:start -->\nold\n"
        "<!-- edit-latency:end -->\n\nafter\n"
    )
    assert update_results("edit-latency", "| new |\n", root=tmp_path) == page
    text = page.read_text()
    assert "old" not in text and "| new |" in text
    assert text.startswith("# Edit latency\n\nbefore\n") and text.endswith("\nafter\n")


def test_update_results_appends_a_missing_block(tmp_path):
    """A page without the block (or no page yet) gets it appended."""
    page = update_results("tofu", "table", root=tmp_path)
    assert page.read_text() == "<!-- tofu:start -->\ntable\n<!-- tofu:end -->\n"


def test_update_results_refuses_an_unknown_block(tmp_path):
    """A marker with no page is an error, not a silently new file."""
    with pytest.raises(KeyError, match="no docs/results page"):
        update_results("no-such-bench", "x", root=tmp_path)
