"""Benchmark data the tests read (EVOKE, TOFU): skipped with the reason when absent, failed
under CI=true, so a clone without the data runs the rest of the suite."""

from __future__ import annotations

from pathlib import Path

from service_checks import skip_or_fail

from workers.errors import DataSetMissingError
from workers.settings import get_settings


def data_set_or_skip(name: str) -> Path:
    """Return a data set's folder; skip the test (fail it under CI=true) when it is absent."""
    try:
        return get_settings().data_set(name)
    except DataSetMissingError as exc:
        skip_or_fail(str(exc))
        raise  # not reached: skip_or_fail raises pytest's skip or fail outcome
