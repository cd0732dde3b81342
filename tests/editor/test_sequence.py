"""Single, batch and sequential modes; ordered deltas; reverting any suffix."""

from __future__ import annotations

import pytest
from editor_helpers import CTX

from contracts.types import EditRequest
from editor.errors import EditorError
from editor.loading import load_model, state_checksum
from editor.methods.memit import MemitHyperParams
from editor.methods.rome import RomeHyperParams
from editor.sequence import EditSequence, edit
from editor.stats import layer_second_moment

REQUESTS = [
    EditRequest(subject="Barack Obama", prompt="The mother of {} is", target_new="Tokyo"),
    EditRequest(subject="Mount Fuji", prompt="{} is located in", target_new="Berlin"),
    EditRequest(subject="Ada Lovelace", prompt="{} plays the", target_new="guitar"),
    EditRequest(subject="Apple", prompt="{} was born in", target_new="Rome"),
]


@pytest.fixture
def gpt2(model_dirs, corpus, tmp_path):
    model, tok = load_model(model_dirs["gpt2"])
    sm = {0: layer_second_moment(model, tok, 0, corpus, cache_dir=tmp_path)}
    return model, tok, sm


@pytest.mark.parametrize(
    ("method", "hparams", "batch_size", "n_deltas"),
    [
        ("rome", RomeHyperParams(layer=0, v_num_grad_steps=5), 1, 4),
        ("memit", MemitHyperParams(layers=(0,), v_num_grad_steps=5), 2, 2),
    ],
)
def test_revert_any_suffix(gpt2, method, hparams, batch_size, n_deltas) -> None:
    model, tok, sm = gpt2
    seq = EditSequence(model, tok, method, hparams, second_moment=sm, context_templates=CTX)
    sums = [state_checksum(model)]
    for start in range(0, len(REQUESTS), batch_size):
        seq.apply(REQUESTS[start : start + batch_size])
        sums += [state_checksum(model)] * (len(seq) - len(sums) + 1)
    assert len(seq) == n_deltas == len(seq.infos) == len(seq.seconds)
    # each delta was made on the weights the previous one left
    for prev, nxt in zip(seq.deltas, seq.deltas[1:], strict=False):
        assert nxt.entries[0].sha_before == prev.entries[-1].sha_after
    reverted = seq.revert_to(1)
    assert len(reverted) == n_deltas - 1 and state_checksum(model) == sums[1]
    seq.apply(REQUESTS[-1:])  # a new suffix after the kept prefix
    assert len(seq) == 2
    seq.revert_all()
    assert len(seq) == 0 and state_checksum(model) == sums[0]


def test_modes(gpt2) -> None:
    model, tok, sm = gpt2
    before = state_checksum(model)
    hp = MemitHyperParams(layers=(0,), v_num_grad_steps=3)
    kw = {"second_moment": sm, "context_templates": CTX}
    assert len(edit(model, tok, "memit", REQUESTS[:1], hp, "single", **kw).revert_all()) == 1
    assert len(edit(model, tok, "memit", REQUESTS, hp, "batch", **kw).revert_all()) == 1
    seq = edit(model, tok, "memit", REQUESTS, hp, "sequential", batch_size=3, **kw)
    assert [len(d.request_ids) for d in seq.deltas] == [0, 0]  # requests carry no ids here
    assert [len(d.meta["requests"]) for d in seq.deltas] == [3, 1]
    seq.revert_all()
    assert state_checksum(model) == before
    with pytest.raises(EditorError, match="single mode"):
        edit(model, tok, "memit", REQUESTS, hp, "single", **kw)
    with pytest.raises(EditorError, match="mode"):
        edit(model, tok, "memit", REQUESTS, hp, "parallel", **kw)
    with pytest.raises(EditorError, match="MemitHyperParams"):
        EditSequence(model, tok, "memit", RomeHyperParams(layer=0))
    with pytest.raises(EditorError, match="revert"):
        EditSequence(model, tok, "memit", hp).revert_to(1)
