"""The two-layer relational graph network GLAME optimises in place of ROME's free δ.

Layer t (width d):
    h_v ← Dropout(RReLU( (1/deg v) Σ_{(u, r) → v} (h_u + e_r) W_nb + h_v W_self ))
over the in-edges of v, self-loop included (deg counts it). Messages flow from an edge's
tail (object) to its head (subject). e_r are fixed relation features; a self-loop carries a
zero relation vector (the released code gives it the first relation's vector by accident).
Weights are Xavier-uniform with the ReLU gain, drawn from a seeded generator so that every
edit starts from the same fresh network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RelationalLayer(nn.Module):
    """One message-passing layer with neighbour and self weights."""

    def __init__(self, d: int, dropout: float, generator: torch.Generator) -> None:
        super().__init__()
        gain = nn.init.calculate_gain("relu")
        self.W_nb = nn.Parameter(torch.empty(d, d))  # (d, d)
        self.W_self = nn.Parameter(torch.empty(d, d))  # (d, d)
        bound = gain * (6.0 / (2 * d)) ** 0.5  # Xavier-uniform
        with torch.no_grad():
            for w in (self.W_nb, self.W_self):
                w.uniform_(-bound, bound, generator=generator)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        h: torch.Tensor,
        rel: torch.Tensor,
        src: torch.Tensor,
        dst: torch.Tensor,
        etype: torch.Tensor,
    ) -> torch.Tensor:
        """Return the next node states (N, d) from h (N, d), relation features (R, d), edges."""
        msg = (h[src] + rel[etype]) @ self.W_nb  # (E, d)
        agg = torch.zeros_like(h).index_add(0, dst, msg)  # (N, d)
        deg = torch.zeros(h.shape[0], device=h.device).index_add(
            0, dst, torch.ones_like(dst, dtype=h.dtype)
        )  # (N,)
        out = agg / deg.clamp(min=1).unsqueeze(1) + h @ self.W_self  # (N, d)
        return self.dropout(F.rrelu(out, training=self.training))


class RelationalGNN(nn.Module):
    """A stack of relational layers over one fixed graph; returns one node's final state."""

    def __init__(
        self,
        node_features: torch.Tensor,
        relation_features: torch.Tensor,
        edges: list[tuple[int, int, int]],
        *,
        layers: int = 2,
        dropout: float = 0.3,
        seed: int = 0,
    ) -> None:
        super().__init__()
        n, d = node_features.shape
        device = node_features.device
        gen = torch.Generator().manual_seed(seed)
        self.layers = nn.ModuleList(RelationalLayer(d, dropout, gen) for _ in range(layers))
        self.to(device)
        self.register_buffer("x", node_features.detach().float())  # (N, d)
        zero = torch.zeros(1, d, device=device)  # (1, d) the self-loop relation
        self.register_buffer("rel", torch.cat([zero, relation_features.detach().float()]))
        # edges (head, relation index, tail): message tail → head; then the self-loops
        src = [t for _, _, t in edges] + list(range(n))
        dst = [h for h, _, _ in edges] + list(range(n))
        etype = [r + 1 for _, r, _ in edges] + [0] * n
        self.register_buffer("src", torch.tensor(src, dtype=torch.long, device=device))
        self.register_buffer("dst", torch.tensor(dst, dtype=torch.long, device=device))
        self.register_buffer("etype", torch.tensor(etype, dtype=torch.long, device=device))

    def forward(self) -> torch.Tensor:
        """Return every node's final state (N, d)."""
        h = self.x
        for layer in self.layers:
            h = layer(h, self.rel, self.src, self.dst, self.etype)
        return h
