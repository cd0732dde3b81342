"""The method registry: `EditMethod`, `register`, lookup by name, and the default methods.

Method modules import `register` from here; the package `editor.methods` re-exports these
names and imports every method module, so registering never imports the package back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.types import FactText
from editor.errors import EditorError


@dataclass(frozen=True)
class ResourceContext:
    """What a method's `resources` hook may draw on while a run is prepared.

    `cache_dir` is the method's own cache directory (`<cache root>/<method name>`);
    `facts` are the graph's facts in verbal form (empty when the caller has none).
    """

    model: Any
    tokenizer: Any
    hparams: Any
    model_key: str
    cache_dir: Path
    facts: Sequence[FactText] = ()


# (model, tokenizer, requests, deltas, hparams, resources, state) -> None: re-record in
# `state` what the method kept after one committed step whose deltas were just re-applied.
Rebuilder = Callable[[Any, Any, Sequence[Any], Sequence[Any], Any, dict, dict], None]
# (request, hyper-parameter overrides) -> what the request lacks for the method, or None.
RequestCheck = Callable[[Any, Mapping[str, Any]], str | None]


@dataclass(frozen=True)
class EditMethod:
    """A registered method: `apply(model, tok, requests, hp, ...)` and what it declares.

    `apply` returns `(deltas, infos)`: the applied deltas in order and one info dict each.
    A `batched` method edits all requests of one call as one batch (one delta); the others
    apply them one after another (one delta each).

    Declarations (read by `editor.prepare`, the job runner and the tests):
    * `defaults`: family -> `editor.methods.defaults.Row` (a `config.model_type` or
      `knowledge`); no rows: the hyper-parameter class's own defaults;
    * `needs_second_moment`: E[k kᵀ] of the edited layers over the statistics corpus;
    * `context(model, tok, hp, model_key, cache_dir=...)`: the method's context templates;
    * `resources(ResourceContext) -> dict`: any further keyword resources of `apply`;
    * `stateful`: `apply` takes `state=` and carries it from one call to the next;
    * `rebuild`: a `Rebuilder` that recomputes that state when a job resumes mid-way;
    * `tiny`: hyper-parameter fields for the tiny random-weight test models (edited layer 0);
    * `check`: a `RequestCheck` naming what one request lacks (ROCR's anchor, GLAME's
      subgraph); job submission and `kgedit.Editor` refuse such a request before any work;
    * `teaches`: the method trains the model on the graph's facts from its current version:
      it folds earlier edits back into the weights and can teach an answer the model cannot
      produce yet; the sync planner sends it the batches that reach the edit budget or ask
      for such an answer (docs/sync.md).
    * `easyedit`: the method's `alg_name` in EasyEdit hparams files, and `easyedit_renames`
      the EasyEdit field names that differ from the method's (`editor.methods.easyedit`);
    * `subject_positions`: the subject tokens its key and value may sit at (`fact_token`
      subject_first / subject_last / subject_all); a calibration's choice applies only to
      methods that declare it;
    * `tune`: field -> values, the grid of its settings a calibration tries on the model's
      dev facts (`editor.calibrate`); empty: calibration leaves its settings alone.
    """

    name: str
    hparams_cls: type
    apply: Callable[..., tuple[list[Any], list[dict[str, Any]]]]
    needs_second_moment: bool = False
    description: str = ""
    batched: bool = False
    context: Callable[..., list[str]] | None = None
    kind: str = "edit"  # "edit" (EditRequest) or "unlearn" (UnlearnRequest)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    resources: Callable[[ResourceContext], dict[str, Any]] | None = None
    stateful: bool = False
    rebuild: Rebuilder | None = None
    tiny: Mapping[str, Any] = field(default_factory=dict)
    check: RequestCheck | None = None
    teaches: bool = False
    easyedit: str = ""
    easyedit_renames: Mapping[str, str] = field(default_factory=dict)
    subject_positions: tuple[str, ...] = ("last",)
    tune: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def missing(self, request: Any, overrides: Mapping[str, Any] | None = None) -> str | None:
        """Return what `request` lacks for this method (its `check`), or None."""
        if self.check is None:
            return None
        return self.check(request, overrides or {})


_REGISTRY: dict[str, EditMethod] = {}

# The method a request of each kind gets when none is named (API, CLI, planner).
_DEFAULT_METHODS = {"edit": "rome", "unlearn": "rocr"}
# The sync loop's methods, tried in order when a gate rolls an attempt back: single-edit
# ROME, then the batched MEMIT, then AlphaEdit's null-space projection (which protects
# earlier edits), then plain fine-tuning; for forgetting, ROCR's redirect, then NPO, then
# gradient difference.
_DEFAULT_CHAINS = {
    "edit": ("rome", "memit", "alphaedit", "ft"),
    "unlearn": ("rocr", "npo", "graddiff"),
}


def register(method: EditMethod) -> EditMethod:
    """Add a method to the registry (its name must be new) and return it."""
    if method.name in _REGISTRY and _REGISTRY[method.name] is not method:
        raise EditorError(f"edit method {method.name!r} is already registered")
    if method.rebuild is not None and not method.stateful:
        raise EditorError(f"method {method.name!r} has a state rebuilder but is not stateful")
    _REGISTRY[method.name] = method
    return method


def get(name: str) -> EditMethod:
    """Return the method called `name`, or raise `EditorError` listing the known names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(names(None))
        raise EditorError(f"unknown method {name!r}; known: {known}") from None


def names(kind: str | None = "edit") -> list[str]:
    """Return the registered names of one kind ("edit", "unlearn"; None: all), sorted."""
    return sorted(n for n, m in _REGISTRY.items() if kind is None or m.kind == kind)


def default_method(kind: str) -> str:
    """Return the method requests of `kind` ("edit" or "unlearn") get when none is named."""
    try:
        return _DEFAULT_METHODS[kind]
    except KeyError:
        raise EditorError(f"kind must be one of {sorted(_DEFAULT_METHODS)}, not {kind!r}") from None


def default_chain(kind: str) -> tuple[str, ...]:
    """Return the methods the sync loop tries in order for requests of `kind`."""
    default_method(kind)
    return tuple(n for n in _DEFAULT_CHAINS[kind] if n in _REGISTRY)


def method_layers(hparams: Any) -> tuple[int, ...]:
    """Return the layers a method's hyper-parameters edit (`layers`, else `layer`)."""
    layers = getattr(hparams, "layers", None)
    if layers is None:
        layers = (hparams.layer,)
    return tuple(int(x) for x in layers)
