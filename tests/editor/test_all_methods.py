"""Every registered method on tiny gpt2, gptj, gpt_neox and llama configs: it raises
P(target_new) on the edit prompt, and its delta reverts bit for bit."""

from __future__ import annotations

import pytest
from editor_helpers import OBJECTS, SUBJECTS, TEMPLATES

from contracts.types import EditRequest, FactText, Subgraph, SubgraphEdge
from editor.loading import load_model, state_checksum
from editor.methods import get, names
from editor.methods.alphaedit import AlphaEditHyperParams, eigenvalues
from editor.methods.dike import DikeHyperParams
from editor.methods.ft import FtHyperParams
from editor.methods.glame import GlameHyperParams
from editor.methods.lti import LtiMemitHyperParams, LtiRomeHyperParams
from editor.methods.memit import MemitHyperParams
from editor.methods.rome import RomeHyperParams
from editor.scoring import target_logprobs
from editor.sequence import EditSequence
from editor.stats import layer_second_moment

CTX = ["{}", "A short story. {}"]
REQUEST = EditRequest(
    subject="Marie Curie",
    prompt="{} was born in",
    target_new="Tokyo",
    subgraph=Subgraph(
        nodes=("Marie Curie", "Tokyo", "Japan"),
        edges=(SubgraphEdge(0, "was born in", 1), SubgraphEdge(1, "country", 2)),
    ),
)
FACTS = [
    FactText(subject=s, relation=f"r{t}", object=OBJECTS[(i + t) % len(OBJECTS)], templates=(tpl,))
    for i, s in enumerate(SUBJECTS)
    for t, tpl in enumerate(TEMPLATES[:3])
]
STEPS = 12


def _hparams(method: str, tau: float):
    return {
        "rome": RomeHyperParams(layer=0, v_num_grad_steps=STEPS),
        "memit": MemitHyperParams(
            layers=(0,), v_num_grad_steps=STEPS, clamp_norm_factor=4.0, mom2_update_weight=1.0
        ),
        "alphaedit": AlphaEditHyperParams(
            layers=(0,), v_num_grad_steps=STEPS, clamp_norm_factor=4.0,
            nullspace_threshold=tau, l2=0.1,
        ),
        "ft": FtHyperParams(layer=0, num_steps=STEPS, lr=1e-2, norm_constraint=5e-2),
        "dike": DikeHyperParams(
            layer=0, v_num_grad_steps=STEPS, mom2_update_weight=1.0, krd_steps=3, krd_batch_size=8
        ),
        "lti-rome": LtiRomeHyperParams(
            layer=0, mid_layer=1, v_num_grad_steps=STEPS, nll_factor=1.0
        ),
        "lti-memit": LtiMemitHyperParams(
            layers=(0,), mid_layer=1, v_num_grad_steps=STEPS, nll_factor=1.0,
            clamp_norm_factor=4.0, mom2_update_weight=1.0,
        ),
        "glame": GlameHyperParams(layer=0, repr_layer=0, v_num_grad_steps=STEPS),
    }[method]  # fmt: skip


def test_the_registry_holds_every_method() -> None:
    assert set(names()) == {
        "rome", "memit", "alphaedit", "ft", "dike", "lti-rome", "lti-memit", "glame",
    }  # fmt: skip
    assert {n for n in names() if get(n).batched} == {"memit", "alphaedit", "ft", "dike",
                                                       "lti-memit"}  # fmt: skip


@pytest.mark.parametrize("arch", ["gpt2", "gptj", "gpt_neox", "llama"])
def test_every_method_raises_the_target_and_reverts(arch, model_dirs, corpus, tmp_path) -> None:
    model, tok = load_model(model_dirs[arch])
    sm = layer_second_moment(model, tok, 0, corpus, cache_dir=tmp_path)
    tau = float(eigenvalues(sm).quantile(0.5))
    before = state_checksum(model)
    lp0 = float(target_logprobs(model, tok, [REQUEST.rendered()], [REQUEST.target_new]))
    for method in names():
        seq = EditSequence(
            model, tok, method, _hparams(method, tau), second_moment={0: sm},
            context_templates=CTX, facts=FACTS, model_key=arch, cache_dir=tmp_path,
        )  # fmt: skip
        seq.apply([REQUEST])
        assert len(seq) == 1 and seq.deltas[0].method == method
        lp1 = float(target_logprobs(model, tok, [REQUEST.rendered()], [REQUEST.target_new]))
        assert lp1 > lp0, f"{method} did not raise P(target_new) on {arch}"
        seq.revert_all()
        assert state_checksum(model) == before, f"{method} did not revert on {arch}"
