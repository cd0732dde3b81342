"""Benchmark data sets: a one-line error naming KGEDIT_DATA_DIR, and tests that skip without."""

from __future__ import annotations

import data_sets
import pytest
from typer.testing import CliRunner

from api.cli import app
from workers.errors import DataSetMissingError
from workers.settings import DATA_SETS, Settings, get_settings


def _fill(folder, name: str) -> None:
    (folder / name).mkdir(parents=True)
    for file in DATA_SETS[name]:
        (folder / name / file).write_text("[]")


@pytest.mark.parametrize("name", sorted(DATA_SETS))
def test_a_missing_data_set_is_one_line_naming_the_variable(tmp_path, name):
    settings = Settings(data_dir=tmp_path)
    assert not settings.has_data_set(name)
    with pytest.raises(DataSetMissingError) as info:
        settings.data_set(name)
    message = str(info.value)
    assert "\n" not in message and "KGEDIT_DATA_DIR" in message
    assert str(tmp_path / name) in message and DATA_SETS[name][0] in message
    _fill(tmp_path, name)
    assert settings.has_data_set(name) and settings.data_set(name) == tmp_path / name


def test_evoke_paths_name_the_variable_when_absent(tmp_path):
    with pytest.raises(DataSetMissingError, match="KGEDIT_DATA_DIR"):
        _ = Settings(data_dir=tmp_path).evoke_main
    _fill(tmp_path, "evoke")
    assert Settings(data_dir=tmp_path).evoke_subj_spec.name == "evoke_subj_spec.json"


def test_tests_skip_without_the_data_and_fail_under_ci(tmp_path, monkeypatch):
    monkeypatch.setattr(data_sets, "get_settings", lambda: Settings(data_dir=tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="KGEDIT_DATA_DIR"):
        data_sets.data_set_or_skip("tofu")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="KGEDIT_DATA_DIR"):
        data_sets.data_set_or_skip("evoke")
    _fill(tmp_path, "evoke")
    assert data_sets.data_set_or_skip("evoke") == tmp_path / "evoke"


@pytest.fixture
def empty_data_dir(tmp_path, monkeypatch):
    """Process-wide settings whose data folder is empty."""
    monkeypatch.setenv("KGEDIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KGEDIT_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_cli_import_evoke_without_data_is_a_one_line_error(empty_data_dir):
    url = f"sqlite:///{empty_data_dir / 'kg.sqlite'}"
    out = CliRunner().invoke(app, ["import", "evoke", "--graph", url])
    assert out.exit_code == 2, out.output
    (line,) = out.output.strip().splitlines()
    assert line.startswith("error: EVOKE data not found") and "KGEDIT_DATA_DIR" in line
    assert "Traceback" not in out.output
