"""Jobs, their timestamped transitions, registered models and the model-version ledger.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None


def _json() -> sa.types.TypeEngine:
    """JSON, stored as JSONB on PostgreSQL."""
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    """A timezone-aware timestamp column."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the four tables and their indexes."""
    op.create_table(
        "models",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("weights_sha256", sa.String(64), nullable=False),
        sa.Column("param_hashes", _json(), nullable=False),
        sa.Column("head_version_id", sa.Integer(), nullable=True),
        sa.Column("graph_url", sa.Text(), nullable=True),
        sa.Column("meta", _json(), nullable=False),
        _ts("created_at"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
        sa.Column("payload_sha256", sa.String(64), nullable=False),
        sa.Column("model_name", sa.String(64), sa.ForeignKey("models.name"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("worker_id", sa.String(200), nullable=True),
        _ts("heartbeat_at", nullable=True),
        sa.Column("base_version_id", sa.Integer(), nullable=True),
        sa.Column("result_version_id", sa.Integer(), nullable=True),
        sa.Column("steps_total", sa.Integer(), nullable=False),
        sa.Column("steps_done", sa.Integer(), nullable=False),
        sa.Column("result", _json(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("enqueued_at", nullable=True),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        _ts("next_attempt_at", nullable=True),
        sa.Column("row_version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.create_index("ix_jobs_model_state", "jobs", ["model_name", "state"])
    op.create_table(
        "job_transitions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        _ts("at"),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("worker_id", sa.String(200), nullable=True),
    )
    op.create_index("ix_job_transitions_job_id", "job_transitions", ["job_id"])
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "model_name",
            sa.String(64),
            sa.ForeignKey("models.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("parent_id", sa.Integer(), sa.ForeignKey("model_versions.id"), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("delta_path", sa.Text(), nullable=True),
        sa.Column("delta_sha256", sa.String(64), nullable=True),
        sa.Column("method", sa.String(64), nullable=True),
        sa.Column("request_ids", _json(), nullable=False),
        sa.Column("norm", sa.Float(), nullable=True),
        sa.Column("params", _json(), nullable=False),
        sa.Column(
            "job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("job_run", sa.Integer(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("step_index", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("job_id", "job_run", "step", "step_index", name="uq_versions_job_step"),
    )
    op.create_index("ix_model_versions_job_id", "model_versions", ["job_id"])
    op.create_index("ix_model_versions_parent_id", "model_versions", ["parent_id"])
    op.create_index("ix_versions_model", "model_versions", ["model_name", "id"])


def downgrade() -> None:
    """Drop the four tables."""
    op.drop_table("model_versions")
    op.drop_table("job_transitions")
    op.drop_table("jobs")
    op.drop_table("models")
