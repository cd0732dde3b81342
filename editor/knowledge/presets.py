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


PRESETS: dict[str, KnowledgePreset] = {
    "tiny": KnowledgePreset(
        name="tiny",
        n_layer=4,
        n_embd=64,
        n_head=2,
        n_inner=256,
        vocab_size=1024,
        n_positions=128,
        steps=1500,
        batch_size=32,
        lr=3e-3,
        warmup_steps=60,
        edit_layer=0,
    ),
    "small": KnowledgePreset(
        name="small",
        n_layer=6,
        n_embd=128,
        n_head=4,
        n_inner=512,
        vocab_size=4096,
        n_positions=128,
        steps=2500,
        batch_size=64,
        lr=3e-3,
        warmup_steps=150,
        edit_layer=0,
    ),
    "base": KnowledgePreset(
        name="base",
        n_layer=12,
        n_embd=256,
        n_head=8,
        n_inner=1024,
        vocab_size=8192,
        n_positions=128,
        steps=12000,
        batch_size=128,
        lr=1e-3,
        warmup_steps=400,
        edit_layer=2,
    ),
    # `tiny` and `small` trained on facts in every form too (form-independent unlearning)
    "tiny-forms": KnowledgePreset(
        name="tiny-forms",
        n_layer=4,
        n_embd=64,
        n_head=2,
        n_inner=256,
        vocab_size=1024,
        n_positions=128,
        steps=3000,
        batch_size=32,
        lr=3e-3,
        warmup_steps=100,
        edit_layer=0,
        form_share=0.35,
    ),
    "small-forms": KnowledgePreset(
        name="small-forms",
        n_layer=6,
        n_embd=128,
        n_head=4,
        n_inner=512,
        vocab_size=4096,
        n_positions=128,
        steps=3000,
        batch_size=64,
        lr=3e-3,
        warmup_steps=150,
        edit_layer=0,
        form_share=0.35,
    ),
}

# `small` with a 4× wider MLP (2,048 key dimensions per layer, more than the 1,285 subjects
# of the demo graph): the capacity check of sequential AlphaEdit (docs/results/sequential-stress.md)
PRESETS["small-wide"] = replace(PRESETS["small"], name="small-wide", n_inner=2048)

# Question-answer presets (TOFU): trained by `editor.knowledge.qa` on "Question: …\nAnswer: …"
# rows, the loss on the answer tokens only. `tofu-qa` is sized to train on TOFU's 4,000
# sentence answers (about 9 epochs) on two shared CPU cores; `tofu-qa-tiny` is for tests on slices.
QA_PRESETS: dict[str, KnowledgePreset] = {
    "tofu-qa": KnowledgePreset(
        name="tofu-qa",
        n_layer=4,
        n_embd=128,
        n_head=4,
        n_inner=512,
        vocab_size=2048,
        n_positions=512,
        steps=1200,
        batch_size=32,
        lr=3e-3,
        warmup_steps=100,
    ),
    # about 2 epochs: the earlier TOFU benchmark scale (bench/results/tofu-qa-small.json)
    "tofu-qa-small": KnowledgePreset(
        name="tofu-qa-small",
        n_layer=2,
        n_embd=96,
        n_head=4,
        n_inner=384,
        vocab_size=1024,
        n_positions=512,
        steps=500,
        batch_size=16,
        lr=3e-3,
        warmup_steps=30,
    ),
    "tofu-qa-tiny": KnowledgePreset(
        name="tofu-qa-tiny",
        n_layer=2,
        n_embd=64,
        n_head=2,
        n_inner=256,
        vocab_size=512,
        n_positions=512,
        steps=150,
        batch_size=16,
        lr=3e-3,
        warmup_steps=10,
    ),
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
