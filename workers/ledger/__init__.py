"""The model-version ledger: registered base models, chains of deltas, rollback, export.

The names below load their submodule on first use (PEP 562), so `from workers.ledger import
list_models` reads the database without importing torch; only loading and exporting weights
(`load_version`, `export_version`, `register_model`'s hashing) do.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workers.ledger.export import ExportInfo, export_version
    from workers.ledger.registry import ModelInfo, get_model, list_models, register_model
    from workers.ledger.store import load_version
    from workers.ledger.versions import (
        VersionInfo,
        diff_versions,
        get_version,
        list_versions,
        rollback,
    )

_SUBMODULE = {
    "ExportInfo": "export",
    "export_version": "export",
    "ModelInfo": "registry",
    "get_model": "registry",
    "list_models": "registry",
    "register_model": "registry",
    "load_version": "store",
    "VersionInfo": "versions",
    "diff_versions": "versions",
    "get_version": "versions",
    "list_versions": "versions",
    "rollback": "versions",
}

__all__ = [
    "ExportInfo",
    "ModelInfo",
    "VersionInfo",
    "diff_versions",
    "export_version",
    "get_model",
    "get_version",
    "list_models",
    "list_versions",
    "load_version",
    "register_model",
    "rollback",
]


def __getattr__(name: str) -> Any:
    """Import the submodule that defines `name` and return it from there."""
    if name not in _SUBMODULE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_SUBMODULE[name]}"), name)
