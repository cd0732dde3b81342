"""GLAME: label features, the relational GNN's message flow, fresh GNN per edit, the edit."""

from __future__ import annotations

import pytest
import torch
from editor_helpers import CTX, edit_setup

from contracts.types import EditRequest, Subgraph, SubgraphEdge
from editor.arch import arch_spec, get_module
from editor.hooks import capture_output
from editor.loading import load_model, state_checksum
from editor.methods import get
from editor.methods.glame import GlameHyperParams, build_gnn, label_features, triple_subgraph
from editor.methods.rgcn import RelationalGNN
from editor.scoring import target_logprobs

GRAPH = Subgraph(
    nodes=("Marie Curie", "Tokyo", "Japan", "English"),
    edges=(
        SubgraphEdge(0, "was born in", 1),
        SubgraphEdge(1, "country", 2),
        SubgraphEdge(2, "language", 3),
    ),
    center=0,
)
REQUEST = EditRequest(
    subject="Marie Curie", prompt="{} was born in", target_new="Tokyo", subgraph=GRAPH
)


def test_label_features_average_the_label_tokens(model_dirs) -> None:
    model, tok = load_model(model_dirs["gpt2"])
    spec = arch_spec(model)
    feats = label_features(model, tok, spec, 1, ["Marie Curie", "Tokyo"])
    ids = tok("Marie Curie", return_tensors="pt")
    with capture_output(get_module(model, spec.layer_name(1))) as cap:
        model(**ids)
    assert int(ids["input_ids"][0, 0]) == tok.bos_token_id  # the BOS is left out of the mean
    torch.testing.assert_close(feats[0], cap.value[0, 1:].mean(0), rtol=1e-4, atol=1e-5)
    comp = label_features(model, tok, spec, 1, ["Marie Curie"], "composite_norm")
    assert comp.shape == (1, feats.shape[1])


def test_messages_flow_from_objects_to_subjects_within_two_hops() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 8)  # (N, d): subject, o*, o', o''
    rel = torch.randn(3, 8)  # (R, d)
    edges = [(0, 0, 1), (1, 1, 2), (2, 2, 3)]  # head ← tail
    gnn = RelationalGNN(x, rel, edges, dropout=0.0, seed=1).eval()
    base = gnn()[0]
    for node, reaches in ((1, True), (2, True), (3, False)):
        moved = RelationalGNN(x.index_add(0, torch.tensor([node]), torch.ones(1, 8)), rel, edges,
                              dropout=0.0, seed=1).eval()  # fmt: skip
        assert bool((moved()[0] - base).abs().max() > 1e-6) == reaches
    # the tail of an edge does not hear its head
    moved = RelationalGNN(x.index_add(0, torch.tensor([0]), torch.ones(1, 8)), rel, edges,
                          dropout=0.0, seed=1).eval()  # fmt: skip
    torch.testing.assert_close(moved()[3], gnn()[3])


def test_every_edit_starts_from_a_fresh_gnn(model_dirs) -> None:
    model, tok = load_model(model_dirs["gpt2"])
    spec = arch_spec(model)
    hp = GlameHyperParams(layer=0, repr_layer=1)
    a, center = build_gnn(model, tok, spec, GRAPH, hp)
    with torch.no_grad():
        for p in a.parameters():
            p.add_(1.0)  # as if trained
    b, _ = build_gnn(model, tok, spec, GRAPH, hp)
    c, _ = build_gnn(model, tok, spec, GRAPH, hp)
    assert center == 0
    for pb, pc, pa in zip(b.parameters(), c.parameters(), a.parameters(), strict=True):
        assert torch.equal(pb, pc) and not torch.equal(pa, pb)
    small = build_gnn(
        model, tok, spec, GRAPH, GlameHyperParams(layer=0, repr_layer=1, subgraph_size=1)
    )[0]
    assert int(small.src.numel()) == 1 + 2  # one edge plus a self-loop per used node


def test_triple_subgraph() -> None:
    g = triple_subgraph(EditRequest(subject="A B", prompt="{} was born in", target_new="C"))
    assert g.nodes == ("A B", "C") and g.edges[0].relation == "was born in" and g.center == 0


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_glame_edits_and_reverts(arch, model_dirs, corpus, tmp_path) -> None:
    model, tok, sm, before, lp0 = edit_setup(model_dirs[arch], corpus, tmp_path, REQUEST)
    hp = GlameHyperParams(layer=0, repr_layer=0, v_num_grad_steps=15)
    deltas, infos = get("glame").apply(
        model, tok, [REQUEST], hp, second_moment=sm, context_templates=CTX
    )
    assert deltas[0].method == "glame" and deltas[0].meta["subgraph"] == {"nodes": 4, "edges": 3}
    assert set(infos[0]["glame"]) == {"eval_loss", "best_loss", "used_best"}
    assert all("weight_decay" in s and s["weight_decay"] == 0.0 for s in infos[0]["losses"])
    lp1 = target_logprobs(model, tok, [REQUEST.rendered()], [REQUEST.target_new])
    assert float(lp1) > float(lp0)
    deltas[0].revert(model)
    assert state_checksum(model) == before
