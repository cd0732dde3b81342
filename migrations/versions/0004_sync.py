"""The sync loop: models that follow the graph, agreement snapshots, change-set attempts."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Add `models.follows_graph`, `agreement_snapshots` and `sync_attempts`."""
    with op.batch_alter_table("models") as batch:
        batch.add_column(
            sa.Column("follows_graph", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "agreement_snapshots",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "model_name",
            sa.String(64),
            sa.ForeignKey("models.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("graph_url", sa.Text(), nullable=False),
        sa.Column("graph_version", sa.Integer(), nullable=False),
        sa.Column("observations", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_agreement_model_version", "agreement_snapshots", ["model_name", "version_id", "id"]
    )
    op.create_table(
        "sync_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("change_set_id", sa.String(64), nullable=False),
        sa.Column(
            "model_name",
            sa.String(64),
            sa.ForeignKey("models.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("plan_key", sa.String(200), nullable=False),
        sa.Column("batch_index", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("chain", _JSON, nullable=False),
        sa.Column(
            "job_id", sa.String(36), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("plan_key", "batch_index", "attempt", name="uq_sync_attempt"),
    )
    op.create_index("ix_sync_attempts_change_set_id", "sync_attempts", ["change_set_id"])


def downgrade() -> None:
    """Drop the sync tables and `models.follows_graph`."""
    op.drop_table("sync_attempts")
    op.drop_index("ix_agreement_model_version", table_name="agreement_snapshots")
    op.drop_table("agreement_snapshots")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("follows_graph")
