"""Plain, frozen data types passed between the graph side (`kg`) and the weight side (`editor`).

Templates use one `{}` placeholder for the subject and end where the object begins
(CounterFact style: ``"{} originates from"`` + ``" London"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ProbeKind(StrEnum):
    """What a probe checks (the kinds are listed in docs/audit.md)."""

    REWRITE = "rewrite"
    PARAPHRASE = "paraphrase"
    NEIGHBOUR = "neighbour"
    SAME_SUBJECT = "same_subject"
    MULTI_HOP = "multi_hop"
    MULTI_HOP_STEPWISE = "multi_hop_stepwise"
    REVERSE = "reverse"
    FORM_CLOZE = "form_cloze"
    FORM_QUESTION = "form_question"
    FORM_MC = "form_mc"
    FORM_TF = "form_tf"
    PREFIX_DISTRACTION = "prefix_distraction"
    FLUENCY = "fluency"


@dataclass(frozen=True)
class Probe:
    """One scored prompt: the model should continue `prompt` with `expected` (not `unexpected`).

    `rivals` are further wrong answers (multiple-choice letters, distractor subjects): the
    probability comparison then asks P(expected) > max P(unexpected, *rivals).
    `meta["role"] == "forget"` inverts success: the answer must no longer come out.
    """

    prompt: str
    expected: str
    kind: ProbeKind | str
    unexpected: str | None = None
    meta: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    rivals: tuple[str, ...] = ()


@dataclass(frozen=True)
class FactText:
    """A fact in verbal form for the model side: cloze templates with `{}` for the subject."""

    subject: str
    relation: str
    object: str
    templates: tuple[str, ...]
    question: str | None = None  # the relation's first question template, `{}` = subject

    def statement(self, template_index: int = 0) -> str:
        """Return the statement `template(subject) object` for one template."""
        return f"{self.templates[template_index].format(self.subject)} {self.object}"


@dataclass(frozen=True)
class SubgraphEdge:
    """A directed labelled edge between two node indices of a `Subgraph`."""

    head: int
    relation: str
    tail: int


@dataclass(frozen=True)
class Subgraph:
    """A labelled subgraph around an entity, as GLAME consumes it."""

    nodes: tuple[str, ...]
    edges: tuple[SubgraphEdge, ...] = ()
    center: int = 0


@dataclass(frozen=True)
class EditRequest:
    """Rewrite (subject, relation) from `target_true` to `target_new`; `prompt` holds `{}`.

    `forms`: further templates of the same fact (other cloze wordings, the question form),
    each with one `{}`, that a method with the form option optimises over besides `prompt`
    (docs/methods/rome.md); the audit keeps them out of the paraphrase probes.
    """

    subject: str
    prompt: str
    target_new: str
    target_true: str | None = None
    paraphrases: tuple[str, ...] = ()
    neighbours: tuple[Probe, ...] = ()
    subgraph: Subgraph | None = None
    relation: str | None = None
    request_id: str | None = None
    forms: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.subject or not self.subject.strip():
            raise ValueError("EditRequest.subject must be a non-empty string")
        if self.prompt.count("{}") != 1:
            raise ValueError(f"EditRequest.prompt must hold exactly one '{{}}': {self.prompt!r}")
        if not self.target_new or not self.target_new.strip():
            raise ValueError("EditRequest.target_new must be a non-empty string")
        for form in self.forms:
            if form.count("{}") != 1:
                raise ValueError(f"EditRequest.forms must each hold exactly one '{{}}': {form!r}")

    def rendered(self) -> str:
        """Return the prompt with the subject filled in."""
        return self.prompt.format(self.subject)


@dataclass(frozen=True)
class UnlearnRequest:
    """Forget a concept in every form, redirecting it to `anchor` where the method does that."""

    concept: str
    aliases: tuple[str, ...] = ()
    anchor: str | None = None
    forms: tuple[Probe, ...] = ()
    forget_texts: tuple[str, ...] = ()
    retain_texts: tuple[str, ...] = ()
    request_id: str | None = None


@dataclass(frozen=True)
class QAItem:
    """One question-answer item (TOFU) with its evaluation variants, empty where absent."""

    question: str
    answer: str
    paraphrased_answer: str = ""
    perturbed_answers: tuple[str, ...] = ()
    paraphrased_question: str = ""
