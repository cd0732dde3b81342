"""Registry of editing and unlearning methods; each lives in one small module of this package.

A method is one plug-in: its module ends with one `register(EditMethod(...))` that declares
everything the rest of kgedit needs to know about it (see `EditMethod`). Nothing outside its
module and this registry names a method (`tests/editor/test_method_names.py` checks it).

Unlearning methods (`kind="unlearn"`) register in the same table: their `apply` takes
`UnlearnRequest`s instead of `EditRequest`s and returns deltas the same way.
"""

# Each module registers itself on import.
from editor.methods import (  # noqa: F401
    alphaedit,
    consolidate,
    dike,
    ft,
    glame,
    gradient_unlearning,
    lti,
    memit,
    rocr,
    rome,
    uipe,
)
from editor.methods.registry import (
    EditMethod,
    Rebuilder,
    ResourceContext,
    default_chain,
    default_method,
    get,
    method_layers,
    names,
    register,
)

__all__ = [
    "EditMethod",
    "Rebuilder",
    "ResourceContext",
    "default_chain",
    "default_method",
    "get",
    "method_layers",
    "names",
    "register",
]
