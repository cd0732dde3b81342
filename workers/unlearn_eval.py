"""Form-independent evaluation of unlearning: forget and retain rates per form, the form gap.

A probe (from `kg.unlearn_forms`) is *answered* when its answer's length-normalised
log-probability beats every rival's (`editor.probe_scoring`'s comparison). Rates count only
probes the model answered before the change, so a form the model never knew cannot look
forgotten:

* forget rate of a form = share of its forget probes answered before and not after;
* retain rate of a form = share of its retain probes answered before and still after;
* form gap = best form's forget rate − worst form's forget rate (≥ 0; the magnitude of "worst
  minus best"): the form-dependent bias the ROCR paper names. Forms with fewer than
  `min_known` known forget probes are left out of the gap and reported as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contracts.types import Probe
from editor.probe_scoring import ScoringConfig, score_probes
from kg.unlearn_forms import FORGET, FORMS, RETAIN


def answered(
    model: Any, tokenizer: Any, probes: Sequence[Probe], config: ScoringConfig | None = None
) -> list[bool]:
    """Return, per probe, whether the answer beats every rival (the form's "knows it")."""
    scores = score_probes(model, tokenizer, probes, config or ScoringConfig())
    return [bool(s.compared) for s in scores]


def _rate(pairs: list[tuple[bool, bool]], keep: bool) -> tuple[int, float | None]:
    """Return (known before, share kept (keep) or lost (not keep)) over probes known before."""
    known = [after for before, after in pairs if before]
    if not known:
        return 0, None
    kept = sum(known) / len(known)
    return len(known), kept if keep else 1.0 - kept


def form_rates(
    probes: Sequence[Probe], before: Sequence[bool], after: Sequence[bool], min_known: int = 1
) -> dict[str, Any]:
    """Return per-form forget/retain rates, the worst and best forms and the form gap."""
    if not len(probes) == len(before) == len(after):
        raise ValueError("probes, before and after must have the same length")
    pairs: dict[tuple[str, str], list[tuple[bool, bool]]] = {}
    for probe, b, a in zip(probes, before, after, strict=True):
        form, role = probe.meta.get("form"), probe.meta.get("role")
        if form not in FORMS or role not in (FORGET, RETAIN):
            raise ValueError(f"probe without a form/role: {probe.prompt[:60]!r}")
        pairs.setdefault((form, role), []).append((bool(b), bool(a)))
    forms: dict[str, dict[str, Any]] = {}
    for form in FORMS:
        f_pairs, r_pairs = pairs.get((form, FORGET), []), pairs.get((form, RETAIN), [])
        if not f_pairs and not r_pairs:
            continue
        n_f, forget = _rate(f_pairs, keep=False)
        n_r, retain = _rate(r_pairs, keep=True)
        forms[form] = {
            "forget_n": len(f_pairs),
            "forget_known": n_f,
            "forget_rate": forget,
            "retain_n": len(r_pairs),
            "retain_known": n_r,
            "retain_rate": retain,
        }
    gap_forms = {
        f: v["forget_rate"]
        for f, v in forms.items()
        if v["forget_rate"] is not None and v["forget_known"] >= min_known
    }
    out: dict[str, Any] = {"forms": forms, "form_gap": None, "worst_form": None, "best_form": None}
    if gap_forms:
        worst = min(gap_forms, key=lambda f: (gap_forms[f], f))
        best = max(gap_forms, key=lambda f: (gap_forms[f], f))
        out.update(
            worst_form=worst,
            best_form=best,
            worst_forget=gap_forms[worst],
            form_gap=gap_forms[best] - gap_forms[worst],
        )
    all_f = [p for k, v in pairs.items() if k[1] == FORGET for p in v]
    all_r = [p for k, v in pairs.items() if k[1] == RETAIN for p in v]
    out["forget_rate"] = _rate(all_f, keep=False)[1]
    out["retain_rate"] = _rate(all_r, keep=True)[1]
    return out
