"""Keyboard navigation in a real Chromium: a curator signs in, searches, opens an entity, fills
the change-set form and proposes with Tab, Enter and typing only. Every stop shows a focus
ring, the skip link shows when focused and jumps over the navigation, and every form field on
the way has a label."""

from __future__ import annotations

import pytest
from conftest import shot

from api.keys import Role

pytestmark = pytest.mark.slow
FOCUSED = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {
    tag: el.tagName,
    id: el.id,
    text: (el.innerText || el.textContent || "").trim(),
    ring: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
    inMain: el.closest("main") !== null,
  };
}"""
UNLABELLED = """() => [...document.querySelectorAll(
    "input:not([type=hidden]), select, textarea")]
  .filter(el => el.labels.length === 0 && !el.getAttribute("aria-label"))
  .map(el => el.outerHTML)"""


def _tab_to(page, wanted, limit: int = 60) -> dict:
    """Press Tab until the focused element is `wanted` (a test on FOCUSED's result); every
    element focused on the way must show a focus ring."""
    for _ in range(limit):
        focused = page.evaluate(FOCUSED)
        if focused["tag"] != "BODY":
            assert focused["ring"], f"no visible focus on {focused}"
        if wanted(focused):
            return focused
        page.keyboard.press("Tab")
    pytest.fail(f"Tab never reached the element; last focused: {focused}")


def _labelled(page) -> None:
    """Check that every visible form field of the page has a label."""
    assert page.evaluate(UNLABELLED) == []


def test_sign_in_search_edit_and_propose_by_keyboard(live_console, browser_page):
    base, store, keys = live_console
    page = browser_page
    page.goto(f"{base}/ui/login")
    _labelled(page)
    _tab_to(page, lambda f: f["id"] == "api_key")
    page.keyboard.type(keys[Role.CURATOR])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/ui/search")

    _labelled(page)
    _tab_to(page, lambda f: f["id"] == "q")
    page.keyboard.type("stall")
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/search?q=stall")
    _tab_to(page, lambda f: f["tag"] == "A" and f["text"] == "Imogen Stallard")
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/entities/**")

    # the skip link: the first stop, shown when focused, and it jumps over the navigation
    _labelled(page)
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED)["text"] == "Skip to content"
    box = page.locator("a.skip").bounding_box()
    assert box["x"] >= 0 and box["y"] >= 0 and box["width"] > 0
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED)["inMain"]
    _tab_to(page, lambda f: f["text"] == "Replace object")
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/changesets/new?**")

    _labelled(page)
    assert page.get_by_label("subject (required)").input_value() == "Imogen Stallard"
    _tab_to(page, lambda f: f["id"] == "op_new_object")
    page.keyboard.type("York")
    _tab_to(page, lambda f: f["id"] == "reason")
    page.keyboard.type("the register says York")
    shot(page, "21-keyboard-editor", "Replace a fact's object")  # the focus ring on Reason
    _tab_to(page, lambda f: f["tag"] == "BUTTON" and f["text"] == "Save draft")
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/changesets/cs-*")

    _labelled(page)
    cs_id = page.url.rsplit("/", 1)[1]
    _tab_to(page, lambda f: f["tag"] == "BUTTON" and f["text"] == "Propose")
    page.keyboard.press("Enter")
    page.locator(".state-proposed").first.wait_for()
    shot(page, "22-keyboard-proposed", "proposed", "Leeds", "York")
    cs = store.get_change_set(cs_id)
    assert cs.state.value == "proposed" and cs.reason == "the register says York"
