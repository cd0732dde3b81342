"""kgedit's Python API: `import kgedit`, then `kgedit.Editor(model_dir, graph=...)`.

The few objects a notebook needs, under one name (docs/python.md). The service's own
packages (`contracts`, `kg`, `editor`, `workers`, `api`) stay importable as they are; this
package only imports from them, after checking that no other module of the same name
shadows one of them (`kgedit.packages`).
"""

# ruff: noqa: E402  (the check runs before the service's packages are imported)
from kgedit.packages import check_packages

check_packages()

from contracts.types import EditRequest, Probe, Subgraph, SubgraphEdge, UnlearnRequest
from editor.delta import Delta
from editor.methods import default_method, names
from editor.methods.easyedit import Translation
from editor.methods.easyedit import translate_easyedit as easyedit_hparams
from kgedit.editor import Editor
from kgedit.example import example_model
from workers.audit.run import AuditConfig
from workers.errors import InvalidInputError


def methods(kind: str = "edit") -> list[str]:
    """Return the registered method names of one kind ("edit" or "unlearn")."""
    return names(kind)


__all__ = [
    "AuditConfig",
    "Delta",
    "EditRequest",
    "Editor",
    "InvalidInputError",
    "Probe",
    "Subgraph",
    "SubgraphEdge",
    "Translation",
    "UnlearnRequest",
    "default_method",
    "easyedit_hparams",
    "example_model",
    "methods",
]
