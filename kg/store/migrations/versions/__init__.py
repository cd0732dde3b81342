"""Revisions of the SQL graph tables, oldest first."""
