"""FT-L: fine-tuning of one layer inside an L∞ ball, as a revertible dense delta."""

from __future__ import annotations

import pytest
import torch

from contracts.types import EditRequest
from editor.arch import arch_spec, edited_weight_name
from editor.loading import load_model, state_checksum
from editor.methods import get
from editor.methods.ft import FtHyperParams
from editor.scoring import target_logprobs

REQUESTS = [
    EditRequest(subject="Barack Obama", prompt="The mother of {} is", target_new="Tokyo"),
    EditRequest(subject="Mount Fuji", prompt="{} is located in", target_new="Berlin"),
]


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_ft_stays_in_the_ball_and_reverts(arch, model_dirs) -> None:
    model, tok = load_model(model_dirs[arch])
    spec = arch_spec(model)
    name = edited_weight_name(spec, 1)
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    before = state_checksum(model)
    prompts, targets = [r.rendered() for r in REQUESTS], [r.target_new for r in REQUESTS]
    lp0 = target_logprobs(model, tok, prompts, targets)
    hp = FtHyperParams(layer=1, num_steps=10, lr=1e-2, norm_constraint=2e-2)
    deltas, infos = get("ft").apply(model, tok, REQUESTS, hp)
    assert len(deltas) == 1 and deltas[0].entries[0].kind == "dense"
    assert [e.param for e in deltas[0].entries] == [name]
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, params[n])}
    assert changed == {name}
    diff = (dict(model.named_parameters())[name].detach() - params[name]).abs().max()
    assert float(diff) <= 2e-2 * (1 + 1e-5) and infos[0]["max_abs_change"] <= 2e-2 + 1e-7
    assert bool((target_logprobs(model, tok, prompts, targets) > lp0).all())
    assert infos[0]["losses"][-1] < infos[0]["losses"][0]
    deltas[0].revert(model)
    assert state_checksum(model) == before
