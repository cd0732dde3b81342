"""The service's top-level packages that `kgedit` is built on, and a check that they are ours.

They install beside `kgedit` under their own names (docs/python.md, "One import name"). A
module of the same name earlier on `sys.path` (a user's own `api.py`, say) would shadow one
of them and fail obscurely later; `check_packages` names it at import time instead.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGES = ("contracts", "kg", "editor", "workers", "api")
ROOT = Path(__file__).resolve().parents[1]


def check_packages() -> None:
    """Raise ImportError naming any of `PACKAGES` that resolves outside kgedit's own root."""
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin).resolve() if spec is not None and spec.origin else None
        if origin != ROOT / name / "__init__.py":
            found = origin or "nothing"
            raise ImportError(
                f"kgedit needs its package {name!r} from {ROOT}, but {name!r} resolves to "
                f"{found}: rename that module or take its folder off sys.path"
            )
