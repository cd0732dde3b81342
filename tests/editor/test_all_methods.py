"""Every registered method × every tiny architecture, as HF's modeling tests run one tester
over every model: the method is prepared by `editor.prepare` with its own tiny settings (its
module's `tiny`), applied once, and its delta reverts bit for bit. Edits raise P(target_new)
on the edit prompt; unlearning moves the model's predictions on the forget texts (which way
is each method's own contract, tested in its module's tests)."""

from __future__ import annotations

import pytest
from editor_helpers import ARCHS, CTX, OBJECTS, SUBJECTS, TEMPLATES

from contracts.types import EditRequest, FactText, Subgraph, SubgraphEdge, UnlearnRequest
from editor.loading import load_model, state_checksum
from editor.methods import get, names
from editor.prepare import prepare
from editor.scoring import target_logprobs
from editor.sequence import EditSequence

EDIT = EditRequest(
    subject="Marie Curie",
    prompt="{} was born in",
    target_new="Tokyo",
    subgraph=Subgraph(
        nodes=("Marie Curie", "Tokyo", "Japan"),
        edges=(SubgraphEdge(0, "was born in", 1), SubgraphEdge(1, "country", 2)),
    ),
)
# Fixed context templates: the ones a random-weight model generates are noise.
FORGET = ("Barack Obama plays the piano.", "Barack Obama was born in Paris.")
RETAIN = ("Marie Curie plays the guitar.", "Mount Fuji is located in Tokyo.")
UNLEARN = UnlearnRequest(
    "Barack Obama", anchor="Marie Curie", forget_texts=FORGET, retain_texts=RETAIN
)
FACTS = [
    FactText(subject=s, relation=f"r{t}", object=OBJECTS[(i + t) % len(OBJECTS)], templates=(tpl,))
    for i, s in enumerate(SUBJECTS)
    for t, tpl in enumerate(TEMPLATES[:3])
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache root for the module: each architecture's statistics are computed once."""
    return tmp_path_factory.mktemp("prepare-cache")


def _forget_logp(model, tok) -> float:
    """Summed log-probability of the forget texts' last words after their prefixes."""
    prompts = [t.rsplit(" ", 1)[0] for t in FORGET]
    targets = [t.rsplit(" ", 1)[1].rstrip(".") for t in FORGET]
    return float(target_logprobs(model, tok, prompts, targets).sum())


def test_every_method_declares_tiny_settings_and_a_row_per_family() -> None:
    for name in names(None):
        method = get(name)
        assert method.tiny, f"{name} declares no tiny settings"
        if method.defaults:
            assert set(ARCHS) <= set(method.defaults), f"{name} lacks rows for some families"
        assert method.rebuild is None or method.stateful


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method", names(None))
def test_method_applies_and_reverts(method, arch, model_dirs, corpus, cache) -> None:
    model, tok = load_model(model_dirs[arch])
    entry = get(method)
    ready = prepare(
        method, model, tok, corpus, model_key=arch, cache_dir=cache, overrides=entry.tiny,
        facts=FACTS,
    )  # fmt: skip
    assert isinstance(ready.hparams, entry.hparams_cls)
    resources = dict(ready.resources)
    if entry.context is not None:
        assert "{}" in resources["context_templates"]  # the pipeline made them
        resources["context_templates"] = CTX
    before = state_checksum(model)
    seq = EditSequence(model, tok, ready.method, ready.hparams, **resources)
    if entry.kind == "edit":
        lp0 = float(target_logprobs(model, tok, [EDIT.rendered()], [EDIT.target_new]))
        seq.apply([EDIT])
        lp1 = float(target_logprobs(model, tok, [EDIT.rendered()], [EDIT.target_new]))
        assert lp1 > lp0, f"{method} did not raise P(target_new) on {arch}"
    else:
        lp0 = _forget_logp(model, tok)
        seq.apply([UNLEARN])
        assert abs(_forget_logp(model, tok) - lp0) > 1e-3, f"{method} left the forget texts"
    assert len(seq) == 1 and seq.deltas[0].method == method
    assert state_checksum(model) != before
    seq.revert_all()
    assert state_checksum(model) == before, f"{method} did not revert on {arch}"
