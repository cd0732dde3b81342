"""Rebuild a method's cross-batch state when a job resumes after its committed steps.

A method that takes `state=` (AlphaEdit keeps the keys of every earlier batch) would see an
empty state after a worker was lost, and the resumed job would edit differently from an
uninterrupted one. Its rebuilder recomputes, right after each committed step's deltas are
re-applied, exactly what the method recorded at that point. A stateful method without a
rebuilder cannot resume mid-job; the job then fails with a message saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from editor.delta import Delta
from editor.methods import method_layers

Rebuilder = Callable[[Any, Any, Sequence[Any], Sequence[Delta], Any, dict, dict], None]


def _alphaedit(
    model: Any,
    tokenizer: Any,
    requests: Sequence[Any],
    deltas: Sequence[Delta],
    hparams: Any,
    resources: dict[str, Any],
    state: dict[str, Any],
) -> None:
    """Record the step's keys under the batch token its delta carries."""
    from editor.arch import arch_spec
    from editor.methods.alphaedit import AlphaEditState
    from editor.methods.common import request_keys
    from editor.methods.memit import memit_context_templates

    own = state.setdefault("alphaedit", AlphaEditState())
    spec = arch_spec(model)
    templates = resources.get("context_templates") or memit_context_templates(
        model, tokenizer, hparams, resources.get("model_key")
    )
    keys = {
        layer: request_keys(model, tokenizer, spec, layer, requests, templates).T.detach().cpu()
        for layer in method_layers(hparams)
    }  # layer -> (m, n)
    for delta in deltas:
        own.push(str(delta.meta.get("alphaedit_batch")), keys)


REBUILDERS: dict[str, Rebuilder] = {"alphaedit": _alphaedit}


def rebuilder(method_name: str) -> Rebuilder | None:
    """Return the state rebuilder of a method, if it has one."""
    return REBUILDERS.get(method_name)
