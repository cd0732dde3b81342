"""One settings object for the whole service (pydantic-settings, env prefix `KGEDIT_`).

The defaults are embedded: a fresh checkout runs with no server. Production sets URLs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from workers.errors import DataSetMissingError

REPO_ROOT = Path(__file__).resolve().parents[1]

# Benchmark data sets read in place under `data_dir`: the folder of each and the files it needs.
DATA_SETS: dict[str, tuple[str, ...]] = {
    "evoke": ("evoke_main.json", "evoke_subj_spec.json"),
    "tofu": ("full.json", "forget01.json", "retain99.json"),
}


class Settings(BaseSettings):
    """Configuration read from the environment (`KGEDIT_*`) or a `.env` file."""

    model_config = SettingsConfigDict(env_prefix="KGEDIT_", env_file=".env", extra="ignore")

    var_dir: Path = Field(Path("var"), description="embedded databases, models, caches")
    graph_url: str | None = Field(None, description="graph store URL: sqlite, postgresql or bolt")
    data_dir: Path = Field(
        REPO_ROOT.parent / "shared" / "data",
        description="benchmark data (EVOKE, TOFU), read in place and never copied",
    )
    device: str = Field("cpu", description="torch device for model work")
    threads: int | None = Field(None, description="torch CPU threads (default: torch's own)")
    api_host: str = Field("127.0.0.1", description="address `kgedit serve` binds (loopback)")
    api_port: int = Field(8000, description="port `kgedit serve` binds")
    api_max_body_bytes: int = Field(1 << 20, description="largest JSON request body (413 above)")
    api_max_upload_bytes: int = Field(16 << 20, description="largest JSONL upload (413 above)")
    api_max_upload_lines: int = Field(10_000, description="most lines in one JSONL upload")
    api_page_max: int = Field(500, description="largest page a list route returns")
    console_secret: SecretStr | None = Field(
        None,
        description="key that signs the console's session cookies (default: a random key kept "
        "in var_dir/console-secret)",
    )
    console_session_minutes: int = Field(
        480, ge=1, le=7 * 24 * 60, description="how long a console sign-in lasts"
    )
    graph_urls: list[str] = Field(
        default_factory=list,
        description="graph store URLs a model may follow (besides the configured graph store)",
    )
    model_roots: list[Path] = Field(
        default_factory=list,
        description="directories the API may register models from (besides var_dir/models)",
    )

    stats_corpus: Path | None = Field(
        None,
        description="statistics corpus for the second moments: a text file (one sample a "
        "line), a JSONL file (`text` field) or a directory of .txt files (one sample each); "
        "default: the graph's verbalised facts",
    )

    # -- jobs, ledger and Celery (embedded defaults under var_dir) ----------------------------
    metadata_url: str | None = Field(
        None, description="SQLAlchemy URL of the metadata database (jobs, ledger, API keys)"
    )
    broker_url: str | None = Field(None, description="Celery broker (sqla+sqlite, redis, amqp)")
    result_backend: str | None = Field(None, description="Celery result backend")
    broker_poll_interval: float = Field(
        0.1, gt=0, description="seconds between polls of the embedded SQLAlchemy broker"
    )
    broker_visibility_timeout: int = Field(
        12 * 3600, gt=0, description="Redis: seconds before an unacked message is redelivered"
    )
    worker_refresh_seconds: float = Field(
        5.0,
        ge=0,
        description="seconds between a worker's reads of the registered models, to serve new "
        "ones without a restart (`kgedit worker` without --model; 0: off)",
    )
    ledger_dir: Path | None = Field(None, description="delta files of the model-version ledger")
    warm_models_max_bytes: int | None = Field(
        None, gt=0, description="memory bound of the worker's warm models (default: RAM / 4)"
    )
    job_lease_seconds: float = Field(
        60.0, gt=0, description="a running job's owner is presumed lost after this silence"
    )
    job_max_retries: int = Field(5, ge=0, description="automatic retries of transient errors")
    job_retry_backoff_max: float = Field(600.0, gt=0, description="cap of the retry backoff (s)")
    auto_migrate: bool = Field(True, description="upgrade the metadata schema on first use")
    check_targets: bool = Field(
        True,
        description="at submission, score each edit target on the model's head and warn about "
        "targets it cannot say (loads the model in the submitting process)",
    )

    # -- the sync loop ----------------------------------------------------------------------
    sync_edit_chain: list[str] = Field(
        default_factory=list,
        description="edit methods tried in order when a gate rolls an attempt back, each "
        "`method` or `method@field=value@...` (default: the registry's chain)",
    )
    sync_unlearn_chain: list[str] = Field(
        default_factory=list,
        description="unlearning methods tried in order, as for `sync_edit_chain`",
    )
    sync_backlog: int = Field(
        8, ge=1, description="edit batches of this many requests or more go to a batched method"
    )
    sync_consolidation_edits: int = Field(
        200,
        ge=0,
        description="edits since the last consolidation that make the next edit "
        "batch a consolidation (0: no limit)",
    )
    sync_consolidation_norm: float = Field(
        0.0,
        ge=0,
        description="sum of delta norms since the last consolidation that makes the "
        "next edit batch a consolidation (0: no limit)",
    )
    sync_consolidation_agreement: float = Field(
        0.0,
        ge=0,
        le=1,
        description="agreement of the head's latest sync check below which the "
        "next edit batch is a consolidation (0: off)",
    )
    log_level: str = Field(
        "WARNING",
        pattern="(?i)^(debug|info|warning|error)$",
        description="level of the migration logs (`kgedit -v` sets INFO)",
    )

    @property
    def graph_store_url(self) -> str:
        """Return the graph store URL, defaulting to a SQLite file under `var_dir`."""
        return self.graph_url or f"sqlite:///{self.var_dir / 'kg.sqlite'}"

    @property
    def allowed_graph_urls(self) -> list[str]:
        """Return the graph store URLs a model may be registered to follow."""
        return [self.graph_store_url, *self.graph_urls]

    @property
    def models_dir(self) -> Path:
        """Return the directory where trained knowledge models are kept."""
        return self.var_dir / "models"

    @property
    def allowed_model_roots(self) -> list[Path]:
        """Return the resolved directories models may be registered from over the API."""
        return [p.expanduser().resolve() for p in [self.models_dir, *self.model_roots]]

    @property
    def cache_dir(self) -> Path:
        """Return the cache directory (second-moment statistics, context templates)."""
        return self.var_dir / "cache"

    @property
    def metadata_db_url(self) -> str:
        """Return the metadata database URL, defaulting to a SQLite file under `var_dir`."""
        return self.metadata_url or f"sqlite:///{self.var_dir.resolve() / 'metadata.sqlite'}"

    @property
    def broker(self) -> str:
        """Return the Celery broker URL, defaulting to kombu's SQLAlchemy transport on SQLite."""
        return self.broker_url or f"sqla+sqlite:///{self.var_dir.resolve() / 'broker.sqlite'}"

    @property
    def results(self) -> str:
        """Return the Celery result backend URL, defaulting to SQLite under `var_dir`."""
        return self.result_backend or f"db+sqlite:///{self.var_dir.resolve() / 'results.sqlite'}"

    @property
    def ledger_path(self) -> Path:
        """Return the directory holding the ledger's delta files."""
        return (self.ledger_dir or self.var_dir / "ledger").resolve()

    def has_data_set(self, name: str) -> bool:
        """Return whether every file of a data set (`DATA_SETS`) is under `data_dir`."""
        folder = self.data_dir / name
        return all((folder / file).is_file() for file in DATA_SETS[name])

    def data_set(self, name: str) -> Path:
        """Return a data set's folder; `DataSetMissingError` (one line) when files are missing."""
        folder = self.data_dir / name
        missing = [file for file in DATA_SETS[name] if not (folder / file).is_file()]
        if missing:
            raise DataSetMissingError(
                f"{name.upper()} data not found: {folder} lacks {', '.join(missing)}; "
                f"set KGEDIT_DATA_DIR to the folder that holds {name}/"
            )
        return folder

    @property
    def evoke_main(self) -> Path:
        """Return the path of EVOKE's main set (`DataSetMissingError` when absent)."""
        return self.data_set("evoke") / "evoke_main.json"

    @property
    def evoke_subj_spec(self) -> Path:
        """Return the path of EVOKE's subject-specificity set (`DataSetMissingError` if absent)."""
        return self.data_set("evoke") / "evoke_subj_spec.json"

    @property
    def tofu_dir(self) -> Path:
        """Return the folder of the TOFU splits (`DataSetMissingError` when absent)."""
        return self.data_set("tofu")


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (read once)."""
    return Settings()
