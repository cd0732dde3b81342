"""Building blocks the ROME and MEMIT families share: hyper-parameter I/O, context templates
and v* settings from the hyper-parameters, batched keys and hidden states at the subject
token, per-layer statistics lookup, update factors as a `Delta`, and step timings."""

from __future__ import annotations

import dataclasses
import json
import time
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from contracts.types import EditRequest, UnlearnRequest
from editor.arch import ArchSpec, arch_spec, edited_weight, edited_weight_name, get_module
from editor.context import context_templates as make_context_templates
from editor.delta import Delta, DeltaEntry
from editor.errors import EditorError
from editor.hooks import capture_input, capture_output
from editor.stats import SecondMoment
from editor.tokens import encode_prompt_targets, fact_token_position, fill, subject_token_indices
from editor.vstar import VStarResult, optimize_v, rewriting_templates

StatsSource = SecondMoment | Mapping[int, SecondMoment] | Callable[[int], SecondMoment]
_CHUNK = 256


class HParams:
    """Mixin for hyper-parameter dataclasses: JSON round trip, lists become tuples."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        """Build from a JSON-like dict; unknown keys raise `EditorError`."""
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise EditorError(f"{cls.__name__}: unknown hyper-parameters {unknown}")
        hints = typing.get_type_hints(cls)
        return cls(**{k: _coerce(hints[k], v) for k, v in data.items()})

    @classmethod
    def from_json(cls, path: str | Path) -> Any:
        """Read a JSON object of hyper-parameters from a file."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def replace(self, **changes: Any) -> Any:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def _coerce(hint: Any, value: Any) -> Any:
    """Turn JSON lists into (nested) tuples where the field is a tuple."""
    if isinstance(value, list) and (typing.get_origin(hint) is tuple or hint is tuple):
        return tuple(_coerce(Any, v) if not isinstance(v, list) else tuple(v) for v in value)
    return value


def moment_for(source: StatsSource | None, layer: int) -> SecondMoment:
    """Return the second moment of `layer` from a single moment, a mapping or a callable."""
    if source is None:
        raise EditorError(f"no second moment given for layer {layer}")
    if isinstance(source, SecondMoment):
        return source
    if isinstance(source, Mapping):
        if layer not in source:
            raise EditorError(f"no second moment for layer {layer} (have {sorted(source)})")
        return source[layer]
    return source(layer)


def check_width(matrix_dim: int, key_dim: int) -> None:
    """Raise unless a layer's (m, m) second moment or projector matches its keys' width m."""
    if matrix_dim != key_dim:
        raise EditorError(f"second moment is {matrix_dim}-dim, keys {key_dim}")


def check_layers(spec: ArchSpec, model: nn.Module, layers: Sequence[int]) -> None:
    """Raise unless the layers are distinct, ascending and inside the model."""
    n = spec.n_layers(model.config)
    if not layers or list(layers) != sorted(set(layers)):
        raise EditorError(f"layers must be distinct and ascending: {list(layers)}")
    if layers[0] < 0 or layers[-1] >= n:
        raise EditorError(f"layers {list(layers)} out of range for {n} layers")


def checked_spec(model: nn.Module, layers: Sequence[int], spec: ArchSpec | None = None) -> ArchSpec:
    """Return the model's architecture spec (`spec` when given) once `layers` are checked."""
    spec = spec or arch_spec(model)
    check_layers(spec, model, layers)
    return spec


def _subject_rows(
    tokenizer: Any,
    requests: Sequence[EditRequest],
    templates_of: Callable[[EditRequest], list],
    position: str = "last",
) -> tuple[list[str], list[int], list[int], list[int]]:
    """Return texts, subject-token columns, the owning request and the template's index of
    every row; "all" gives one row per subject token."""
    texts, cols, owner, which = [], [], [], []
    for i, request in enumerate(requests):
        for j, template in enumerate(templates_of(request)):
            for col in subject_token_indices(tokenizer, template, request.subject, position):
                texts.append(fill(template, request.subject)[0])
                cols.append(col)
                owner.append(i)
                which.append(j)
    return texts, cols, owner, which


def subject_position(hparams: Any) -> str:
    """Return the subject position ("first", "last", "all") of hparams (`fact_token`)."""
    return fact_token_position(getattr(hparams, "fact_token", "subject_last"))


@torch.no_grad()
def _read_at_subject(
    model: nn.Module,
    tokenizer: Any,
    module: nn.Module,
    texts: Sequence[str],
    cols: Sequence[int],
    read_input: bool,
) -> torch.Tensor:
    """Return `module`'s input or output at the given column of every text, (N, width)."""
    device = next(model.parameters()).device
    out = []
    capture = capture_input if read_input else capture_output
    for start in range(0, len(texts), _CHUNK):
        part = list(texts[start : start + _CHUNK])
        batch = encode_prompt_targets(tokenizer, part, [None] * len(part)).to(device)
        rows = list(range(len(part)))
        with capture(module, rows, list(cols[start : start + _CHUNK]), stop=True) as cap:
            model(**batch.model_inputs(), use_cache=False)
        if cap.value is None:
            raise EditorError("hooked module did not run")
        out.append(cap.value.float())
    return torch.cat(out)  # (N, width)


def request_forms(request: EditRequest, hparams: Any) -> tuple[str, ...]:
    """Return the request's forms the hparams' form option uses: the first `hparams.forms`
    (none where the method has no such field)."""
    return request.forms[: max(0, int(getattr(hparams, "forms", 0) or 0))]


def request_keys(
    model: nn.Module,
    tokenizer: Any,
    spec: ArchSpec,
    layer: int,
    requests: Sequence[EditRequest],
    context_templates: Sequence[str],
    position: str = "last",
    hparams: Any = None,
) -> torch.Tensor:
    """Return one key per request (n, m): the mean of the bare-prompt key and the prefix mean.

    MEMIT groups the templates as [["{}"], prefixes] and averages the group means; with only
    one group the key is that group's mean. `position` "all" averages over subject tokens too.
    With the form option of `hparams` the request's forms join the prompt in both groups.
    """
    texts, cols, owner, which = _subject_rows(
        tokenizer,
        requests,
        lambda r: rewriting_templates(context_templates, r.prompt, request_forms(r, hparams)),
        position,
    )
    module = get_module(model, spec.down_proj_name(layer))
    keys = _read_at_subject(model, tokenizer, module, texts, cols, read_input=True)  # (N, m)
    bare = [context_templates[j % len(context_templates)] == "{}" for j in which]
    owner_t = torch.tensor(owner)  # (N,)
    bare_t = torch.tensor(bare)  # (N,)
    out = []
    for i in range(len(requests)):
        groups = [keys[(owner_t == i) & bare_t], keys[(owner_t == i) & ~bare_t]]
        means = [g.mean(0) for g in groups if g.shape[0]]
        out.append(torch.stack(means).mean(0))  # (m,)
    return torch.stack(out)  # (n, m)


def bare_outputs(
    model: nn.Module,
    tokenizer: Any,
    module_name: str,
    requests: Sequence[EditRequest],
    read_input: bool = False,
    position: str = "last",
) -> torch.Tensor:
    """Return a module's output (or input) at the subject token of each bare prompt, (n, w)
    (the mean over the subject's tokens for `position` "all")."""
    texts, cols, owner, _ = _subject_rows(tokenizer, requests, lambda r: [r.prompt], position)
    module = get_module(model, module_name)
    values = _read_at_subject(model, tokenizer, module, texts, cols, read_input)  # (N, w)
    owner_t = torch.tensor(owner, device=values.device)  # (N,)
    return torch.stack([values[owner_t == i].mean(0) for i in range(len(requests))])  # (n, w)


def factor_entry(
    model: nn.Module, spec: ArchSpec, layer: int, U: torch.Tensor, V: torch.Tensor
) -> DeltaEntry:
    """Return the delta entry `W_math += U Vᵀ` of one layer, dense when that is smaller."""
    weight = edited_weight(model, spec, layer)
    d, m = weight.shape[::-1] if spec.conv1d else weight.shape
    rank = U.shape[1]
    name = edited_weight_name(spec, layer)
    if rank * (d + m) < d * m:
        return Delta.low_rank("", name, tuple(weight.shape), U, V, transpose=spec.conv1d).entries[0]
    math = U.double() @ V.double().T  # (d, m)
    storage = (math.T if spec.conv1d else math).to(weight.dtype)  # storage orientation
    return DeltaEntry(param=name, shape=tuple(weight.shape), dense=storage.cpu().contiguous())


def apply_entry(model: nn.Module, entry: DeltaEntry) -> None:
    """Apply one entry in place (recording what its revert needs)."""
    Delta("", [entry]).apply(model)


def request_meta(requests: Sequence[EditRequest]) -> list[dict[str, Any]]:
    """Return the JSON metadata a delta keeps about its requests."""
    return [
        {
            "request_id": r.request_id,
            "subject": r.subject,
            "prompt": r.prompt,
            "target_new": r.target_new,
        }
        for r in requests
    ]


def request_ids(requests: Sequence[EditRequest | UnlearnRequest]) -> list[str]:
    """Return the ids of the requests that have one."""
    return [r.request_id for r in requests if r.request_id]


def own_cache_dir(ctx: Any) -> dict[str, Any]:
    """A `resources` hook: the method's own cache directory as its `cache_dir`."""
    return {"cache_dir": ctx.cache_dir}


def hparams_context_templates(
    model: nn.Module,
    tokenizer: Any,
    hparams: Any,
    model_key: str | None = None,
    cache_dir: str | Path | None = None,
) -> list[str]:
    """Return the context templates `hparams` describe: "{}" plus generated prefixes (from
    `hparams.context_seeds` where the method has seed words, else the default seeds)."""
    return make_context_templates(
        model,
        tokenizer,
        hparams.context_template_length_params,
        seed=hparams.context_seed,
        model_key=model_key,
        cache_dir=cache_dir,
        seed_texts=getattr(hparams, "context_seeds", None) or None,
    )


def templates_or_default(
    model: nn.Module,
    tokenizer: Any,
    hparams: Any,
    given: Sequence[str] | None,
    model_key: str | None,
    timings: dict[str, float] | None = None,
) -> Sequence[str]:
    """Return the given context templates, or those `hparams` describe when none are given;
    with `timings`, the seconds this takes are added to `timings["context"]`."""
    with timed(timings if timings is not None else {}, "context"):
        if given is not None:
            return given
        return hparams_context_templates(model, tokenizer, hparams, model_key)


def vstar_options(hparams: Any) -> dict[str, Any]:
    """Return the v* optimisation settings (`editor.vstar.optimize_v`) of ROME-style hparams."""
    return {
        "num_steps": hparams.v_num_grad_steps,
        "lr": hparams.v_lr,
        "weight_decay": hparams.v_weight_decay,
        "clamp_norm_factor": hparams.clamp_norm_factor,
        "kl_factor": hparams.kl_factor,
        "loss_stop": hparams.v_loss_stop,
        "essence_prompts": hparams.essence_prompts,
        "subject_position": subject_position(hparams),
        "cache_lower": hparams.v_cache,
        "targets_only": hparams.v_cache,
    }


def request_vstar(
    model: nn.Module,
    tokenizer: Any,
    request: EditRequest,
    context_templates: Sequence[str],
    hparams: Any,
    **options: Any,
) -> VStarResult:
    """Run the v* optimisation for one request with the hparams' settings (`vstar_options`,
    the request's forms where the form option is on); `options` add to or override them
    (`layer` is required)."""
    return optimize_v(
        model,
        tokenizer,
        request.subject,
        request.prompt,
        request.target_new,
        context_templates,
        **{**vstar_options(hparams), "forms": request_forms(request, hparams), **options},
    )


@contextmanager
def timed(timings: dict[str, float], step: str) -> Iterator[None]:
    """Add the seconds the `with` body takes to `timings[step]`."""
    t0 = time.perf_counter()
    yield
    timings[step] = timings.get(step, 0.0) + time.perf_counter() - t0


def batch_delta(
    method: str,
    entries: Sequence[DeltaEntry],
    requests: Sequence[EditRequest],
    hparams: HParams,
    timings: dict[str, float],
    where: dict[str, Any],
    **meta: Any,
) -> Delta:
    """Return the `Delta` of one edited batch: `where` (its layers), the requests, hparams,
    timings and any further metadata."""
    return Delta(
        method,
        list(entries),
        request_ids(requests),
        {
            **where,
            "requests": request_meta(requests),
            "hparams": hparams.to_dict(),
            "timings": dict(timings),
            **meta,
        },
    )
