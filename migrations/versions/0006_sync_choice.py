"""The planner's capacity-aware choice on each sync attempt: `sync_attempts.choice`."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Add `sync_attempts.choice`: {role, method, reason} of the batch's first method."""
    with op.batch_alter_table("sync_attempts") as batch:
        batch.add_column(sa.Column("choice", _JSON, nullable=True))


def downgrade() -> None:
    """Drop `sync_attempts.choice`."""
    with op.batch_alter_table("sync_attempts") as batch:
        batch.drop_column("choice")
