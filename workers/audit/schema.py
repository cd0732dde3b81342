"""The audit report's JSON Schema (draft 2020-12), versioned; documented in docs/audit-report.md.

Versioning: `schema_version` is semantic. A new optional field bumps the minor version; a
removed or retyped field bumps the major version, and `SCHEMA_ID` names the document type.
`kgedit audit schema` prints this schema; `validate_report` checks a report against it.
"""

from __future__ import annotations

from typing import Any

SCHEMA_ID = "kgedit.audit-report"
SCHEMA_VERSION = "1.1.0"


def _objects(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """Return the schema of an array of objects with these required fields and properties."""
    return {
        "type": "array",
        "items": {"type": "object", "required": required, "properties": properties},
    }


_NUM = {"type": ["number", "null"]}
_STR = {"type": ["string", "null"]}
_ESTIMATE = {
    "type": "object",
    "required": ["value", "lo", "hi"],
    "properties": {"value": _NUM, "lo": _NUM, "hi": _NUM},
    "additionalProperties": False,
}
_METRIC = {
    "type": ["object", "null"],
    "required": ["before", "after", "delta"],
    "properties": {"before": _ESTIMATE, "after": _ESTIMATE, "delta": _ESTIMATE},
    "additionalProperties": False,
}
_THRESHOLD = {
    "type": ["object", "null"],
    "required": ["group", "metric", "min_after", "max_drop", "relative"],
    "properties": {
        "group": {"type": "string"},
        "metric": {"enum": ["success", "exact_match", "p_expected", "entropy"]},
        "min_after": _NUM,
        "max_drop": _NUM,
        "relative": {"type": "boolean"},
    },
}
_SCORE = {
    "type": "object",
    "required": ["success", "exact_match", "logp_expected", "logp_rival", "compared"],
    "properties": {
        "success": {"type": ["boolean", "null"]},
        "exact_match": {"type": "boolean"},
        "logp_expected": _NUM,
        "logp_rival": _NUM,
        "compared": {"type": ["boolean", "null"]},
        "answer": _STR,
        "hop_answers": {"type": "array", "items": {"type": "string"}},
        "hop_prompts": {"type": "array", "items": {"type": "string"}},
        "entropy": _NUM,
    },
}
_SUBGRAPH = {
    "type": ["object", "null"],
    "required": ["nodes", "edges", "center"],
    "properties": {
        "nodes": {"type": "array", "items": {"type": "string"}},
        "center": {"type": "integer", "minimum": 0},
        "edges": _objects(
            ["head", "tail", "relation", "status"],
            {
                "head": {"type": "integer", "minimum": 0},
                "tail": {"type": "integer", "minimum": 0},
                "relation": {"type": "string"},
                "status": {"enum": ["new", "old", "current", "forget"]},
            },
        ),
    },
}


SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"https://kgedit.invalid/schemas/{SCHEMA_ID}/{SCHEMA_VERSION}",
    "title": "kgedit audit report",
    "type": "object",
    "required": [
        "schema",
        "schema_version",
        "created_at",
        "kind",
        "model",
        "graph",
        "settings",
        "passed",
        "failures",
        "n_probes",
        "changes",
        "groups",
        "sample",
        "worst",
        "trend",
        "timings",
        "probes",
    ],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "schema_version": {"type": "string", "pattern": r"^1\.\d+\.\d+$"},
        "created_at": {"type": "string", "format": "date-time"},
        "kgedit_version": {"type": "string"},
        "kind": {"enum": ["edit", "unlearn", "mixed", "sample"]},
        "notes": {"type": "array", "items": {"type": "string"}},
        "model": {
            "type": "object",
            "properties": {
                "name": _STR,
                "version_id": {"type": ["integer", "null"]},
                "base_version_id": {"type": ["integer", "null"]},
                "version_ids": {
                    "type": "array",
                    "items": {"type": "integer"},
                    "description": "the ledger's chain from the base, one id per delta applied",
                },
                "path": _STR,
                "weights_sha256": _STR,
                "deltas": _objects(
                    ["method", "request_ids"],
                    {
                        "method": {"type": "string"},
                        "request_ids": {"type": "array", "items": {"type": "string"}},
                        "norm": _NUM,
                    },
                ),
            },
        },
        "graph": {"type": "object", "properties": {"url": _STR, "facts": {"type": "integer"}}},
        "settings": {
            "type": "object",
            "required": ["bootstrap", "confidence", "seed", "sample_size", "sample_seed"],
            "properties": {
                "bootstrap": {"type": "integer", "minimum": 0},
                "confidence": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "seed": {"type": "integer"},
                "sample_size": {"type": "integer", "minimum": 0},
                "sample_seed": {"type": "integer"},
                "thresholds": {"type": "array", "items": _THRESHOLD},
            },
        },
        "passed": {"type": "boolean"},
        "failures": _objects(
            ["group", "metric", "reason", "significant"],
            {
                "group": {"type": "string"},
                "metric": {"type": "string"},
                "reason": {"type": "string"},
                "significant": {"type": "boolean"},
            },
        ),
        "n_probes": {"type": "integer", "minimum": 0},
        "probe_counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "changes": _objects(
            ["id", "kind", "n_probes", "subgraph"],
            {
                "id": {"type": "string"},
                "kind": {"enum": ["edit", "unlearn"]},
                "n_probes": {"type": "integer"},
                "subject": _STR,
                "relation": _STR,
                "prompt": _STR,
                "target_true": _STR,
                "target_new": _STR,
                "concept": _STR,
                "subgraph": _SUBGRAPH,
                "note": {"type": "string"},
            },
        ),
        "groups": _objects(
            [
                "group",
                "kind",
                "bucket",
                "n",
                "n_changes",
                "success",
                "exact_match",
                "p_expected",
                "entropy",
                "kept",
                "threshold",
                "status",
                "reason",
                "significant",
            ],
            {
                "group": {"type": "string"},
                "kind": {"type": "string"},
                "bucket": _STR,
                "n": {"type": "integer", "minimum": 1},
                "n_changes": {"type": "integer", "minimum": 0},
                "success": _METRIC,
                "exact_match": _METRIC,
                "p_expected": _METRIC,
                "entropy": _METRIC,
                "kept": {"oneOf": [_ESTIMATE, {"type": "null"}]},
                "threshold": _THRESHOLD,
                "status": {"enum": ["pass", "fail", "info"]},
                "reason": {"type": "string"},
                "significant": {"type": "boolean"},
            },
        ),
        "sample": {
            "type": ["object", "null"],
            "required": ["n", "seed", "success", "kept", "flipped", "shift"],
            "properties": {
                "n": {"type": "integer"},
                "seed": {"type": "integer"},
                "success": _METRIC,
                "kept": _ESTIMATE,
                "flipped": {
                    "type": "object",
                    "required": ["lost", "gained"],
                    "properties": {"lost": {"type": "integer"}, "gained": {"type": "integer"}},
                },
                "shift": {
                    "type": "object",
                    "required": ["edges", "counts", "mean", "median", "p05", "p95"],
                    "properties": {
                        "edges": {"type": "array", "items": {"type": "number"}},
                        "counts": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                        "mean": _NUM,
                        "median": _NUM,
                        "p05": _NUM,
                        "p95": _NUM,
                    },
                },
            },
        },
        "worst": _objects(
            ["probe", "group", "prompt", "expected", "margin_drop"],
            {
                "probe": {"type": "integer"},
                "change": _STR,
                "group": {"type": "string"},
                "prompt": {"type": "string"},
                "expected": {"type": "string"},
                "rival": _STR,
                "p_before": _NUM,
                "p_after": _NUM,
                "margin_drop": {"type": "number"},
            },
        ),
        "trend": _objects(
            ["version", "label", "metrics"],
            {
                "version": {"type": "integer", "minimum": 0},
                "label": {"type": "string"},
                "metrics": {"type": "object", "additionalProperties": _NUM},
            },
        ),
        "timings": {"type": "object", "additionalProperties": {"type": "number"}},
        "probes": _objects(
            ["id", "kind", "prompt", "expected", "before", "after"],
            {
                "id": {"type": "integer"},
                "change": _STR,
                "kind": {"type": "string"},
                "bucket": _STR,
                "role": {"enum": ["keep", "forget"]},
                "prompt": {"type": "string"},
                "expected": {"type": "string"},
                "unexpected": _STR,
                "rivals": {"type": "array", "items": {"type": "string"}},
                "meta": {"type": "object", "additionalProperties": {"type": "string"}},
                "before": _SCORE,
                "after": _SCORE,
            },
        ),
    },
}


def validate_report(report: dict) -> None:
    """Raise `jsonschema.ValidationError` unless the report matches the schema."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    validator.validate(report)
