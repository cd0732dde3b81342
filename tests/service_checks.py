"""What a test does when a service it needs is missing: skip, or fail under CI=true."""

from __future__ import annotations

import os

import pytest


def skip_or_fail(reason: str) -> None:
    """Skip the test, or fail it when CI=true (a missing service must not pass silently)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)
