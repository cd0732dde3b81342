"""The README and docs/ stay navigable: short README, links that resolve, no outside pointers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").rglob("*.md"))]
CODE_DIRS = ("kg", "editor", "workers", "api", "contracts", "bench", "tests")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def slug(heading: str) -> str:
    """Return the GitHub anchor of a markdown heading's text."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Return every heading anchor of a markdown page (GitHub numbering of repeats)."""
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        if line.startswith("#"):
            base = slug(line.lstrip("#"))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(page: Path) -> list[str]:
    """Return the link targets of a page outside fenced code blocks."""
    return LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8")))


def test_readme_is_short_and_starts_with_the_two_commands():
    """The README holds at most 200 lines and shows `make demo` and `make test` first."""
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines (at most 200)"
    head = "\n".join(lines[:6])
    assert "make demo" in head and "make test" in head


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page: Path):
    """Every relative link (and its #anchor) of the README and docs/ points at something."""
    broken = []
    for target in links(page):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor}")
    assert not broken, f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_every_docs_page_is_linked():
    """Each page under docs/ is reachable from the README or another page."""
    linked = set()
    for page in PAGES:
        for target in links(page):
            path = target.partition("#")[0]
            if path and not re.match(r"^[a-z]+:", path):
                linked.add((page.parent / path).resolve())
    orphans = [str(p.relative_to(REPO)) for p in PAGES[1:] if p.resolve() not in linked]
    assert not orphans, f"pages nothing links to: {orphans}"


# Pointers at documents that are not in the repository, and at README sections that moved.
OUTSIDE = re.compile(
    "|".join(
        [
            r"spec \u00a7",
            r"research/",
            r"stack-probe",
            r"(?i:the issue'?s? )",
            r"DESIGN[ :]",
            r"\[UNVERIFIED",
            r"README[ ,:]+\"",
            r"\(README\)",
            r"see README",
        ]
    )
)


def test_code_comments_point_only_inside_the_repository():
    """No code comment or docstring cites a spec, a research note or a README section."""
    hits = []
    for top in CODE_DIRS:
        for path in sorted((REPO / top).rglob("*.py")):
            if path == Path(__file__).resolve():
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if OUTSIDE.search(line):
                    hits.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_docs_pages_named_in_code_exist():
    """Every `docs/….md` path a code comment names is a file of the repository."""
    missing = []
    for top in CODE_DIRS:
        for path in sorted((REPO / top).rglob("*.py")):
            for name in re.findall(r"docs/[\w/.-]+?\.md", path.read_text(encoding="utf-8")):
                if not (REPO / name).is_file():
                    missing.append(f"{path.relative_to(REPO)}: {name}")
    assert not missing, "; ".join(missing)


@pytest.mark.parametrize(
    "page",
    sorted(p for p in (REPO / "docs" / "results").glob("*.md") if p.name != "index.md"),
    ids=lambda p: p.name,
)
def test_results_pages_are_dated(page: Path):
    """Every results page says when its figures were measured, and the index lists it."""
    assert re.search(r"\b20\d\d-\d\d-\d\d\b", page.read_text(encoding="utf-8"))
    index = (REPO / "docs" / "results" / "index.md").read_text(encoding="utf-8")
    assert f"]({page.name})" in index
