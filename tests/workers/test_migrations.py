"""Alembic migrations of the metadata database: they build exactly the models' schema,
downgrade cleanly, and run on PostgreSQL as on SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from jobs_helpers import random_model_dir  # noqa: F401
from sqlalchemy import create_engine, inspect, text

from workers.db import REPO_ROOT, Base, Database, reset_databases
from workers.jobs import cancel_job, retry_job, submit_job
from workers.ledger import list_versions, register_model
from workers.settings import get_settings

PG_URL = os.environ.get("KGEDIT_TEST_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
TABLES = {
    "alembic_version",
    "jobs",
    "job_transitions",
    "models",
    "model_versions",
    "api_keys",
    "audit_reports",
    "agreement_snapshots",
    "calibrations",
    "sync_attempts",
}
HEAD = "0006"


def _diff(db: Database) -> list:
    """Return Alembic's differences between the live schema and the declared tables."""
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, Base.metadata)


def _check(url: str) -> None:
    db = Database(url)
    try:
        assert set(inspect(db.engine).get_table_names()) == TABLES
        assert _diff(db) == []
        db.upgrade()  # idempotent
        db.downgrade("base")
        assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
        db.upgrade()
        assert _diff(db) == []
    finally:
        db.dispose()


def test_sqlite_schema_matches_the_models(tmp_path: Path):
    _check(f"sqlite:///{tmp_path / 'meta.sqlite'}")


def test_the_alembic_command_line_upgrades_a_fresh_database(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={url}", "upgrade", "head"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
    engine.dispose()


@pytest.fixture
def pg_database():
    """A throwaway PostgreSQL database (skipped when the server is down; failed under CI)."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL unreachable at {PG_URL}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {exc}")
    name = f"kgedit_meta_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        reset_databases()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.service
def test_postgresql_schema_matches_the_models(pg_database):
    _check(pg_database)


@pytest.mark.service
def test_jobs_and_the_ledger_run_on_postgresql(
    pg_database,
    tmp_path,
    monkeypatch,
    random_model_dir,  # noqa: F811
):
    monkeypatch.setenv("KGEDIT_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("KGEDIT_METADATA_URL", pg_database)
    get_settings.cache_clear()
    reset_databases()
    try:
        register_model("pg", random_model_dir)
        payload = {
            "model": "pg",
            "method": "rome",
            "requests": [{"subject": "Ada", "prompt": "{} was born in", "target_new": "Paris"}],
        }
        job = submit_job(payload, idempotency_key="pg-1")
        assert submit_job(payload, idempotency_key="pg-1").id == job.id
        assert cancel_job(job.id).state == "cancelled"
        again = retry_job(job.id)
        assert again.run == 2 and [t.to_state for t in again.transitions] == [
            "queued",
            "cancelled",
            "queued",
        ]
        assert all(t.at.tzinfo is not None for t in again.transitions)
        (root,) = list_versions("pg")
        assert root.is_head and root.depth == 0
    finally:
        get_settings.cache_clear()
