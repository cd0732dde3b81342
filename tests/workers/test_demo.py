"""The demo end to end on the tiny preset (reusing the cached tiny model)."""

from __future__ import annotations

import pytest
from rich.console import Console

from workers import settings as settings_mod

pytestmark = pytest.mark.slow


def test_demo_applies_edits_and_reverts_bit_for_bit(
    tmp_path, monkeypatch, tiny_model_dir, tiny_cases
):
    from workers.demo import run_demo

    monkeypatch.setenv("KGEDIT_VAR_DIR", str(tmp_path))
    settings_mod.get_settings.cache_clear()
    console = Console(record=True, width=120)
    try:
        result = run_demo(
            console,
            n_edits=4,
            preset_name="tiny",
            n_cases=tiny_cases,
            models_dir=tiny_model_dir.parent,
        )
    finally:
        settings_mod.get_settings.cache_clear()
    text = console.export_text()
    assert "cached" in text, "the demo must reuse the model trained for these facts"
    assert result["reverted"] is True and "matches" in text
    assert result["n_edits"] == 4
    assert result["rates"]["rewrite"]["after"] > result["rates"]["rewrite"]["before"]
    for kind in ("rewrite", "paraphrase", "neighbour"):
        assert kind in result["rates"]
