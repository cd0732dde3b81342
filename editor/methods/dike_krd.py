"""DiKE's knowledge-representation disentangler (KRD), trained once per model and layer
(docs/methods/dike.md; no public code, the design follows the paper's equations).

From the LLM at layer l: h_s = block output at the subject's last token of the prompt
p(s, r), h_r = block output at the prompt's last token. Then

    z_r = GELU(W₁ h_s + W₂ h_r)    the part of h_s related to the fact (s, r, ·)
    z_u = GELU(W₃ h_s + W₄ h_r)    the part unrelated to it
    ĥ_s = W₅ z_r + W₆ z_u          recomposition

trained on same-subject fact pairs (s, r, o), (s, r', o') of the graph with
L = L_ctr + α·L_con + β·L_recon:

* L_ctr (InfoNCE, temperature τ, cosine): each of z_r, z_u is pulled to its own h_s against
  the other in-batch subjects' h_s and its sibling component as negatives;
* L_con (knowledge constraint): with h_s := z_r in the forward pass of p(s, r) the model must
  still say o; with h_s := z_u in p(s, r') it must say o' (mean per-token NLL);
* L_recon = ‖h_s − ĥ_s‖² / mean‖h_s‖² (scale-free).

Decisions (the paper leaves these open): latent width = d (z lives in the hidden space, so
h_s := z and the cosine against h_s are well defined); no biases (the paper's equations
have none); α = β = 1, τ = 0.1; the LLM is frozen. The trained module is cached on disk,
keyed by the model, layer, training facts and settings.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from contracts.types import FactText
from editor.arch import ArchSpec, arch_spec, get_module
from editor.cancel import checkpoint
from editor.errors import EditorError
from editor.hooks import add_to_output, capture_output
from editor.tokens import (
    encode_prompt_targets,
    subject_last_token_index,
    target_logprobs_from_logits,
)


@dataclass(frozen=True)
class KrdConfig:
    """Training settings of the disentangler."""

    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    tau: float = 0.1
    alpha: float = 1.0
    beta: float = 1.0
    latent: int | None = None  # None: the hidden size d
    seed: int = 0


class Disentangler(nn.Module):
    """z_r, z_u = GELU(W₁h_s + W₂h_r), GELU(W₃h_s + W₄h_r); ĥ_s = W₅z_r + W₆z_u."""

    def __init__(self, d: int, latent: int | None = None, layer: int = 0) -> None:
        super().__init__()
        p = latent or d
        self.layer = layer
        self.W1, self.W2, self.W3, self.W4 = (nn.Linear(d, p, bias=False) for _ in range(4))
        self.W5, self.W6 = (nn.Linear(p, d, bias=False) for _ in range(2))

    def forward(self, h_s: torch.Tensor, h_r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (z_r, z_u), each (N, p), from h_s, h_r (N, d)."""
        z_r = F.gelu(self.W1(h_s) + self.W2(h_r))  # (N, p)
        z_u = F.gelu(self.W3(h_s) + self.W4(h_r))  # (N, p)
        return z_r, z_u

    def recompose(self, z_r: torch.Tensor, z_u: torch.Tensor) -> torch.Tensor:
        """Return ĥ_s = W₅z_r + W₆z_u (N, d)."""
        return self.W5(z_r) + self.W6(z_u)


def same_subject_pairs(facts: Sequence[FactText]) -> list[tuple[int, int]]:
    """Return index pairs (i, j) of facts with the same subject and different relations."""
    by_subject: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(facts):
        by_subject[f.subject].append(i)
    pairs = []
    for idx in by_subject.values():
        for i in idx:
            for j in idx:
                if i != j and facts[i].relation != facts[j].relation:
                    pairs.append((i, j))
    return pairs


@torch.no_grad()
def fact_states(
    model: nn.Module, tokenizer: Any, spec: ArchSpec, layer: int, facts: Sequence[FactText]
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Return h_s (N, d), h_r (N, d) at layer `layer` and subject columns, first templates."""
    device = next(model.parameters()).device
    module = get_module(model, spec.layer_name(layer))
    h_s, h_r, cols = [], [], []
    for start in range(0, len(facts), 256):
        part = facts[start : start + 256]
        texts = [f.templates[0].format(f.subject) for f in part]
        c = [subject_last_token_index(tokenizer, f.templates[0], f.subject) for f in part]
        batch = encode_prompt_targets(tokenizer, texts, [None] * len(texts)).to(device)
        with capture_output(module, stop=True) as cap:
            model(**batch.model_inputs(), use_cache=False)
        assert cap.value is not None
        rows = torch.arange(len(part), device=device)  # (B,)
        h_s.append(cap.value[rows, torch.tensor(c, device=device)].float())
        h_r.append(cap.value[rows, batch.prompt_lengths - 1].float())
        cols += c
    return torch.cat(h_s), torch.cat(h_r), cols  # (N, d), (N, d)


def _info_nce(anchor: torch.Tensor, sibling: torch.Tensor, h_s: torch.Tensor, tau: float):
    """InfoNCE of anchors (B, d) against [h_s of the batch, own sibling]; positive h_s[i]."""
    a = F.normalize(anchor, dim=-1)  # (B, d)
    cands = F.normalize(h_s, dim=-1)  # (B, d)
    sims = a @ cands.T  # (B, B)
    own = (a * F.normalize(sibling, dim=-1)).sum(-1, keepdim=True)  # (B, 1)
    logits = torch.cat([sims, own], dim=1) / tau  # (B, B + 1)
    return F.cross_entropy(logits, torch.arange(a.shape[0], device=a.device))


def _substituted_nll(
    model: nn.Module,
    tokenizer: Any,
    module: nn.Module,
    facts: Sequence[FactText],
    cols: Sequence[int],
    h_s: torch.Tensor,
    z: torch.Tensor,
) -> torch.Tensor:
    """Mean per-token NLL of each fact's object with the subject state replaced by z (B, d)."""
    device = z.device
    texts = [f.templates[0].format(f.subject) for f in facts]
    batch = encode_prompt_targets(tokenizer, texts, [f.object for f in facts]).to(device)
    rows = list(range(len(facts)))
    with add_to_output(module, rows, list(cols), z - h_s):  # h_s := z at the subject token
        logits = model(**batch.model_inputs(), use_cache=False).logits  # (B, L, V)
    token_lp = target_logprobs_from_logits(logits, batch)  # (B, T)
    return (-token_lp.sum(1) / batch.target_mask.sum(1).clamp(min=1)).mean()


def krd_key(model_key: str, layer: int, facts: Sequence[FactText], config: KrdConfig) -> str:
    """Return the cache key of a disentangler."""
    h = hashlib.sha256(json.dumps([model_key, layer, asdict(config)]).encode())
    for f in facts:
        h.update(json.dumps([f.subject, f.relation, f.object, f.templates[0]]).encode())
    return h.hexdigest()[:24]


def train_krd(
    model: nn.Module,
    tokenizer: Any,
    facts: Sequence[FactText],
    layer: int,
    config: KrdConfig = KrdConfig(),
    spec: ArchSpec | None = None,
) -> tuple[Disentangler, list[dict[str, float]]]:
    """Train the disentangler on same-subject fact pairs; return it and the loss history."""
    spec = spec or arch_spec(model)
    pairs = same_subject_pairs(facts)
    if not pairs:
        raise EditorError("DiKE needs subjects with facts of at least two relations")
    device = next(model.parameters()).device
    H_s, H_r, cols = fact_states(model, tokenizer, spec, layer, facts)  # (N, d) each
    scale = H_s.pow(2).sum(-1).mean()  # ()
    torch.manual_seed(config.seed)
    krd = Disentangler(H_s.shape[1], config.latent, layer).to(device)
    opt = torch.optim.Adam(krd.parameters(), lr=config.lr)
    module = get_module(model, spec.layer_name(layer))
    rng = random.Random(config.seed)
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    was_training = model.training
    model.eval()
    model.requires_grad_(False)
    history: list[dict[str, float]] = []
    try:
        for _ in range(config.steps):
            checkpoint()
            chosen = rng.sample(pairs, min(config.batch_size, len(pairs)))
            i = torch.tensor([a for a, _ in chosen], device=device)  # (B,)
            j = [b for _, b in chosen]
            h_s, h_r = H_s[i], H_r[i]  # (B, d)
            z_r, z_u = krd(h_s, h_r)  # (B, p)
            recon = (krd.recompose(z_r, z_u) - h_s).pow(2).sum(-1).mean() / scale
            ctr = (_info_nce(z_r, z_u, h_s, config.tau) + _info_nce(z_u, z_r, h_s, config.tau)) / 2
            con = _substituted_nll(
                model, tokenizer, module, [facts[a] for a, _ in chosen],
                [cols[a] for a, _ in chosen], h_s, z_r,
            ) + _substituted_nll(
                model, tokenizer, module, [facts[b] for b in j], [cols[b] for b in j],
                H_s[torch.tensor(j, device=device)], z_u,
            )  # fmt: skip
            loss = ctr + config.alpha * con + config.beta * recon
            opt.zero_grad()
            loss.backward()
            opt.step()
            terms = {"ctr": ctr, "con": con, "recon": recon, "total": loss}
            history.append({k: float(v.detach()) for k, v in terms.items()})
    finally:
        for name, p in model.named_parameters():
            p.requires_grad_(flags[name])
        model.train(was_training)
    krd.eval().requires_grad_(False)
    return krd, history


def load_or_train_krd(
    model: nn.Module,
    tokenizer: Any,
    facts: Sequence[FactText],
    layer: int,
    model_key: str,
    config: KrdConfig = KrdConfig(),
    cache_dir: str | Path | None = None,
) -> Disentangler:
    """Return the cached disentangler for (model, layer, facts, config), training it if absent."""
    key = krd_key(model_key, layer, facts, config)
    path = Path(cache_dir) / f"krd-{key}.safetensors" if cache_dir is not None else None
    device = next(model.parameters()).device
    d = int(model.config.hidden_size)
    if path is not None and path.is_file():
        krd = Disentangler(d, config.latent, layer)
        krd.load_state_dict(load_file(str(path)))
        return krd.to(device).eval().requires_grad_(False)
    krd, history = train_krd(model, tokenizer, facts, layer, config)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in krd.state_dict().items()}
        meta = {"history_last": json.dumps(history[-1] if history else {})}
        save_file(tensors, str(path), metadata=meta)
    return krd
