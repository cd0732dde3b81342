"""Calibration of one model to its own facts (docs/calibration.md).

1. **Edit point.** The causal trace (`editor.trace`) of a sample of facts the model knows:
   the MLP indirect effect per (subject-token bucket, layer). The edit layer and the subject
   position are where that effect peaks: the first or the last subject token, or every
   subject token when the two peaks are within `ALL_WITHIN` of each other (at the layer of
   the higher one).
2. **Settings.** Each method that declares a grid (`EditMethod.tune`: ROME its v* steps,
   learning rate and clamp, MEMIT its λ) is run at the new edit point on every grid point,
   single-edit methods before batched ones; a later method starts from the settings chosen
   earlier for the fields it shares. A point's score is the mean of efficacy, paraphrase and
   neighbourhood (other subjects of the relation keep their answer) on the dev edits.
3. **Sayability.** The tail NLL (mean over the tokens after the first) of objects the model
   knows, asked after another subject's prompt (exactly the dev edits' targets), sets the
   threshold under which a requested target counts as one the model can say.

The split: a fact belongs to the calibration split when the sha256 of its (subject, relation,
object) falls in the first `CALIBRATION_SHARE` of the hash range (`is_calibration_fact`); the
trace sample and the dev edits are drawn from it only; a benchmark reporting figures through a
calibration must leave it out.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from contracts.types import EditRequest, FactText
from editor.cancel import checkpoint
from editor.errors import EditorError
from editor.methods import get, names
from editor.scoring import compare_targets, score_targets
from editor.sequence import EditSequence
from editor.tokens import encode_prompt_targets, fact_token_position, target_logprobs_from_logits
from editor.trace import BUCKETS, TraceCase, TraceResult, causal_trace

CALIBRATION_SHARE = 0.2  # of the hash range: the facts calibration may look at
ALL_WITHIN = 0.9  # first and last peaks this close (ratio): edit every subject token
# Nats per tail token under which a target is sayable without a calibration. On the tiny
# knowledge model a taught name after another subject's prompt scores 0.02–2.5 (e.g.
# "Wellington" 2.2), a name it never saw 10.6; a uniform guess over 1,024 tokens is 6.9.
DEFAULT_SAY_NLL = 4.0
SAY_MARGIN = 1.5  # calibrated threshold: this × the 95th percentile of the dev targets' tail NLL
SAY_FLOOR = 1.0  # and never below this
STEPS = "v_num_grad_steps"  # ties on the dev score go to fewer steps
FIRST, LAST = BUCKETS.index("first subject token"), BUCKETS.index("last subject token")

# (method, calibration, overrides) -> editor.prepare.Prepared
Prepare = Callable[[str, Mapping[str, Any], Mapping[str, Any]], Any]
Progress = Callable[[float, str], None]


def is_calibration_fact(subject: str, relation: str, obj: str) -> bool:
    """Return whether a fact is in the calibration split (benchmarks must not report it)."""
    digest = hashlib.sha256(f"{subject}\x1f{relation}\x1f{obj}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < CALIBRATION_SHARE * 2**64


@dataclass(frozen=True)
class EditPoint:
    """Where a model keeps its facts: the edit layer and the subject position."""

    layer: int
    position: str  # "first", "last" or "all"
    first_peak: float
    last_peak: float

    @property
    def fact_token(self) -> str:
        """Return the methods' `fact_token` setting of this position."""
        return f"subject_{self.position}"


def choose_edit_point(trace: TraceResult, kind: str = "mlp") -> EditPoint:
    """Return the layer and subject position where the trace's `kind` effect peaks."""
    table = torch.tensor(trace.tables[kind])  # (buckets, L)
    first, last = table[FIRST], table[LAST]  # (L,) each
    f_peak, l_peak = float(first.max()), float(last.max())
    if f_peak > 0 and l_peak > 0 and min(f_peak, l_peak) >= ALL_WITHIN * max(f_peak, l_peak):
        lead = first if f_peak >= l_peak else last  # (L,)
        return EditPoint(int(lead.argmax()), "all", f_peak, l_peak)
    if f_peak > l_peak:
        return EditPoint(int(first.argmax()), "first", f_peak, l_peak)
    return EditPoint(int(last.argmax()), "last", f_peak, l_peak)


@torch.no_grad()
def tail_nll(
    model: nn.Module, tokenizer: Any, prompts: Sequence[str], targets: Sequence[str]
) -> tuple[list[float], list[bool]]:
    """Return each target's mean NLL over its tokens after the first, and whether greedy
    decoding continues its first token with exactly the rest (0.0 and True: one token)."""
    if not prompts:
        return [], []
    device = next(model.parameters()).device
    batch = encode_prompt_targets(tokenizer, prompts, targets).to(device)
    logits = model(**batch.model_inputs(), use_cache=False).logits  # (B, L, V)
    tail = batch.target_mask.clone()  # (B, T)
    tail[:, 0] = False
    token_lp = target_logprobs_from_logits(logits, batch) * tail  # (B, T)
    rows = torch.arange(logits.shape[0], device=device).unsqueeze(1)  # (B, 1)
    hit = (logits[rows, batch.pred_positions].argmax(-1) == batch.target_ids) | ~tail  # (B, T)
    n = tail.sum(1).clamp(min=1)  # (B,)
    return (-token_lp.sum(1) / n).tolist(), hit.all(1).tolist()


@dataclass(frozen=True)
class Sayability:
    """Whether the model can say a target: greedy continuation, or tail NLL under threshold."""

    target: str
    sayable: bool
    greedy: bool
    nll: float
    threshold: float


def check_targets(
    model: nn.Module,
    tokenizer: Any,
    prompts: Sequence[str],
    targets: Sequence[str],
    threshold: float = DEFAULT_SAY_NLL,
) -> list[Sayability]:
    """Return the sayability of each target after its (filled) prompt."""
    out = []
    for start in range(0, len(prompts), 64):
        part = list(targets[start : start + 64])
        nll, greedy = tail_nll(model, tokenizer, prompts[start : start + 64], part)
        for t, v, g in zip(part, nll, greedy, strict=True):
            out.append(Sayability(t, g or v <= threshold, g, round(v, 4), threshold))
    return out


def known_facts(model: nn.Module, tokenizer: Any, facts: Sequence[FactText]) -> list[FactText]:
    """Return the facts whose object the model says greedily after the first template."""
    if not facts:
        return []
    prompts = [f.templates[0].format(f.subject) for f in facts]
    ok = score_targets(model, tokenizer, prompts, [f.object for f in facts]).all_argmax  # (N,)
    return [f for f, k in zip(facts, ok.tolist(), strict=True) if k]


def dev_requests(facts: Sequence[FactText], pool: Sequence[FactText]) -> list[EditRequest]:
    """Return one edit per fact: its first template, a new object from another fact of the
    same relation in `pool`, its other templates as paraphrases."""
    by_relation: dict[str, list[str]] = {}
    for f in pool:
        by_relation.setdefault(f.relation, [])
        if f.object not in by_relation[f.relation]:
            by_relation[f.relation].append(f.object)
    out = []
    for i, f in enumerate(facts):
        others = [o for o in by_relation.get(f.relation, []) if o != f.object]
        if not others:
            continue
        out.append(
            EditRequest(
                subject=f.subject,
                prompt=f.templates[0],
                target_new=others[i % len(others)],
                target_true=f.object,
                paraphrases=tuple(f.templates[1:4]),
                relation=f.relation,
                request_id=f"calibration-{i}",
            )
        )
    return out


def score_edits(
    model: nn.Module,
    tokenizer: Any,
    prepared: Any,
    requests: Sequence[EditRequest],
    pool: Sequence[FactText],
    batched: bool = False,
) -> dict[str, float]:
    """Apply each request (or all of them as one batch), score it, revert; return the rates."""
    seq = EditSequence(model, tokenizer, prepared.method, prepared.hparams, **prepared.resources)
    hits: dict[str, list[bool]] = {"efficacy": [], "paraphrase": [], "neighbourhood": []}
    groups = [list(requests)] if batched else [[r] for r in requests]
    for group in groups:
        checkpoint()
        seq.apply(group)
        for r in group:
            prompts = [r.rendered()] + [p.format(r.subject) for p in r.paraphrases]
            new = compare_targets(
                model, tokenizer, prompts, [r.target_new] * len(prompts),
                [r.target_true or ""] * len(prompts),
            ).tolist()  # fmt: skip
            hits["efficacy"].append(new[0])
            hits["paraphrase"] += new[1:]
            near = [f for f in pool if f.relation == r.relation and f.subject != r.subject][:5]
            if near:
                kept = score_targets(
                    model, tokenizer, [f.templates[0].format(f.subject) for f in near],
                    [f.object for f in near],
                ).all_argmax.tolist()  # fmt: skip
                hits["neighbourhood"] += kept
        seq.revert_all()
    rates = {k: sum(v) / len(v) if v else 0.0 for k, v in hits.items()}
    rates["score"] = sum(rates.values()) / len(rates)
    return rates


@dataclass
class Calibration:
    """A model's calibration: its edit point, tuned settings per method, and their evidence."""

    edit_layer: int
    fact_token: str
    settings: dict[str, dict[str, Any]]
    say_nll: float
    trace: dict[str, Any]
    edit_point: dict[str, Any]
    dev: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """Build from `to_dict`'s output; EditorError if it is malformed."""
        try:
            out = cls(**dict(data))
            fact_token_position(out.fact_token)
        except TypeError as exc:
            raise EditorError(f"malformed calibration: {exc}") from None
        return out


def tuned_methods() -> list[str]:
    """Return the methods that declare a calibration grid: single-edit ones first."""
    return sorted((m for m in names("edit") if get(m).tune), key=lambda m: (get(m).batched, m))


def _grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Return every combination of a small grid, as override dicts."""
    points: list[dict[str, Any]] = [{}]
    for name, values in grid.items():
        points = [{**p, name: v} for p in points for v in values]
    return points


def calibrate(
    model: nn.Module,
    tokenizer: Any,
    facts: Sequence[FactText],
    prepare: Prepare,
    *,
    n_trace: int = 12,
    n_dev: int = 8,
    samples: int = 5,
    grids: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
    progress: Progress | None = None,
) -> Calibration:
    """Calibrate `model` on the calibration split of its own `facts` (see the module doc).

    `prepare(method, calibration, overrides)` returns the method prepared for this model
    (`editor.prepare.prepare`) at the calibration's edit point, the overrides on top.
    `grids` replaces the declared grid of the methods it names.
    """
    report = progress or (lambda _f, _m: None)
    split = [f for f in facts if is_calibration_fact(f.subject, f.relation, f.object)]
    known = known_facts(model, tokenizer, split)
    if len(known) < 2:
        raise EditorError(
            f"calibration needs at least 2 facts the model knows in its calibration split; "
            f"{len(split)} of {len(facts)} facts are in the split, {len(known)} known"
        )
    cases = [TraceCase(f.templates[0].format(f.subject), f.subject, f.object) for f in known]
    report(0.0, f"causal trace of {min(n_trace, len(cases))} facts")
    trace = causal_trace(
        model, tokenizer, cases[:n_trace], samples=samples, kinds=("mlp",),
        progress=lambda d, t: (checkpoint(), report(0.4 * d / t, "causal trace")),
    )  # fmt: skip
    point = choose_edit_point(trace)
    edit = {"edit_layer": point.layer, "fact_token": point.fact_token}
    dev = dev_requests(known[:n_dev], known)
    methods = tuned_methods()
    plans = {m: _grid((grids or {}).get(m, get(m).tune)) for m in methods}
    total, done = sum(len(p) for p in plans.values()), 0
    results: dict[str, list[dict[str, Any]]] = {}
    chosen: dict[str, Any] = {}  # the settings chosen so far, shared with later methods
    settings: dict[str, dict[str, Any]] = {}
    for method in methods:
        entry = get(method)
        fields = set(getattr(entry.hparams_cls, "__dataclass_fields__", {}))
        base = {k: v for k, v in chosen.items() if k in fields}
        results[method] = []
        for fields_tried in plans[method]:
            report(0.4 + 0.6 * done / total, f"{method} dev grid {done + 1}/{total}")
            done += 1
            tried = {**base, **fields_tried}
            prepared = prepare(method, edit, tried)
            rates = score_edits(model, tokenizer, prepared, dev, known, batched=entry.batched)
            results[method].append({"settings": tried, **rates})
        best = max(results[method], key=lambda r: (r["score"], -r["settings"].get(STEPS, 0)))
        settings[method] = dict(best["settings"])
        chosen.update(best["settings"])
    nlls, _ = tail_nll(model, tokenizer, [r.rendered() for r in dev], [r.target_new for r in dev])
    q95 = sorted(nlls)[min(len(nlls) - 1, math.ceil(0.95 * len(nlls)) - 1)] if nlls else 0.0
    report(1.0, "calibrated")
    return Calibration(
        edit_layer=point.layer,
        fact_token=point.fact_token,
        settings=settings,
        say_nll=round(max(SAY_FLOOR, SAY_MARGIN * q95), 4),
        trace=trace.to_dict(),
        edit_point=asdict(point),
        dev={"n_edits": len(dev), "grid": results},
        split={
            "share": CALIBRATION_SHARE,
            "facts": len(facts),
            "in_split": len(split),
            "known": len(known),
            "traced": len(cases[:n_trace]),
            "dev_edits": len(dev),
        },
    )
