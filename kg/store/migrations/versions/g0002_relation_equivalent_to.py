"""Relations name the relations that state the same fact: `relations.equivalent_to`."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "g0002"
down_revision = "g0001"


def upgrade() -> None:
    """Add `relations.equivalent_to` (a JSON list of relation ids, empty for existing rows).

    A database adopted by g0001 may already hold it (its tables were made by the ORM).
    """
    schema = op.get_context().version_table_schema
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("relations", schema=schema)}
    if "equivalent_to" in have:
        return
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    column = sa.Column("equivalent_to", json_type, nullable=False, server_default=sa.text("'[]'"))
    op.add_column("relations", column, schema=schema)


def downgrade() -> None:
    """Drop `relations.equivalent_to`."""
    op.drop_column("relations", "equivalent_to", schema=op.get_context().version_table_schema)
