"""The model card (`README.md`) of an exported version: base, chain, methods, audits.

Everything on the card is read from the ledger: the base model's directory and sha256, each
delta of the chain with its method, requests (ids and subjects or concepts), norm and job,
the job's audit gate, and the requested audits of each version (`workers.audit.reports`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from workers.db import AuditReportRow, JobRow, ModelRow, VersionRow


def _cell(value: object) -> str:
    """Return a markdown table cell: pipes escaped, newlines folded."""
    return " ".join(str(value).replace("|", "\\|").split()) or "–"


def _rate(value: float | None) -> str:
    """Return a rate as a percentage, or a dash."""
    return "–" if value is None else f"{value:.1%}"


def _request_names(job: JobRow | None) -> dict[str, str]:
    """Return {request id: subject or concept} of a job's payload."""
    if job is None:
        return {}
    out = {}
    for request in (job.payload or {}).get("requests", []):
        name = request.get("subject") or request.get("concept") or ""
        if request.get("request_id"):
            out[request["request_id"]] = name
    return out


def _groups_table(groups: Sequence[dict[str, Any]]) -> list[str]:
    """Return the markdown rows of audit groups: n, before, after, status."""
    lines = ["| group | n | before | after | status |", "|---|---:|---:|---:|---|"]
    for g in groups:
        lines.append(
            f"| {_cell(g.get('group'))} | {g.get('n')} | {_rate(g.get('before'))} | "
            f"{_rate(g.get('after'))} | {_cell(g.get('status'))} |"
        )
    return lines


def _verdict(passed: object) -> str:
    """Return a verdict word."""
    return {True: "passed", False: "FAILED"}.get(passed, "no verdict")  # type: ignore[call-overload]


def model_card(
    session: Any, model: ModelRow, rows: Sequence[VersionRow], export_sha256: str
) -> str:
    """Return the markdown model card of the version `rows[-1]` (rows: root first)."""
    version = rows[-1]
    job_ids = sorted({r.job_id for r in rows if r.job_id})
    jobs = {j.id: j for j in session.scalars(select(JobRow).where(JobRow.id.in_(job_ids)))}
    audits = list(
        session.scalars(
            select(AuditReportRow)
            .where(
                AuditReportRow.model_name == model.name,
                AuditReportRow.version_id.in_([r.id for r in rows]),
                AuditReportRow.state == "succeeded",
            )
            .order_by(AuditReportRow.finished_at, AuditReportRow.id)
        )
    )
    lines = [
        f"# {model.name}, version {version.id}",
        "",
        "Exported by kgedit: the base model with the chain of deltas below merged into its "
        "weights (safetensors). `kgedit_version.json` holds the same provenance as JSON.",
        "",
        "## Base model",
        "",
        f"- directory: `{model.path}`",
        f"- weights sha256: `{model.weights_sha256}`",
        f"- ledger checksum of this version: `{version.checksum}`",
        f"- exported weights sha256: `{export_sha256}`",
        "",
        "## Chain of deltas",
        "",
    ]
    if len(rows) == 1:
        lines.append("None: this is the base model as registered.")
    else:
        lines += ["| version | method | requests | norm | job |", "|---:|---|---|---:|---|"]
        for r in rows[1:]:
            names = _request_names(jobs.get(r.job_id or ""))
            requests = ", ".join(
                f"{rid} ({names[rid]})" if names.get(rid) else rid for rid in r.request_ids or ()
            )
            norm = "–" if r.norm is None else f"{r.norm:.4g}"
            lines.append(
                f"| {r.id} | {_cell(r.method)} | {_cell(requests)} | {norm} | {_cell(r.job_id)} |"
            )
    lines += ["", "## Audits", ""]
    found = False
    for job_id in job_ids:
        gate = (jobs[job_id].result or {}).get("gate") if job_id in jobs else None
        if not gate:
            continue
        found = True
        state = jobs[job_id].state
        lines += [f"### Gate of job {job_id} ({state}): {_verdict(gate.get('passed'))}", ""]
        lines += [*_groups_table(gate.get("groups", [])), ""]
    for audit in audits:
        found = True
        summary = audit.summary or {}
        lines += [
            f"### Audit {audit.id} of version {audit.version_id}: "
            f"{_verdict(summary.get('passed'))}, {summary.get('n_probes')} probes",
            "",
            *_groups_table(summary.get("groups", [])),
            "",
        ]
    if not found:
        lines.append("No audit of this chain has been recorded.")
    return "\n".join(lines).rstrip() + "\n"
