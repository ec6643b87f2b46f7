"""Where the platform keeps its files and how it finds its database.

Everything is derived from environment variables with defaults that work on a fresh clone:
the data folder is `<project>/.data` and the warehouse is the embedded Postgres inside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Names of the environment variables the platform reads. Kept together so the README,
# the CLI and the Dagster resources agree on them.
ENV_DATABASE_URL = "DATABASE_URL"  # external Postgres (admin connection); embedded if unset
ENV_DATA_DIR = "BIZOSAAS_DATA_DIR"
ENV_DB_NAME = "BIZOSAAS_DB_NAME"
ENV_WRITER_URL = "BIZOSAAS_WRITER_URL"
ENV_TRANSFORM_URL = "BIZOSAAS_TRANSFORM_URL"
ENV_SERVING_URL = "BIZOSAAS_SERVING_URL"
ENV_DAGSTER_PG_URL = "DAGSTER_PG_URL"
ENV_SOURCE_MODE = "BIZOSAAS_SOURCE_MODE"
ENV_FIXTURES_DIR = "BIZOSAAS_FIXTURES_DIR"
ENV_TENANTS_FILE = "BIZOSAAS_TENANTS_FILE"
ENV_LOCATIONIQ_KEY = "LOCATIONIQ_API_KEY"
ENV_IGDB_CLIENT_ID = "IGDB_CLIENT_ID"  # Twitch application id
ENV_IGDB_CLIENT_SECRET = "IGDB_CLIENT_SECRET"
ENV_OPENCRITIC_KEY = "OPENCRITIC_RAPIDAPI_KEY"
ENV_SALEOR_TOKEN = "SALEOR_APP_TOKEN"
ENV_SALEOR_TOKEN_HOST = "SALEOR_TOKEN_HOST"  # the only host the app token is ever sent to
ENV_DROPS_DIR = "BIZOSAAS_DROPS_DIR"  # watched folder for file exports, one subfolder per tenant
ENV_REPLAY_DATE = "BIZOSAAS_REPLAY_DATE"
# Each tenant's CRM credential (the CRM derives the org from it): CRM_API_TOKEN_<TENANT_ID upper>.
ENV_CRM_TOKEN_PREFIX = "CRM_API_TOKEN_"
# An OpenAI-compatible chat endpoint for narrative summaries; nothing is sent anywhere without it.
ENV_LLM_BASE_URL = "BIZOSAAS_LLM_BASE_URL"
ENV_LLM_API_KEY = "BIZOSAAS_LLM_API_KEY"
ENV_LLM_MODEL = "BIZOSAAS_LLM_MODEL"
# Knowledge layer: the embedding model, and the endpoint of API models (OpenAI-compatible).
ENV_EMBEDDING_MODEL = "BIZOSAAS_EMBEDDING_MODEL"
ENV_EMBEDDING_BASE_URL = "BIZOSAAS_EMBEDDING_BASE_URL"
ENV_EMBEDDING_API_KEY = "BIZOSAAS_EMBEDDING_API_KEY"
# Neo4j, synced from the Postgres graph when set.
ENV_NEO4J_URI = "NEO4J_URI"
ENV_NEO4J_USER = "NEO4J_USER"
ENV_NEO4J_PASSWORD = "NEO4J_PASSWORD"
# QuantTrade market data: CoinGecko (keyless works; a Demo or Pro key raises its limits),
# Alpha Vantage (a key is required live) and the keyless Frankfurter (ECB) exchange rates.
ENV_COINGECKO_KEY = "COINGECKO_API_KEY"
ENV_COINGECKO_PLAN = "COINGECKO_PLAN"  # demo | pro (the header and host differ)
ENV_ALPHAVANTAGE_KEY = "ALPHAVANTAGE_API_KEY"
# Comma-separated IPs or CIDR blocks that may call the QuantTrade routes; unset = any address.
ENV_QUANTTRADE_ALLOWED_IPS = "BIZOSAAS_QUANTTRADE_ALLOWED_IPS"
# Reverse proxies whose X-Forwarded-For the API believes (uvicorn --forwarded-allow-ips); unset = none.
ENV_API_FORWARDED_ALLOW_IPS = "BIZOSAAS_API_FORWARDED_ALLOW_IPS"
# The API's uvicorn worker processes, and each worker's own Postgres pool (serving/config.py).
ENV_API_WORKERS = "BIZOSAAS_API_WORKERS"
ENV_API_POOL_MIN = "BIZOSAAS_API_POOL_MIN"
ENV_API_POOL_MAX = "BIZOSAAS_API_POOL_MAX"
# Replay mode only: inject source faults into replayed answers (soak tests), e.g.
# "429=0.03,timeout=0.02,malformed=0.02"; unset = none. The seed makes the draws repeatable.
ENV_REPLAY_FAULTS = "BIZOSAAS_REPLAY_FAULTS"
ENV_REPLAY_FAULT_SEED = "BIZOSAAS_REPLAY_FAULT_SEED"
# Partitions per asset the platform allows (Dagster's guidance: ~100k), and the share of it at
# which onboarding starts warning.
ENV_PARTITION_BUDGET = "BIZOSAAS_PARTITION_BUDGET"
ENV_PARTITION_WARN_SHARE = "BIZOSAAS_PARTITION_WARN_SHARE"
# Run requests one sensor tick may emit (default 50); the rest wait in the cursor for the next.
ENV_SENSOR_MAX_RUN_REQUESTS = "BIZOSAAS_SENSOR_MAX_RUN_REQUESTS"
# Retention (days): finished Dagster runs (default 30) and raw API answers (default 90).
ENV_PRUNE_RUNS_DAYS = "BIZOSAAS_PRUNE_RUNS_DAYS"
ENV_PRUNE_RAW_DAYS = "BIZOSAAS_PRUNE_RAW_DAYS"

# Replay mode's "today": the fixtures were recorded up to the day before it, so daily
# partitions end there and a replayed day always has recordings, whatever the calendar says.
DEFAULT_REPLAY_DATE = "2026-11-25"

WRITER_ROLE = "bizosaas_writer"
SERVING_ROLE = "bizosaas_serving"
TRANSFORM_ROLE = "bizosaas_transform"
LOGIN_ROLES = (WRITER_ROLE, SERVING_ROLE, TRANSFORM_ROLE)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None
    db_name: str
    fixtures_dir: Path
    tenants_file: Path
    drops_dir: Path

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pg"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster"

    @property
    def credentials_file(self) -> Path:
        return self.data_dir / "credentials.json"

    @property
    def dagster_db_name(self) -> str:
        return f"{self.db_name}_dagster"

    @property
    def embedded(self) -> bool:
        return self.database_url is None


def load_settings() -> Settings:
    data_dir = Path(os.environ.get(ENV_DATA_DIR) or PROJECT_ROOT / ".data").resolve()
    return Settings(
        data_dir=data_dir,
        database_url=os.environ.get(ENV_DATABASE_URL) or None,
        db_name=os.environ.get(ENV_DB_NAME) or "bizosaas",
        fixtures_dir=Path(os.environ.get(ENV_FIXTURES_DIR) or PROJECT_ROOT / "fixtures"),
        tenants_file=Path(os.environ.get(ENV_TENANTS_FILE) or PROJECT_ROOT / "tenants.yaml"),
        drops_dir=Path(os.environ.get(ENV_DROPS_DIR) or data_dir / "drops"),
    )


def source_mode() -> str:
    return os.environ.get(ENV_SOURCE_MODE) or "replay"


def replay_date() -> str | None:
    """The day daily partitions end at in replay mode (exclusive); None when live."""
    if source_mode() != "replay":
        return None
    return os.environ.get(ENV_REPLAY_DATE) or DEFAULT_REPLAY_DATE


def platform_now() -> datetime:
    """ "Now" for computations as of a time (lead features, insights): midnight UTC of the replay
    date in replay mode (the recorded data ends there, whatever the calendar says), else the clock."""
    day = replay_date()
    return datetime.combine(date.fromisoformat(day), time(), UTC) if day else datetime.now(UTC)
