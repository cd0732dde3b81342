"""Consolidation: fold the edits into the weights by training on the graph, from the current
version (docs/methods/consolidate.md).

Locate-and-edit methods write each fact into a few rank-one slots of one or two MLPs; after
hundreds of them the slots interfere and untouched facts fade. Consolidation continues the
knowledge trainer's own recipe (`editor.knowledge.corpus.PassageSampler`: passages that state
all of one subject's facts in several templates, mixed with bare cloze lines; the causal-LM
loss over every token; AdamW, gradient norm clipped at 1) on the graph's verbalised facts,
which already hold the edited facts, from the model's current weights. So the edited facts
are learnt the way the model learnt everything else, with a replay of every untouched fact.

* Facts: the graph's facts (resource `facts`), with every request's (subject, relation) slot
  set to its `target_new` (a request whose slot the graph lacks adds a fact with the
  request's prompt and paraphrases as templates). `edit_share` of each batch's rows are bare
  statements of the requested facts, so a small edit is seen often enough among thousands
  of replayed facts.
* A user's model (not trained on the graph): the same rows, plus `corpus` texts drawn with
  probability `corpus_share` (general text that keeps its language intact).
* Full training of every parameter (`trainable="all"`) or of the MLP matrices only
  (`trainable="mlp"`), where the facts are stored (docs/methods/consolidate.md measures both).
* A checkpoint and a progress report per step. The trained weights become one dense `Delta`
  against the weights before the run, which are put back bit for bit before the delta is
  applied, so a consolidation reverts exactly like every other version.
* It can teach a name the model has never produced (a new entity): locate-and-edit methods
  only re-route to answers the model can already say. `teaches` declares that to the planner.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from contracts.types import EditRequest, FactText
from editor.arch import arch_spec
from editor.cancel import checkpoint
from editor.delta import Delta
from editor.errors import EditorError
from editor.knowledge.corpus import PassageSampler, statement
from editor.knowledge.train import clipped_step
from editor.methods.common import HParams, request_ids, request_meta
from editor.methods.registry import EditMethod, ResourceContext, register

TRAINABLE = ("all", "mlp")


@dataclass(frozen=True)
class ConsolidateHyperParams(HParams):
    """Consolidation hyper-parameters; defaults suit the knowledge presets (docs page)."""

    steps: int = 300
    lr: float = 3e-4
    batch_size: int = 32
    edit_share: float = 0.25
    statements_per_fact: int = 2
    cloze_share: float = 0.25
    max_len: int = 128
    trainable: str = "all"
    corpus: tuple[str, ...] = ()
    corpus_share: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.trainable not in TRAINABLE:
            raise EditorError(f"trainable must be one of {TRAINABLE}, not {self.trainable!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise EditorError("consolidation needs steps ≥ 1 and batch_size ≥ 1")


def edited_facts(
    facts: Sequence[FactText], requests: Sequence[EditRequest]
) -> tuple[list[FactText], list[FactText]]:
    """Return (all facts with each request's slot set to its new object, the requested facts)."""
    wanted: dict[tuple[str, str], FactText] = {}
    for r in requests:
        relation = r.relation or r.prompt
        templates = tuple(dict.fromkeys((r.prompt, *r.paraphrases)))
        wanted[(r.subject, relation)] = FactText(r.subject, relation, r.target_new, templates)
    merged = []
    for fact in facts:
        new = wanted.get((fact.subject, fact.relation))
        merged.append(fact if new is None else FactText(**{**fact.__dict__, "object": new.object}))
    have = {(f.subject, f.relation) for f in facts}
    merged += [f for key, f in wanted.items() if key not in have]
    taught = [f for f in merged if (f.subject, f.relation) in wanted]
    return merged, taught


def _trainable(model: nn.Module, which: str) -> dict[str, nn.Parameter]:
    """Return the parameters to train by name: all of them, or every layer's MLP matrices."""
    params = dict(model.named_parameters())
    if which == "all":
        return params
    spec = arch_spec(model)
    n_layers = int(model.config.num_hidden_layers)
    prefixes = [spec.mlp_name(layer) + "." for layer in range(n_layers)]
    return {n: p for n, p in params.items() if p.ndim >= 2 and n.startswith(tuple(prefixes))}


def _encode(tokenizer: Any, rows: Sequence[str], max_len: int, device: Any) -> dict:
    """Tokenise rows one by one and right-pad them; labels are -100 on padding."""
    ids = [tokenizer(r, truncation=True, max_length=max_len)["input_ids"] for r in rows]
    width = max(len(x) for x in ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(ids), width), pad, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(ids), width), dtype=torch.long)  # (B, T)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    labels = input_ids.masked_fill(mask == 0, -100)  # (B, T)
    return {
        "input_ids": input_ids.to(device),
        "attention_mask": mask.to(device),
        "labels": labels.to(device),
    }


def _rows(
    sampler: PassageSampler,
    taught: Sequence[FactText],
    hp: ConsolidateHyperParams,
    rng: random.Random,
) -> list[str]:
    """Return one batch: replayed passages and cloze lines, requested facts, corpus text."""
    rows = []
    for _ in range(hp.batch_size):
        draw = rng.random()
        if draw < hp.edit_share:
            fact = rng.choice(taught)
            rows.append(statement(rng.choice(fact.templates), fact.subject, fact.object))
        elif hp.corpus and draw < hp.edit_share + hp.corpus_share:
            rows.append(rng.choice(hp.corpus))
        else:
            rows.extend(sampler.batch(1))
    return rows


def apply_consolidation(
    model: nn.Module,
    tokenizer: Any,
    requests: Sequence[EditRequest],
    hparams: ConsolidateHyperParams,
    *,
    facts: Sequence[FactText] = (),
    on_request: Callable[[int, int], None] | None = None,
) -> tuple[list[Delta], list[dict[str, Any]]]:
    """Registry entry: train on the graph with the requests' facts; return one dense delta."""
    if not requests:
        raise EditorError("consolidation needs at least one request")
    merged, taught = edited_facts(facts, requests)
    sampler = PassageSampler(
        merged, hparams.statements_per_fact, hparams.cloze_share, seed=hparams.seed
    )
    rng = random.Random(hparams.seed)
    device = next(model.parameters()).device
    params = _trainable(model, hparams.trainable)
    originals = {n: p.detach().clone() for n, p in params.items()}  # storage orientation
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    was_training = model.training
    model.eval()  # no dropout: the run is a function of the seed
    model.requires_grad_(False)
    for p in params.values():
        p.requires_grad_(True)
    optim = torch.optim.AdamW(
        list(params.values()), lr=hparams.lr, betas=(0.9, 0.98), weight_decay=0.0
    )
    losses: list[float] = []
    ema = None
    t0 = time.perf_counter()
    try:
        for step in range(hparams.steps):
            checkpoint()
            batch = _encode(
                tokenizer, _rows(sampler, taught, hparams, rng), hparams.max_len, device
            )
            loss = model(**batch, use_cache=False).loss  # ()
            ema = clipped_step(model, optim, loss, ema)
            losses.append(float(loss.detach()))
            if on_request is not None:
                on_request(step + 1, hparams.steps)
    except BaseException:  # cancelled or failed: leave the weights as they were, bit for bit
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(originals[name])
        raise
    finally:
        optim.zero_grad(set_to_none=True)
        for name, p in model.named_parameters():
            p.requires_grad_(flags[name])
        model.train(was_training)
    diffs = {}
    with torch.no_grad():
        for name, p in params.items():
            diff = p.detach().double() - originals[name].double()  # float64, storage orientation
            p.copy_(originals[name])  # back to the exact bits before the run
            if bool(diff.any()):
                diffs[name] = diff.to(originals[name].dtype)
    seconds = time.perf_counter() - t0
    delta = Delta.from_dense(
        "consolidate",
        diffs,
        request_ids=request_ids(requests),
        meta={
            "requests": request_meta(requests),
            "hparams": {k: v for k, v in hparams.to_dict().items() if k != "corpus"},
            "n_facts": len(merged),
            "steps": len(losses),
        },
    )
    delta.apply(model)
    info = {
        "timings": {"consolidate": seconds},
        "losses": losses[:: max(1, len(losses) // 50)],
        "n_facts": len(merged),
        "n_params": sum(d.numel() for d in diffs.values()),
    }
    return [delta], [info]


def consolidation_resources(ctx: ResourceContext) -> dict[str, Any]:
    """The graph's verbalised facts: the replay and the slots the requests rewrite."""
    return {"facts": list(ctx.facts)}


METHOD = register(
    EditMethod(
        name="consolidate",
        hparams_cls=ConsolidateHyperParams,
        apply=apply_consolidation,
        description="consolidation: continue training on the graph's facts with the edits "
        "(folds earlier edits in, teaches new names)",
        batched=True,
        resources=consolidation_resources,
        tiny={"steps": 30, "lr": 3e-3, "batch_size": 8, "edit_share": 0.5},
        teaches=True,
    )
)
