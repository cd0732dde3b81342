"""Plain data types shared by `kg` and `editor`: the only place where the two packages meet."""

from contracts.types import (
    EditRequest,
    FactText,
    Probe,
    ProbeKind,
    Subgraph,
    SubgraphEdge,
    UnlearnRequest,
)

__all__ = [
    "EditRequest",
    "FactText",
    "Probe",
    "ProbeKind",
    "Subgraph",
    "SubgraphEdge",
    "UnlearnRequest",
]
