"""Calibration per model: `models.calibration` and the `calibrations` requests."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Add `models.calibration` and the `calibrations` table."""
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("calibration", _JSON, nullable=True))
    op.create_table(
        "calibrations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "model_name",
            sa.String(64),
            sa.ForeignKey("models.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("options", _JSON, nullable=False),
        sa.Column("result", _JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_calibrations_model", "calibrations", ["model_name", "created_at"])


def downgrade() -> None:
    """Drop the `calibrations` table and `models.calibration`."""
    op.drop_index("ix_calibrations_model", table_name="calibrations")
    op.drop_table("calibrations")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("calibration")
