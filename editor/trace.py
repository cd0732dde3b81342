"""Causal tracing (ROME §2): where in the network does the model recall a fact?

Gaussian noise corrupts the input embeddings of the subject's tokens; then the clean value of
one state (block output, MLP output or attention output) at one (layer, token) is restored in
the corrupted run, and the indirect effect P_restored(o) − P_corrupted(o) is recorded. The
effects of many facts are averaged in ROME's token buckets: first, middle and last subject
token, the first token after the subject, further tokens, and the last prompt token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from editor.arch import ArchSpec, arch_spec, get_module

KINDS = ("hidden", "mlp", "attn")
BUCKETS = (
    "first subject token",
    "middle subject tokens",
    "last subject token",
    "first subsequent token",
    "further tokens",
    "last token",
)


@dataclass
class TraceCase:
    """One fact to trace: the prompt (with the subject in it) and the expected object."""

    prompt: str
    subject: str
    target: str


@dataclass
class TraceResult:
    """Average indirect effects, per kind, as (bucket, layer) tables."""

    n_cases: int
    n_layers: int
    p_clean: float
    p_corrupt: float
    noise_std: float
    tables: dict[str, list[list[float]]] = field(default_factory=dict)

    def peak(self, kind: str) -> tuple[str, int, float]:
        """Return (bucket, layer, effect) of the strongest effect of one kind."""
        table = torch.tensor(self.tables[kind])  # (buckets, layers)
        flat = int(table.argmax())
        b, layer = divmod(flat, self.n_layers)
        return BUCKETS[b], layer, float(table[b, layer])

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        return dict(self.__dict__)


def _module_name(spec: ArchSpec, kind: str, layer: int) -> str:
    if kind == "hidden":
        return spec.layer_name(layer)
    if kind == "mlp":
        return spec.mlp_name(layer)
    if kind == "attn":
        return spec.attn_name(layer)
    raise ValueError(f"unknown trace kind {kind!r}; choose one of {KINDS}")


def _replace_output(module: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor]):
    """Register a hook that maps the module's hidden-state output through `fn`."""

    def hook(_mod: nn.Module, _args: tuple, output):
        if isinstance(output, tuple):
            return (fn(output[0]), *output[1:])
        return fn(output)

    return module.register_forward_hook(hook)


def subject_token_range(tokenizer, prompt: str, subject: str) -> tuple[list[int], int]:
    """Return (token ids, positions of the subject's tokens) for a prompt containing it."""
    start = prompt.find(subject)
    if start < 0:
        raise ValueError(f"subject {subject!r} not in prompt {prompt!r}")
    end = start + len(subject)
    enc = tokenizer(prompt, return_offsets_mapping=True)
    positions = [
        i for i, (a, b) in enumerate(enc["offset_mapping"]) if b > a and a < end and b > start
    ]
    if not positions:
        raise ValueError(f"no tokens cover subject {subject!r} in {prompt!r}")
    return enc["input_ids"], positions


def _bucket_of(pos: int, subj: list[int], last: int) -> int:
    """Return the bucket of a position; a one-token subject counts as its last token."""
    if pos == last:
        return 5
    if pos == subj[-1]:
        return 2
    if pos == subj[0]:
        return 0
    if subj[0] < pos < subj[-1]:
        return 1
    if pos == subj[-1] + 1:
        return 3
    return 4


@torch.no_grad()
def noise_std_for(model: nn.Module, tokenizer, subjects: Sequence[str]) -> float:
    """Return the std of the input embeddings of the subjects' tokens (ROME's σ before ×3)."""
    spec = arch_spec(model)
    emb = get_module(model, spec.embed)
    ids = sorted({i for s in subjects for i in tokenizer(s, add_special_tokens=False)["input_ids"]})
    vectors = emb(torch.tensor(ids, device=emb.weight.device))  # (n, d)
    return float(vectors.float().std())


@torch.no_grad()
def trace_case(
    model: nn.Module,
    tokenizer,
    case: TraceCase,
    noise: float,
    samples: int = 10,
    kinds: Sequence[str] = KINDS,
    seed: int = 0,
) -> dict:
    """Trace one fact; return clean/corrupt probabilities and per-kind (token, layer) effects."""
    spec = arch_spec(model)
    n_layers = spec.n_layers(model.config)
    device = next(model.parameters()).device
    ids, subj = subject_token_range(tokenizer, case.prompt, case.subject)
    target = tokenizer(" " + case.target.strip(), add_special_tokens=False)["input_ids"][0]
    inputs = torch.tensor([ids] * (samples + 1), device=device)  # (S+1, T)
    mask = torch.ones_like(inputs)  # (S+1, T): no padding
    gen = torch.Generator().manual_seed(seed)
    d = spec.hidden_size(model.config)
    eps = torch.randn(samples, len(subj), d, generator=gen) * noise  # (S, n_subj, d)
    eps = eps.to(device)
    subj_t = torch.tensor(subj, device=device)

    def corrupt(h: torch.Tensor) -> torch.Tensor:
        h = h.clone()  # (S+1, T, d)
        h[1:, subj_t] += eps.to(h.dtype)
        return h

    def prob(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, -1].float().softmax(-1)[:, target]  # (S+1,)

    emb = get_module(model, spec.embed)
    clean: dict[tuple[str, int], torch.Tensor] = {}
    handles = [_replace_output(emb, corrupt)]
    for kind in kinds:
        for layer in range(n_layers):
            mod = get_module(model, _module_name(spec, kind, layer))

            def keep(h: torch.Tensor, key=(kind, layer)) -> torch.Tensor:
                clean[key] = h[0].detach().clone()  # (T, d)
                return h

            handles.append(_replace_output(mod, keep))
    try:
        base = prob(model(input_ids=inputs, attention_mask=mask).logits)
    finally:
        for h in handles:
            h.remove()
    p_clean, p_corrupt = float(base[0]), float(base[1:].mean())

    effects = {k: torch.zeros(len(ids), n_layers) for k in kinds}  # (T, L) each
    for kind in kinds:
        for layer in range(n_layers):
            mod = get_module(model, _module_name(spec, kind, layer))
            for pos in range(len(ids)):

                def restore(h: torch.Tensor, key=(kind, layer), pos=pos) -> torch.Tensor:
                    h = h.clone()
                    h[1:, pos] = clean[key][pos]
                    return h

                hs = [_replace_output(emb, corrupt), _replace_output(mod, restore)]
                try:
                    p = prob(model(input_ids=inputs, attention_mask=mask).logits)
                finally:
                    for h in hs:
                        h.remove()
                effects[kind][pos, layer] = float(p[1:].mean()) - p_corrupt
    return {
        "p_clean": p_clean,
        "p_corrupt": p_corrupt,
        "subject_positions": subj,
        "n_tokens": len(ids),
        "effects": effects,
    }


def causal_trace(
    model: nn.Module,
    tokenizer,
    cases: Sequence[TraceCase],
    samples: int = 10,
    noise_factor: float = 3.0,
    kinds: Sequence[str] = KINDS,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> TraceResult:
    """Trace many facts and average the indirect effects in ROME's token buckets."""
    if not cases:
        raise ValueError("causal_trace needs at least one case")
    model.eval()
    spec = arch_spec(model)
    n_layers = spec.n_layers(model.config)
    noise = noise_factor * noise_std_for(model, tokenizer, [c.subject for c in cases])
    sums = {k: torch.zeros(len(BUCKETS), n_layers) for k in kinds}  # (buckets, L)
    counts = {k: torch.zeros(len(BUCKETS), 1) for k in kinds}
    p_clean = p_corrupt = 0.0
    for i, case in enumerate(cases):
        out = trace_case(model, tokenizer, case, noise, samples, kinds, seed + i)
        p_clean += out["p_clean"]
        p_corrupt += out["p_corrupt"]
        subj, last = out["subject_positions"], out["n_tokens"] - 1
        for kind in kinds:
            seen = torch.zeros(len(BUCKETS), 1)
            per_bucket = torch.zeros(len(BUCKETS), n_layers)
            for pos in range(1, out["n_tokens"]):  # position 0 is the BOS token
                b = _bucket_of(pos, subj, last)
                per_bucket[b] += out["effects"][kind][pos]
                seen[b] += 1
            mask = seen.squeeze(1) > 0
            sums[kind][mask] += per_bucket[mask] / seen[mask]
            counts[kind][mask] += 1
        if progress is not None:
            progress(i + 1, len(cases))
    tables = {k: (sums[k] / counts[k].clamp(min=1)).tolist() for k in kinds}
    return TraceResult(
        n_cases=len(cases),
        n_layers=n_layers,
        p_clean=p_clean / len(cases),
        p_corrupt=p_corrupt / len(cases),
        noise_std=noise,
        tables=tables,
    )


def format_table(result: TraceResult, kind: str) -> str:
    """Return a markdown table of one kind's effects (rows: buckets, columns: layers)."""
    head = "| token \\ layer | " + " | ".join(str(i) for i in range(result.n_layers)) + " |"
    sep = "|---|" + "---|" * result.n_layers
    rows = [
        f"| {bucket} | " + " | ".join(f"{v:.3f}" for v in values) + " |"
        for bucket, values in zip(BUCKETS, result.tables[kind], strict=True)
    ]
    return "\n".join([head, sep, *rows])


def plot_trace(result: TraceResult, path: str) -> None:
    """Save a heat map per kind (tokens × layers) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(result.tables)
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        im = ax.imshow(result.tables[kind], cmap="Purples", aspect="auto", vmin=0)
        ax.set_yticks(range(len(BUCKETS)), BUCKETS, fontsize=7)
        ax.set_xticks(range(result.n_layers))
        ax.set_xlabel("layer")
        ax.set_title(f"restore {kind}", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(
        f"causal trace, {result.n_cases} facts: p clean {result.p_clean:.2f}, "
        f"corrupted {result.p_corrupt:.2f}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
