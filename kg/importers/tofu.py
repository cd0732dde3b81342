"""Read the TOFU benchmark (Maini et al., 2024) from its JSON Lines files, checked line by line.

`../shared/data/tofu/` holds `full` (200 fictitious authors × 20 QA), the forget splits
`forget01/05/10` (the last 2/10/20 authors), their complements `retain99/95/90`, the
`*_perturbed` evaluation sets (paraphrased and perturbed answers for the truth ratio), and
`real_authors` / `world_facts` with their perturbed sets (model utility).

Checks: every line is a JSON object with non-empty string `question` and `answer`; perturbed
rows also carry `perturbed_answer` (a non-empty list of strings) and, for the author splits,
`paraphrased_answer`. Forget and retain splits must partition `full`. A bad line raises
`ImportFormatError` naming the file and line; nothing is returned half-read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from contracts.types import QAItem
from kg.errors import ImportFormatError, ValidationError

SPLITS = ("full", "forget01", "forget05", "forget10", "retain99", "retain95", "retain90")
EXTRA = ("real_authors", "world_facts")
PAIRS = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}
QA_PER_AUTHOR = 20
MAX_FIELD = 10_000


@dataclass
class TofuData:
    """Every split by name, as lists of items in file order."""

    splits: dict[str, list[QAItem]] = field(default_factory=dict)

    def pairs(self, split: str) -> list[tuple[str, str]]:
        """Return (question, answer) pairs of one split."""
        return [(i.question, i.answer) for i in self.split(split)]

    def split(self, name: str) -> list[QAItem]:
        """Return one split; a clear error for an unknown name."""
        if name not in self.splits:
            raise ValidationError(f"unknown TOFU split {name!r}; have {sorted(self.splits)}")
        return self.splits[name]


def _text(obj: dict, key: str, path: Path, line_no: int, required: bool = True) -> str:
    value = obj.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise ImportFormatError(line_no, f"{path.name}: {key!r} must be a non-empty string")
    if len(value) > MAX_FIELD:
        raise ImportFormatError(line_no, f"{path.name}: {key!r} is over {MAX_FIELD} characters")
    return value


def read_split(path: Path, perturbed: bool = False, paraphrased: bool = False) -> list[QAItem]:
    """Read one JSON Lines file of TOFU items."""
    if not path.is_file():
        raise ValidationError(f"TOFU file not found: {path}")
    items = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ImportFormatError(line_no, f"{path.name}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise ImportFormatError(line_no, f"{path.name}: not a JSON object")
            pert: tuple[str, ...] = ()
            if perturbed:
                raw = obj.get("perturbed_answer")
                if not isinstance(raw, list) or not raw or not all(isinstance(x, str) for x in raw):
                    raise ImportFormatError(
                        line_no, f"{path.name}: 'perturbed_answer' must be a list of strings"
                    )
                pert = tuple(raw)
            items.append(
                QAItem(
                    question=_text(obj, "question", path, line_no),
                    answer=_text(obj, "answer", path, line_no),
                    paraphrased_answer=_text(
                        obj, "paraphrased_answer", path, line_no, required=paraphrased
                    ),
                    perturbed_answers=pert,
                    paraphrased_question=_text(
                        obj, "paraphrased_question", path, line_no, required=False
                    ),
                )
            )
    if not items:
        raise ValidationError(f"TOFU file {path} holds no items")
    return items


def load_tofu(directory: str | Path) -> TofuData:
    """Read every TOFU split from `directory` and check that the splits fit together."""
    root = Path(directory)
    data = TofuData()
    for name in SPLITS + EXTRA:
        data.splits[name] = read_split(root / f"{name}.json")
    for name in ("forget01", "forget05", "forget10", "retain"):
        data.splits[f"{name}_perturbed"] = read_split(
            root / f"{name}_perturbed.json", perturbed=True, paraphrased=True
        )
    for name in EXTRA:
        data.splits[f"{name}_perturbed"] = read_split(root / f"{name}_perturbed.json", True)
    full = [(i.question, i.answer) for i in data.splits["full"]]
    for forget, retain in PAIRS.items():
        joined = data.pairs(retain) + data.pairs(forget)
        if sorted(joined) != sorted(full):
            raise ValidationError(f"TOFU {forget} and {retain} do not partition full")
    return data


def authors(items: list[QAItem]) -> list[list[QAItem]]:
    """Group a split's items by author (20 consecutive QA each, TOFU's layout)."""
    if len(items) % QA_PER_AUTHOR:
        raise ValidationError(f"{len(items)} items are not whole authors of {QA_PER_AUTHOR}")
    return [items[i : i + QA_PER_AUTHOR] for i in range(0, len(items), QA_PER_AUTHOR)]
