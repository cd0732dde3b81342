"""Presets of the knowledge model: architecture, tokenizer and training schedule per size."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class KnowledgePreset:
    """Everything that fixes a knowledge model besides its facts and seed."""

    name: str
    n_layer: int
    n_embd: int
    n_head: int
    n_inner: int
    vocab_size: int
    n_positions: int
    steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    weight_decay: float = 0.0
    min_lr_ratio: float = 0.1
    # how many statements of each fact a passage holds (each with its own template)
    statements_per_fact: int = 2
    # share of training rows that are a single bare cloze line instead of a passage
    cloze_share: float = 0.5
    # templates per relation the trainer uses (the relation's first ones: the case prompts)
    max_templates: int = 16
    # the MLP layer ROME edits, chosen from the causal trace (docs/knowledge-model.md)
    edit_layer: int = 0
    # share of training rows asking one fact in another form (question, multiple choice,
    # true/false, spelled out; `contracts.forms`), so the model answers in every form
    form_share: float = 0.0

    def to_dict(self) -> dict:
        """Return the preset as a plain dict (stored in the model directory).

        Fields added later are left out at their defaults, so the hash of an existing preset
        (and the models cached under it) stays the same.
        """
        out = asdict(self)
        if out["form_share"] == 0.0:
            del out["form_share"]
        return out


def _gpt2_sized(
    name: str,
    n_layer: int,
    n_embd: int,
    n_head: int,
    vocab_size: int,
    n_positions: int,
    steps: int,
    batch_size: int,
    warmup_steps: int,
    lr: float = 3e-3,
    edit_layer: int = 0,
) -> KnowledgePreset:
    """Return a preset whose MLP is 4× the embedding width, as in GPT-2."""
    return KnowledgePreset(
        name=name, n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_inner=4 * n_embd,
        vocab_size=vocab_size, n_positions=n_positions, steps=steps, batch_size=batch_size,
        lr=lr, warmup_steps=warmup_steps, edit_layer=edit_layer,
    )  # fmt: skip


# name, n_layer, n_embd, n_head, vocab_size, n_positions, steps, batch_size, warmup_steps
PRESETS: dict[str, KnowledgePreset] = {
    "tiny": _gpt2_sized("tiny", 4, 64, 2, 1024, 128, 1500, 32, 60),
    "small": _gpt2_sized("small", 6, 128, 4, 4096, 128, 2500, 64, 150),
    "base": _gpt2_sized("base", 12, 256, 8, 8192, 128, 12000, 128, 400, lr=1e-3, edit_layer=2),
}
# `tiny` and `small` trained on facts in every form too (form-independent unlearning)
PRESETS["tiny-forms"] = replace(
    PRESETS["tiny"], name="tiny-forms", steps=3000, warmup_steps=100, form_share=0.35
)
PRESETS["small-forms"] = replace(PRESETS["small"], name="small-forms", steps=3000, form_share=0.35)

# `small` with a 4× wider MLP (2,048 key dimensions per layer, more than the 1,285 subjects
# of the demo graph): the capacity check of sequential AlphaEdit (docs/results/sequential-stress.md)
PRESETS["small-wide"] = replace(PRESETS["small"], name="small-wide", n_inner=2048)

# Question-answer presets (TOFU): trained by `editor.knowledge.qa` on "Question: …\nAnswer: …"
# rows, the loss on the answer tokens only. `tofu-qa` is sized to train on TOFU's 4,000
# sentence answers (about 9 epochs) on two shared CPU cores; `tofu-qa-tiny` is for tests on
# slices; `tofu-qa-small` (about 2 epochs) is the earlier TOFU benchmark scale
# (bench/results/tofu-qa-small.json).
QA_PRESETS: dict[str, KnowledgePreset] = {
    "tofu-qa": _gpt2_sized("tofu-qa", 4, 128, 4, 2048, 512, 1200, 32, 100),
    "tofu-qa-small": _gpt2_sized("tofu-qa-small", 2, 96, 4, 1024, 512, 500, 16, 30),
    "tofu-qa-tiny": _gpt2_sized("tofu-qa-tiny", 2, 64, 2, 512, 512, 150, 16, 10),
}


def get_qa_preset(name: str) -> KnowledgePreset:
    """Return a question-answer preset by name, with a clear error for an unknown one."""
    try:
        return QA_PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown QA preset {name!r}; choose one of {sorted(QA_PRESETS)}"
        ) from None


DEFAULT_PRESET = "small"

# Minutes `kgedit train-model` takes per preset on two shared CPU cores, as measured (small: the
# demo graph, docs/results/demo.md; tiny: the tests' graph); the progress bar shows the rest.
TRAINING_MINUTES: dict[str, tuple[int, int]] = {"tiny": (1, 2), "small": (6, 9)}


def training_time(name: str) -> str:
    """Return how long training preset `name` takes, in words, for the command line."""
    if name not in TRAINING_MINUTES:
        return "no measured time (the bar shows the time left once it runs)"
    low, high = TRAINING_MINUTES[name]
    return f"about {low}-{high} minutes on two CPU cores"


def get_preset(name: str) -> KnowledgePreset:
    """Return a preset by name, with a clear error for an unknown one."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
