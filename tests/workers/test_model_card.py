"""The model card (README.md) of every exported version: base, chain, methods, audits."""

from __future__ import annotations

from jobs_helpers import job_settings, random_model_dir  # noqa: F401
from test_ledger import chain3  # noqa: F401

from workers.db import AuditReportRow, JobRow, get_database, utcnow
from workers.ledger import export_version, get_model

GROUP = {"group": "rewrite", "n": 3, "before": 0.0, "after": 2 / 3, "status": "pass"}


def _record_gate_and_audit(job_id: str, version_id: int) -> None:
    """Give the chain's job request subjects and a gate verdict, and audit one version."""
    with get_database().session() as session:
        job = session.get(JobRow, job_id)
        job.payload = {
            **job.payload,
            "requests": [{"request_id": f"q{i}", "subject": f"Ada {i}"} for i in range(3)],
        }
        job.result = {"gate": {"passed": True, "groups": [GROUP], "failing": []}}
        session.add(
            AuditReportRow(
                id="audit-1",
                model_name="rand",
                version_id=version_id,
                state="succeeded",
                sample_size=50,
                requested_by="rita",
                summary={"passed": False, "n_probes": 50, "groups": [{**GROUP, "group": "sample"}]},
                finished_at=utcnow(),
            )
        )


def test_every_export_has_a_card_of_its_chain(chain3, tmp_path):  # noqa: F811
    name, _, ids, job_id = chain3
    _record_gate_and_audit(job_id, ids[2])
    model = get_model(name)

    info = export_version(name, ids[2], tmp_path / "v2")
    card = (tmp_path / "v2" / "README.md").read_text()
    assert card.startswith(f"# {name}, version {ids[2]}\n")
    assert model.path in card and model.weights_sha256 in card
    assert info.checksum in card and info.weights_sha256 in card
    for vid, rid in ((ids[1], "q0"), (ids[2], "q1")):
        row = next(line for line in card.splitlines() if line.startswith(f"| {vid} |"))
        assert "| test |" in row and f"{rid} (Ada {rid[1]})" in row and job_id in row
    assert f"| {ids[3]} |" not in card  # later versions are not part of this chain
    assert f"Gate of job {job_id}" in card and "passed" in card
    assert "| rewrite | 3 | 0.0% | 66.7% | pass |" in card
    assert f"Audit audit-1 of version {ids[2]}: FAILED, 50 probes" in card

    export_version(name, ids[1], tmp_path / "v1")
    earlier = (tmp_path / "v1" / "README.md").read_text()
    assert "audit-1" not in earlier and f"| {ids[1]} |" in earlier

    export_version(name, ids[0], tmp_path / "root")
    root = (tmp_path / "root" / "README.md").read_text()
    assert "this is the base model as registered" in root
    assert "No audit of this chain has been recorded." in root
