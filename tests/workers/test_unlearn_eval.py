"""Forget/retain rates per form count only probes known before; the form gap."""

from __future__ import annotations

import pytest

from contracts.types import Probe, ProbeKind
from workers.unlearn_eval import form_rates


def _p(form: str, role: str) -> Probe:
    return Probe("q", "a", ProbeKind.FORM_CLOZE, meta={"form": form, "role": role})


def test_rates_and_gap_by_hand():
    probes = [
        _p("cloze", "forget"),  # known, lost
        _p("cloze", "forget"),  # known, lost
        _p("mc", "forget"),  # known, kept -> not forgotten
        _p("mc", "forget"),  # known, lost
        _p("tf", "forget"),  # never known: not counted
        _p("cloze", "retain"),  # known, kept
        _p("cloze", "retain"),  # known, lost
    ]
    before = [True, True, True, True, False, True, True]
    after = [False, False, True, False, False, True, False]
    out = form_rates(probes, before, after)
    assert out["forms"]["cloze"]["forget_rate"] == 1.0
    assert out["forms"]["mc"]["forget_rate"] == 0.5
    assert out["forms"]["tf"]["forget_rate"] is None and out["forms"]["tf"]["forget_known"] == 0
    assert out["forms"]["cloze"]["retain_rate"] == 0.5
    assert out["worst_form"] == "mc" and out["best_form"] == "cloze"
    assert out["form_gap"] == pytest.approx(0.5)
    assert out["forget_rate"] == pytest.approx(0.75)


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        form_rates([_p("cloze", "forget")], [True], [])
    with pytest.raises(ValueError, match="form/role"):
        form_rates([Probe("q", "a", "x")], [True], [True])
