"""Edit and unlearn requests as JSON, and the JSONL upload format with per-line errors.

One JSONL line is one request: `{"type": "edit", ...EditRequestIn}` or
`{"type": "unlearn", ...UnlearnRequestIn}`. A bad line fails the whole upload with an error
naming its line number; nothing from the upload is queued.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter, ValidationError, field_validator

from api.errors import ApiError
from api.schemas.common import Strict
from contracts.types import EditRequest, Probe, ProbeKind, Subgraph, SubgraphEdge, UnlearnRequest

Text = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]
"""A non-blank text of at most 2,000 characters."""


class ProbeIn(Strict):
    """A probe the job's audit scores."""

    prompt: Text
    expected: Text
    kind: ProbeKind
    unexpected: str | None = Field(None, max_length=2000)
    meta: dict[Annotated[str, Field(max_length=100)], Annotated[str, Field(max_length=2000)]] = (
        Field(default_factory=dict, max_length=20)
    )
    rivals: list[Text] = Field(default_factory=list, max_length=50)

    def to_probe(self) -> Probe:
        """Return the contract type."""
        return Probe(
            self.prompt, self.expected, self.kind, self.unexpected, self.meta, tuple(self.rivals)
        )


class SubgraphEdgeIn(Strict):
    """One edge of a request's subgraph: node indices and a relation label."""

    head: int = Field(..., ge=0, le=10_000)
    relation: Text
    tail: int = Field(..., ge=0, le=10_000)


class SubgraphIn(Strict):
    """The subgraph around an edit's subject (GLAME): node names, edges, the centre's index."""

    nodes: list[Text] = Field(..., max_length=10_000)
    edges: list[SubgraphEdgeIn] = Field(default_factory=list, max_length=100_000)
    center: int = Field(0, ge=0, le=10_000)

    def to_subgraph(self) -> Subgraph:
        """Return the contract type."""
        edges = tuple(SubgraphEdge(e.head, e.relation, e.tail) for e in self.edges)
        return Subgraph(tuple(self.nodes), edges, self.center)


class EditRequestIn(Strict):
    """Rewrite one fact: `prompt` holds `{}` where the subject goes."""

    type: Literal["edit"] = "edit"
    subject: Text
    prompt: Text
    target_new: Text
    target_true: str | None = Field(None, max_length=2000)
    relation: str | None = Field(None, max_length=512)
    paraphrases: list[Text] = Field(default_factory=list, max_length=50)
    neighbours: list[ProbeIn] = Field(default_factory=list, max_length=100)
    subgraph: SubgraphIn | None = None
    request_id: str | None = Field(None, max_length=200)
    forms: list[Text] = Field(default_factory=list, max_length=50)

    @field_validator("prompt")
    @classmethod
    def _one_slot(cls, value: str) -> str:
        if value.count("{}") != 1:
            raise ValueError("prompt must hold exactly one '{}' for the subject")
        return value

    @field_validator("forms")
    @classmethod
    def _forms_one_slot(cls, value: list[str]) -> list[str]:
        for form in value:
            if form.count("{}") != 1:
                raise ValueError(f"every form must hold exactly one '{{}}': {form!r}")
        return value

    def to_request(self) -> EditRequest:
        """Return the contract type."""
        return EditRequest(
            subject=self.subject,
            prompt=self.prompt,
            target_new=self.target_new,
            target_true=self.target_true,
            paraphrases=tuple(self.paraphrases),
            neighbours=tuple(p.to_probe() for p in self.neighbours),
            subgraph=self.subgraph.to_subgraph() if self.subgraph else None,
            relation=self.relation,
            request_id=self.request_id,
            forms=tuple(self.forms),
        )


class UnlearnRequestIn(Strict):
    """Forget a concept in every form."""

    type: Literal["unlearn"] = "unlearn"
    concept: Text
    aliases: list[Text] = Field(default_factory=list, max_length=100)
    anchor: str | None = Field(None, max_length=512)
    forms: list[ProbeIn] = Field(default_factory=list, max_length=200)
    forget_texts: list[Text] = Field(default_factory=list, max_length=1000)
    retain_texts: list[Text] = Field(default_factory=list, max_length=1000)
    request_id: str | None = Field(None, max_length=200)

    def to_request(self) -> UnlearnRequest:
        """Return the contract type."""
        return UnlearnRequest(
            concept=self.concept,
            aliases=tuple(self.aliases),
            anchor=self.anchor,
            forms=tuple(p.to_probe() for p in self.forms),
            forget_texts=tuple(self.forget_texts),
            retain_texts=tuple(self.retain_texts),
            request_id=self.request_id,
        )


RequestIn = Annotated[EditRequestIn | UnlearnRequestIn, Field(discriminator="type")]
_ADAPTER: TypeAdapter[EditRequestIn | UnlearnRequestIn] = TypeAdapter(RequestIn)


def first_error(exc: ValidationError) -> str:
    """Return the first validation error as 'field: message'."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "line"
    return f"{where}: {err.get('msg', 'invalid')}"


def parse_jsonl(data: bytes, max_lines: int) -> list[EditRequestIn | UnlearnRequestIn]:
    """Parse a JSONL upload; ApiError 422 naming the line on the first bad one, 413 if too long."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(422, f"the upload is not UTF-8 (byte {exc.start})") from None
    out: list[EditRequestIn | UnlearnRequestIn] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(out) >= max_lines:
            raise ApiError(413, f"the upload has more than {max_lines} requests")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            message = f"line {line_no}: not JSON ({exc.msg})"
            raise ApiError(422, message, [{"line": line_no}]) from None
        if not isinstance(obj, dict):
            raise ApiError(422, f"line {line_no}: expected a JSON object", [{"line": line_no}])
        try:
            out.append(_ADAPTER.validate_python(obj))
        except ValidationError as exc:
            message = f"line {line_no}: {first_error(exc)}"
            raise ApiError(422, message, [{"line": line_no, "error": first_error(exc)}]) from None
    if not out:
        raise ApiError(422, "the upload holds no requests")
    return out
