"""GLAME: knowledge-graph-enhanced editing (Zhang et al., EMNLP 2024), as the released code
runs it (docs/methods/glame.md): ROME whose free δ is the output of a relational GNN.

1. Subgraph: `EditRequest.subgraph` (nodes, labelled edges head→tail, center = the subject);
   the first `subgraph_size` edges are used. The graph side builds it (the edit triple
   (s, r, o*) and the new object's own facts (o*, r', o')).
2. Features, read once from the unedited LLM: each node label and each relation label is fed
   alone; its feature is the mean over its tokens (a BOS the tokenizer adds is left out) of
   the block output at `repr_layer` ("avg"; "composite_norm" averages that mean, rescaled to
   the last token's norm, with the last token's state).
3. δ = the GNN's output at the subject node (`editor.methods.rgcn`), clamped to
   clamp_norm_factor·‖m₀‖, added to the edit layer's MLP output at the subject token as in
   ROME; the GNN is trained with AdamW (lr `v_lr`, `gnn_weight_decay`) on ROME's NLL + KL
   loss without the δ decay term, early stop below `v_loss_stop`. Afterwards δ is recomputed
   in eval mode; if its loss is worse than the best training loss + `fallback_margin` and
   above the early-stop threshold, the best training δ is used.
4. ROME's rank-one solve, unchanged.

Decisions:
* The GNN is re-initialised for every edit from a seeded generator (the paper's semantics;
  the released code means to but keeps the weights by accident, a warm start).
* A request without a subgraph gets the one-edge graph of its own triple, the relation
  labelled by the prompt's words ("{} was born in" → "was born in"), when the method is
  called directly; a job refuses it at submission (`subgraph_problem`).
* The self-loop carries a zero relation vector (`editor.methods.rgcn`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from contracts.types import EditRequest, Subgraph, SubgraphEdge
from editor.arch import ArchSpec, get_module
from editor.delta import Delta
from editor.errors import EditorError
from editor.hooks import capture_output
from editor.methods.defaults import KNOWLEDGE, KNOWLEDGE_STEPS, Row, llama_like, sourced
from editor.methods.entries import EditCall, request_by_request
from editor.methods.registry import EditMethod, register
from editor.methods.rgcn import RelationalGNN
from editor.methods.rome import RomeHyperParams, apply_rome, rome_context_templates
from editor.tokens import SUBJECT_POSITIONS
from editor.vstar import VStarResult, optimize_v


@dataclass(frozen=True)
class GlameHyperParams(RomeHyperParams):
    """GLAME: ROME's fields (v_* drive the GNN training) plus the graph network's."""

    v_num_grad_steps: int = 40
    v_loss_stop: float = 0.04
    gnn_weight_decay: float = 0.1
    gnn_dropout: float = 0.3
    gnn_layers: int = 2
    gnn_seed: int = 0
    subgraph_size: int = 20
    repr_layer: int = 5
    feature_strategy: str = "avg"
    fallback_margin: float = 0.1
    context_template_length_params: tuple[tuple[int, int], ...] = ((5, 10), (10, 10), (20, 10))


def triple_subgraph(request: EditRequest) -> Subgraph:
    """Return the one-edge subgraph (subject → prompt words → new object) of a request."""
    relation = " ".join(request.prompt.replace("{}", " ").split())
    return Subgraph(
        nodes=(request.subject, request.target_new),
        edges=(SubgraphEdge(head=0, relation=relation or "relation", tail=1),),
        center=0,
    )


@torch.no_grad()
def label_features(
    model: nn.Module,
    tokenizer: Any,
    spec: ArchSpec,
    layer: int,
    labels: Sequence[str],
    strategy: str = "avg",
) -> torch.Tensor:
    """Return one feature per label (N, d): its block-output states at `layer`, pooled."""
    if strategy not in {"avg", "composite_norm"}:
        raise EditorError(f"unknown feature strategy {strategy!r}")
    device = next(model.parameters()).device
    enc = tokenizer(
        list(labels), padding=True, return_tensors="pt", return_special_tokens_mask=True
    )
    mask = (enc["attention_mask"] * (1 - enc["special_tokens_mask"])).to(device)  # (N, L)
    if bool((mask.sum(1) == 0).any()):
        raise EditorError("a label encodes to no tokens")
    inputs = {"input_ids": enc["input_ids"].to(device), "attention_mask": enc["attention_mask"]}
    inputs["attention_mask"] = inputs["attention_mask"].to(device)
    with capture_output(get_module(model, spec.layer_name(layer)), stop=True) as cap:
        model(**inputs, use_cache=False)
    assert cap.value is not None
    h = cap.value.float()  # (N, L, d)
    w = mask.unsqueeze(-1).float()  # (N, L, 1)
    mean = (h * w).sum(1) / w.sum(1)  # (N, d)
    if strategy == "avg":
        return mean
    last_idx = (mask * torch.arange(mask.shape[1], device=device)).argmax(1)  # (N,)
    last = h[torch.arange(h.shape[0], device=device), last_idx]  # (N, d)
    scaled = mean * (last.norm(dim=1, keepdim=True) / mean.norm(dim=1, keepdim=True))
    return (scaled + last) / 2


def build_gnn(
    model: nn.Module, tokenizer: Any, spec: ArchSpec, subgraph: Subgraph, hparams: GlameHyperParams
) -> tuple[RelationalGNN, int]:
    """Return a freshly initialised GNN over the subgraph and the center node's index."""
    edges = list(subgraph.edges[: hparams.subgraph_size])
    used = sorted({subgraph.center} | {e.head for e in edges} | {e.tail for e in edges})
    index = {node: i for i, node in enumerate(used)}
    relations = sorted({e.relation for e in edges})
    rel_index = {r: i for i, r in enumerate(relations)}
    nodes = label_features(
        model, tokenizer, spec, hparams.repr_layer, [subgraph.nodes[i] for i in used],
        hparams.feature_strategy,
    )  # fmt: skip
    rels = (
        label_features(
            model, tokenizer, spec, hparams.repr_layer, relations, hparams.feature_strategy
        )
        if relations
        else nodes.new_zeros(0, nodes.shape[1])
    )
    gnn = RelationalGNN(
        nodes,
        rels,
        [(index[e.head], rel_index[e.relation], index[e.tail]) for e in edges],
        layers=hparams.gnn_layers,
        dropout=hparams.gnn_dropout,
        seed=hparams.gnn_seed,
    )
    return gnn, index[subgraph.center]


class GnnDelta:
    """δ = the GNN's output at the center node, clamped to `clamp·‖m₀‖`; AdamW on the GNN."""

    def __init__(self, gnn: RelationalGNN, center: int, max_norm: torch.Tensor, wd: float):
        self.gnn, self.center, self.max_norm, self.wd = gnn, center, max_norm, wd
        self.gnn.train()

    def parameters(self) -> Sequence[torch.Tensor]:
        """Return the GNN's weights."""
        return list(self.gnn.parameters())

    def __call__(self) -> torch.Tensor:
        """Return δ (d,): the center's final state, scaled onto the ball when outside it."""
        delta = self.gnn()[self.center]  # (d,)
        norm = delta.norm()
        return delta * (self.max_norm / norm) if norm > self.max_norm else delta

    def optimizer(self, lr: float) -> torch.optim.Optimizer:
        """Return AdamW on the GNN with GLAME's weight decay."""
        return torch.optim.AdamW(self.gnn.parameters(), lr=lr, weight_decay=self.wd)

    def project(self, max_norm: torch.Tensor) -> None:
        """No-op: the clamp is part of `__call__`."""


class FixedDelta:
    """A constant δ, to evaluate the loss of a given vector once."""

    def __init__(self, delta: torch.Tensor) -> None:
        self.delta = delta.detach()
        self._dummy = torch.zeros(1, requires_grad=True)

    def parameters(self) -> Sequence[torch.Tensor]:
        """Return nothing trainable."""
        return []

    def __call__(self) -> torch.Tensor:
        """Return the fixed δ (d,)."""
        return self.delta

    def optimizer(self, lr: float) -> torch.optim.Optimizer:
        """Return an optimiser over a dummy tensor (never stepped)."""
        return torch.optim.SGD([self._dummy], lr=lr)

    def project(self, max_norm: torch.Tensor) -> None:
        """No-op."""


def _check_repr_layer(call: EditCall) -> None:
    """Raise unless the representation layer is inside the model."""
    n_layers = call.spec.n_layers(call.model.config)
    if not 0 <= call.hparams.repr_layer < n_layers:
        raise EditorError(
            f"repr_layer {call.hparams.repr_layer} out of range for {n_layers} layers"
        )


def _glame_one(call: EditCall, request: EditRequest) -> tuple[Delta, dict[str, Any]]:
    """Edit one request with a fresh GNN over its subgraph."""
    model, tokenizer, hparams, spec = call.model, call.tokenizer, call.hparams, call.spec
    context_templates = call.context_templates
    assert context_templates is not None  # resolved by `request_by_request`
    subgraph = request.subgraph or triple_subgraph(request)
    gnn, center = build_gnn(model, tokenizer, spec, subgraph, hparams)
    holder: dict[str, GnnDelta] = {}

    def make(m0: torch.Tensor) -> GnnDelta:
        holder["param"] = GnnDelta(
            gnn, center, hparams.clamp_norm_factor * m0.norm(), hparams.gnn_weight_decay
        )
        return holder["param"]

    choice: dict[str, Any] = {}

    def finish(result: VStarResult) -> torch.Tensor:
        param = make(result.m0)
        param.gnn.eval()
        with torch.no_grad():
            eval_delta = param()  # (d,)
        check = optimize_v(
            model, tokenizer, request.subject, request.prompt, request.target_new,
            context_templates, layer=hparams.layer, spec=spec, num_steps=1,
            kl_factor=hparams.kl_factor, weight_decay=0.0,
            essence_prompts=hparams.essence_prompts,
            delta_param=lambda _m0: FixedDelta(eval_delta),
        )  # fmt: skip
        eval_loss = check.losses[0]["total"]
        worse = eval_loss > result.best_loss + hparams.fallback_margin
        use_best = worse and eval_loss > hparams.v_loss_stop
        choice.update(eval_loss=eval_loss, best_loss=result.best_loss, used_best=use_best)
        chosen = result.best_delta if use_best else eval_delta
        assert chosen is not None
        return result.m0 + chosen

    delta, info = apply_rome(
        model,
        tokenizer,
        request,
        hparams,
        call.second_moment,
        context_templates=context_templates,
        spec=spec,
        vstar_kwargs={"weight_decay": 0.0, "delta_param": make},
        finish_v=finish,
        method_name="glame",
    )
    delta.meta["subgraph"] = {"nodes": len(subgraph.nodes), "edges": len(subgraph.edges)}
    info["glame"] = dict(choice)
    return delta, info


apply_glame_to_model = request_by_request(
    _glame_one,
    """Registry entry: GLAME for each request in turn, a fresh GNN each time.""",
    check=_check_repr_layer,
)


# Default rows per family (`editor.methods.defaults`): the released CounterFact configs
# (docs/methods/glame.md); `repr_layer` gives the features.
DEFAULTS = sourced(
    {
        "gpt2": Row((9,), 48, {}, layer_fields={"repr_layer": 5}),
        "gptj": Row(
            (5,),
            28,
            {"v_num_grad_steps": 35, "subgraph_size": 35, "gnn_dropout": 0.15},
            layer_fields={"repr_layer": 2},
        ),
        "gpt_neox": Row((15,), 44, {}, layer_fields={"repr_layer": 5}),
        **llama_like(Row((5,), 32, {"v_weight_decay": 1e-3}, layer_fields={"repr_layer": 2})),
        KNOWLEDGE: Row((0,), None, KNOWLEDGE_STEPS, layer_fields={"repr_layer": 0}),
    },
    "GLAME release CounterFact configs (Zhang et al., 2024; docs/methods/glame.md)",
)


def subgraph_problem(request: EditRequest, overrides: Mapping[str, Any]) -> str | None:
    """Return what is wrong with a request's subgraph for a job (none given, indices out of
    range), or None.

    A job carries the subgraph the graph side built (`kg.expand`, as the planner does); the
    one-edge fallback of a direct call is not the method a job asks for.
    """
    sub = request.subgraph
    if sub is None:
        return "needs a subgraph around the edit (kg.expand builds one; the planner attaches it)"
    n = len(sub.nodes)
    if n == 0 or not 0 <= sub.center < n:
        return f"subgraph center {sub.center} is not one of its {n} nodes"
    for i, e in enumerate(sub.edges):
        if not (0 <= e.head < n and 0 <= e.tail < n):
            return f"subgraph edge {i} ({e.head} -> {e.tail}) names a node outside 0..{n - 1}"
    return None


METHOD = register(
    EditMethod(
        name="glame",
        subject_positions=SUBJECT_POSITIONS,
        hparams_cls=GlameHyperParams,
        apply=apply_glame_to_model,
        needs_second_moment=True,
        description="ROME with δ produced by a relational GNN over the new object's subgraph "
        "(Zhang et al., 2024)",
        context=rome_context_templates,
        defaults=DEFAULTS,
        tiny={"layer": 0, "repr_layer": 0, "v_num_grad_steps": 12},
        check=subgraph_problem,
    )
)
