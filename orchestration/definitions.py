"""The Dagster code location: every domain's assets, checks, schedules, sensors and resources."""

import os

from dagster import (
    Definitions,
    EnvVar,
    load_asset_checks_from_modules,
    load_assets_from_modules,
)
from dagster_dbt import DbtCliResource

from assets import (
    analytics,
    crm,
    crm_insights,
    crm_scoring,
    directory,
    ecommerce,
    ecommerce_checks,
    esports,
    gaming,
    knowledge,
    knowledge_graph,
    maintenance,
    tenancy,
    trading,
    trading_market,
)
from orchestration.crm_source import CrmLeadsResource
from orchestration.directory_sources import LocationIQResource, NominatimResource, OverpassResource
from orchestration.embedding_model import embedding_model_from_env
from orchestration.feed_sources import NewsFeedResource
from orchestration.file_drops import DropFolderResource
from orchestration.gaming_sources import IgdbResource, OpenCriticResource, SteamStoreResource
from orchestration.llm import LlmResource
from orchestration.neo4j import Neo4jResource
from orchestration.runtime import DBT_EXECUTABLE, DBT_PROJECT_DIR
from orchestration.saleor import SaleorResource
from orchestration.settings import (
    ENV_ALPHAVANTAGE_KEY,
    ENV_COINGECKO_KEY,
    ENV_COINGECKO_PLAN,
    ENV_IGDB_CLIENT_ID,
    ENV_IGDB_CLIENT_SECRET,
    ENV_LLM_API_KEY,
    ENV_LLM_BASE_URL,
    ENV_LLM_MODEL,
    ENV_LOCATIONIQ_KEY,
    ENV_NEO4J_PASSWORD,
    ENV_NEO4J_URI,
    ENV_NEO4J_USER,
    ENV_OPENCRITIC_KEY,
    ENV_SALEOR_TOKEN,
    ENV_SALEOR_TOKEN_HOST,
    ENV_WRITER_URL,
    load_settings,
    source_mode,
)
from orchestration.trading_sources import AlphaVantageResource, CoinGeckoResource, FrankfurterResource
from orchestration.warehouse import WarehouseResource
from sensors.automation import automation_sensor
from sensors.crm_retrain import crm_retrain_sensor
from sensors.directory import directory_cache_expiry_sensor
from sensors.file_drops import crm_file_drops_sensor, gaming_file_drops_sensor
from sensors.tenants import tenant_registry_sensor

DOMAIN_MODULES = [
    tenancy,
    directory,
    gaming,
    esports,
    ecommerce,
    ecommerce_checks,
    crm,
    crm_scoring,
    crm_insights,
    knowledge,
    knowledge_graph,
    trading,
    analytics,
    trading_market,
]

# Source mode and fixtures are deployment settings, not secrets; keys stay EnvVars so the UI
# shows where they come from and never their values.
SOURCE_SETTINGS = {
    "mode": source_mode(),
    "fixtures_dir": str(load_settings().fixtures_dir),
}
# Replay answers come from disk: Steam's live spacing (1.5 s, and minutes after a 429) would
# keep the demo waiting minutes for ThrillRing's 50 games. Live mode keeps the published limits.
STEAM_PACE = {"min_interval_s": 0.01, "throttle_pause_s": 0.05} if source_mode() == "replay" else {}
# Likewise the market-data APIs' spacing (Alpha Vantage's free tier: 12 s between requests).
MARKET_PACE = {"min_interval_s": 0.0} if source_mode() == "replay" else {}


def _env(name: str) -> EnvVar | None:
    return EnvVar(name) if os.environ.get(name) else None


defs = Definitions(
    assets=[
        *load_assets_from_modules(DOMAIN_MODULES),
        analytics.tenant_registry,
        analytics.table_loads,
        *directory.source_apis,
        *gaming.source_apis,
        esports.news_feeds_source,
        esports.drop_folder_source,
        ecommerce.saleor_api,
        crm.crm_api,
        crm.crm_drop_folder,
        *trading_market.source_apis,
    ],
    asset_checks=load_asset_checks_from_modules(DOMAIN_MODULES),
    jobs=[
        directory.directory_refresh_job,
        gaming.gaming_catalogue_job,
        gaming.gaming_prices_job,
        esports.esports_news_job,
        esports.gaming_drops_job,
        ecommerce.ecommerce_products_job,
        ecommerce.ecommerce_orders_job,
        crm.crm_sync_job,
        crm.crm_drops_job,
        crm_scoring.crm_retrain_job,
        trading_market.market_prices_job,
        maintenance.retention_job,
    ],
    schedules=[
        analytics.nightly_marts_schedule,
        directory.directory_daily_refresh,
        gaming.gaming_weekly_catalogue,
        gaming.gaming_daily_prices,
        esports.esports_news_hourly,
        esports.gaming_drops_daily_sweep,
        ecommerce.ecommerce_products_schedule,
        ecommerce.ecommerce_orders_schedule,
        crm.crm_hourly_sync,
        trading_market.market_prices_daily,
        maintenance.retention_daily,
    ],
    sensors=[
        tenant_registry_sensor,
        automation_sensor,
        directory_cache_expiry_sensor,
        gaming_file_drops_sensor,
        crm_file_drops_sensor,
        crm_retrain_sensor,
    ],
    resources={
        "warehouse": WarehouseResource(database_url=EnvVar(ENV_WRITER_URL)),
        "nominatim": NominatimResource(**SOURCE_SETTINGS),
        "locationiq": LocationIQResource(**SOURCE_SETTINGS, api_key=_env(ENV_LOCATIONIQ_KEY)),
        "overpass": OverpassResource(**SOURCE_SETTINGS),
        "igdb": IgdbResource(
            **SOURCE_SETTINGS, client_id=_env(ENV_IGDB_CLIENT_ID), client_secret=_env(ENV_IGDB_CLIENT_SECRET)
        ),
        "steam": SteamStoreResource(**SOURCE_SETTINGS, **STEAM_PACE),
        "opencritic": OpenCriticResource(**SOURCE_SETTINGS, api_key=_env(ENV_OPENCRITIC_KEY)),
        "feeds": NewsFeedResource(**SOURCE_SETTINGS),
        "drops": DropFolderResource(root=str(load_settings().drops_dir)),
        "saleor": SaleorResource(
            **SOURCE_SETTINGS, app_token=_env(ENV_SALEOR_TOKEN), token_host=_env(ENV_SALEOR_TOKEN_HOST)
        ),
        # Replay answers come from disk; live CRMs keep the polite spacing.
        "crm_api_client": CrmLeadsResource(
            **SOURCE_SETTINGS, **({"min_interval_s": 0.0} if source_mode() == "replay" else {})
        ),
        "coingecko": CoinGeckoResource(
            **SOURCE_SETTINGS, **MARKET_PACE, api_key=_env(ENV_COINGECKO_KEY), plan=_env(ENV_COINGECKO_PLAN)
        ),
        "alphavantage": AlphaVantageResource(
            **SOURCE_SETTINGS, **MARKET_PACE, api_key=_env(ENV_ALPHAVANTAGE_KEY)
        ),
        "frankfurter": FrankfurterResource(**SOURCE_SETTINGS, **MARKET_PACE),
        "llm": LlmResource(
            **SOURCE_SETTINGS,
            base_url=_env(ENV_LLM_BASE_URL),
            api_key=_env(ENV_LLM_API_KEY),
            model=_env(ENV_LLM_MODEL),
        ),
        "embedding_model": embedding_model_from_env(env_vars=True),
        "neo4j": Neo4jResource(
            uri=_env(ENV_NEO4J_URI), user=_env(ENV_NEO4J_USER), password=_env(ENV_NEO4J_PASSWORD)
        ),
        "dbt": DbtCliResource(
            project_dir=analytics.dbt_project,
            profiles_dir=str(DBT_PROJECT_DIR),
            dbt_executable=DBT_EXECUTABLE,
        ),
    },
)
