"""The form option: v* and the key over the request's question form and other cloze wordings.

The slow test edits known facts of the tiny knowledge model with ROME at its knowledge
defaults, once with the option and once without, and scores each fact's question form and a
cloze wording the edit never saw (neither the edit prompt nor one of its forms) that the
unedited model states. The tiny model was not trained on question forms, so the question
prompt is a form the plain edit seldom reaches.
"""

from __future__ import annotations

import pytest

from contracts.types import EditRequest, Probe, ProbeKind
from editor.calibrate import known_facts
from editor.loading import load_model, weights_sha256
from editor.methods.common import request_forms
from editor.methods.rome import RomeHyperParams
from editor.prepare import corpus_statements, prepare
from editor.probe_scoring import ScoringConfig, score_probes
from editor.scoring import score_targets
from editor.sequence import EditSequence
from editor.vstar import rewriting_templates
from kg.forms import ANSWER, edit_forms
from kg.view import GraphView

N_EDITS = 8


def test_rewriting_templates_put_each_form_under_every_context() -> None:
    rows = rewriting_templates(["{}", "A. {}"], "{} is in", ["Where is {}?"])
    assert rows == ["{} is in", "A. {} is in", "Where is {}?", "A. Where is {}?"]


def test_the_option_takes_the_first_forms_and_is_off_by_default() -> None:
    request = EditRequest("Ada", "{} is in", "Rome", forms=("{} lives in", "Where is {}?"))
    assert request_forms(request, RomeHyperParams(layer=0)) == ()
    assert request_forms(request, RomeHyperParams(layer=0, forms=1)) == ("{} lives in",)
    assert request_forms(request, object()) == ()


def test_a_form_without_one_subject_slot_is_refused() -> None:
    with pytest.raises(ValueError, match="forms"):
        EditRequest("Ada", "{} is in", "Rome", forms=("Ada lives in",))


def _says(model, tok, template: str, fact) -> bool:
    """Whether the unedited model says the fact's object after `template`."""
    prompt = template.format(fact.subject)
    return bool(score_targets(model, tok, [prompt], [fact.object]).all_argmax[0])


def _edits(model, tok, facts, view) -> list[tuple[EditRequest, str, str]]:
    """Facts the model states in a held-out cloze wording, as edits to another object of
    their relation: (request, held-out cloze, question)."""
    out = []
    for fact in known_facts(model, tok, facts):
        relation = view.relation(fact.relation)
        if not relation.templates.question:
            continue
        forms = edit_forms(relation, fact.templates[0])
        question = relation.templates.question[0] + ANSWER
        held = [t for t in fact.templates[1:] if t not in forms and _says(model, tok, t, fact)]
        others = sorted({f.object for f in facts if f.relation == fact.relation} - {fact.object})
        if not held or not others:
            continue
        request = EditRequest(
            fact.subject, fact.templates[0], others[0], fact.object, relation=fact.relation,
            forms=forms,
        )  # fmt: skip
        out.append((request, held[0], question))
        if len(out) == N_EDITS:
            break
    return out


def _landed(model, tok, ready, edits) -> list[tuple[bool, bool]]:
    """Apply each edit alone; return whether it landed on (held-out cloze, question)."""
    seq = EditSequence(model, tok, ready.method, ready.hparams, **ready.resources)
    out = []
    for request, cloze, question in edits:
        seq.apply([request])
        probes = [
            Probe(t.format(request.subject), request.target_new, ProbeKind.PARAPHRASE,
                  request.target_true)
            for t in (cloze, question)
        ]  # fmt: skip
        scores = score_probes(model, tok, probes, ScoringConfig())
        out.append((bool(scores[0].success), bool(scores[1].success)))
        seq.revert_all()
    return out


@pytest.mark.slow
def test_the_form_option_moves_cloze_and_question_forms_together(
    tiny_model_dir, tiny_facts, tiny_graph, tmp_path
) -> None:
    model, tok = load_model(tiny_model_dir)
    edits = _edits(model, tok, tiny_facts, GraphView(tiny_graph))
    assert len(edits) >= 3
    corpus, key = corpus_statements(tiny_facts), weights_sha256(tiny_model_dir)

    def ready(overrides):
        return prepare("rome", model, tok, corpus, model_key=key, cache_dir=tmp_path,
                       overrides=overrides, trace_layer=0)  # fmt: skip

    with_forms, plain = ready({}), ready({"forms": 0})
    assert with_forms.hparams.forms > 0
    on = _landed(model, tok, with_forms, edits)
    off = _landed(model, tok, plain, edits)
    both_on = sum(a and b for a, b in on) / len(on)
    both_off = sum(a and b for a, b in off) / len(off)
    assert both_on >= both_off, (on, off)
    # a fact the option moves in both forms where the plain edit stays in its cloze wording
    pairs = list(zip(on, off, strict=True))
    assert ((True, True), (True, False)) in pairs, pairs
