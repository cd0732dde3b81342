"""One settings object for the whole service (pydantic-settings, env prefix `KGEDIT_`).

The defaults are embedded: a fresh checkout runs with no server. Production sets URLs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Configuration read from the environment (`KGEDIT_*`) or a `.env` file."""

    model_config = SettingsConfigDict(env_prefix="KGEDIT_", env_file=".env", extra="ignore")

    var_dir: Path = Field(Path("var"), description="embedded databases, models, caches")
    graph_url: str | None = Field(None, description="SQLAlchemy URL of the graph store")
    data_dir: Path = Field(
        REPO_ROOT.parent / "shared" / "data",
        description="benchmark data (EVOKE, TOFU), read in place and never copied",
    )
    device: str = Field("cpu", description="torch device for model work")
    threads: int | None = Field(None, description="torch CPU threads (default: torch's own)")
    metadata_url: str | None = Field(
        None, description="SQLAlchemy URL of the metadata database (jobs, ledger, API keys)"
    )
    api_host: str = Field("127.0.0.1", description="address `kgedit serve` binds (loopback)")
    api_port: int = Field(8000, description="port `kgedit serve` binds")
    api_max_body_bytes: int = Field(1 << 20, description="largest JSON request body (413 above)")
    api_max_upload_bytes: int = Field(16 << 20, description="largest JSONL upload (413 above)")
    api_max_upload_lines: int = Field(10_000, description="most lines in one JSONL upload")
    api_page_max: int = Field(500, description="largest page a list route returns")

    @property
    def graph_store_url(self) -> str:
        """Return the graph store URL, defaulting to a SQLite file under `var_dir`."""
        return self.graph_url or f"sqlite:///{self.var_dir / 'kg.sqlite'}"

    @property
    def metadata_db_url(self) -> str:
        """Return the metadata database URL, defaulting to a SQLite file under `var_dir`."""
        return self.metadata_url or f"sqlite:///{self.var_dir / 'meta.sqlite'}"

    @property
    def models_dir(self) -> Path:
        """Return the directory where trained knowledge models are kept."""
        return self.var_dir / "models"

    @property
    def cache_dir(self) -> Path:
        """Return the cache directory (second-moment statistics, context templates)."""
        return self.var_dir / "cache"

    @property
    def evoke_main(self) -> Path:
        """Return the path of EVOKE's main set."""
        return self.data_dir / "evoke" / "evoke_main.json"

    @property
    def evoke_subj_spec(self) -> Path:
        """Return the path of EVOKE's subject-specificity set."""
        return self.data_dir / "evoke" / "evoke_subj_spec.json"


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (read once)."""
    return Settings()
