"""The model-version ledger: registered base models, chains of deltas, rollback, export."""

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
