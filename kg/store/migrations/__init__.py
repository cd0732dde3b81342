"""Alembic scripts of the SQL graph tables (run through `kg.store.migrate`)."""
