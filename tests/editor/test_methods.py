"""The method registry."""

from __future__ import annotations

import pytest

from editor.errors import EditorError
from editor.methods import EditMethod, get, names, register
from editor.methods.rome import RomeHyperParams


def test_rome_is_registered() -> None:
    assert "rome" in names()
    method = get("rome")
    assert method.name == "rome" and method.hparams_cls is RomeHyperParams


def test_unknown_method_lists_known_ones() -> None:
    with pytest.raises(EditorError, match="rome"):
        get("no-such-method")


def test_register_refuses_a_second_method_of_the_same_name() -> None:
    clash = EditMethod(name="rome", hparams_cls=dict, apply=lambda *a, **k: ([], []))
    with pytest.raises(EditorError, match="already registered"):
        register(clash)
    assert register(get("rome")) is get("rome")  # re-registering the same object is a no-op
