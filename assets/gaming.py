"""ThrillRing's game catalogue: IGDB's popular games fused with Steam and OpenCritic, and a
daily Steam price snapshot so price changes and discounts have history.

`game_catalogue` (weekly): IGDB pages of the tenant's `featured_games` most rated games
(4 requests/s platform-wide), Steam `appdetails` and the review summary per game (the store
tolerates ~200 requests per 5 minutes, so requests are spaced platform-wide), and OpenCritic
by id, or by name once (a daily search budget), with the match confidence kept. Every answer is
stored in raw.gaming_api_responses before it is parsed. The partition is replaced atomically:
an IGDB or Steam failure leaves the previous catalogue as it was; OpenCritic being offline or
out of budget keeps each game's previous critic data and says so in the metadata.

`game_price_snapshots` (daily, tenant x day): one batched `filters=price_overview` request per
100 games instead of one per game.
"""

import re
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetExecutionContext,
    AssetSpec,
    BackfillPolicy,
    BetaWarning,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    MultiPartitionKey,
    RunRequest,
    SkipReason,
    asset,
    asset_check,
    define_asset_job,
    schedule,
)
from pydantic import Field

from assets.gaming_fetch import RAW_TABLE, CatalogueFetch, Matching, RawAnswers, StoredAnswers
from ml.gaming.catalogue import CATALOGUE_COLUMNS, fuse
from ml.gaming.names import DEFAULT_MIN_CONFIDENCE
from ml.gaming.prices import ISO_4217, price_changes
from ml.gaming.steam import entry_for, parse_price_entry
from orchestration.api_limits import ApiLedger
from orchestration.errors import PlatformError
from orchestration.gaming_sources import IgdbResource, OpenCriticResource, SteamStoreResource
from orchestration.metadata import preview_table
from orchestration.partitions import (
    DATE_DIMENSION,
    TENANT_DIMENSION,
    run_partitions,
    tenant_daily_partitions,
    tenant_partitions,
)
from orchestration.quality import skipped_check, validate
from orchestration.replay import UnrecordedRequestError
from orchestration.sources import Attempt, SourceError
from orchestration.tenant_settings import settings_error, tenant_settings
from orchestration.warehouse import WarehouseResource, write_partition

CATALOGUE_TABLE = "core.gaming_catalogue"
SNAPSHOT_TABLE = "core.gaming_price_snapshots"
MAX_FEATURED_GAMES = 5000
PRICE_HISTORY_START = "2026-10-01"

gaming_partitions = tenant_partitions("gaming")
price_partitions = tenant_daily_partitions("gaming", PRICE_HISTORY_START)

# The APIs themselves, so lineage in the UI starts where the data does.
source_apis = [
    AssetSpec(f"{name}_api", group_name="gaming", kinds={"api"}, description=description)
    for name, description in [
        ("igdb", "IGDB v4 /games (Twitch client-credentials token): the featured games, 4 requests/s."),
        ("steam", "Steam store appdetails and appreviews: prices, discounts, reviews (~200 requests/5 min)."),
        (
            "opencritic",
            "OpenCritic via RapidAPI: critic scores (free plan ~25 searches, ~200 requests a day).",
        ),
    ]
]
igdb_api, steam_api, opencritic_api = source_apis


# --- settings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GamingSettings:
    featured_games: int
    steam_country: str


def gaming_settings(tenant_id: str, settings: dict[str, Any]) -> GamingSettings:
    """The tenant's gaming settings, or a Failure that names the wrong key."""

    fail = settings_error(tenant_id, "gaming")

    gaming = settings.get("gaming") or {}
    if not isinstance(gaming, dict):
        raise fail("", "an object", gaming)
    featured = gaming.get("featured_games", 50)
    if isinstance(featured, bool) or not isinstance(featured, int) or not 1 <= featured <= MAX_FEATURED_GAMES:
        raise fail("featured_games", f"a whole number from 1 to {MAX_FEATURED_GAMES}", featured)
    country = gaming.get("steam_country", "us")
    if not isinstance(country, str) or not re.fullmatch(r"[A-Za-z]{2}", country.strip()):
        raise fail("steam_country", "a two-letter country code such as us or gb", country)
    return GamingSettings(featured, country.strip().lower())


def load_gaming_settings(warehouse: WarehouseResource, tenant_id: str) -> GamingSettings:
    return gaming_settings(tenant_id, tenant_settings(warehouse, tenant_id))


# --- game_catalogue -----------------------------------------------------------------------------


class GameCatalogueConfig(Config):
    min_match_confidence: float = Field(
        default=DEFAULT_MIN_CONFIDENCE,
        ge=0,
        le=1,
        description="OpenCritic hits below this name-match confidence are kept as 'no match'.",
    )
    research_unmatched_after_days: int = Field(
        default=28,
        ge=0,
        description="Search OpenCritic again for a game it did not know after this many days.",
    )
    reparse: bool = Field(
        default=False,
        description="Rebuild the catalogue from the answers its last refresh stored (after a parser fix); "
        "no API is called.",
    )


def _previous_catalogue(warehouse: WarehouseResource, tenant_id: str) -> dict[int, dict]:
    rows = warehouse.query(tenant_id, f"SELECT * FROM {CATALOGUE_TABLE} WHERE tenant_id = %s", (tenant_id,))
    return {row["igdb_id"]: row for row in rows}


@asset(
    partitions_def=gaming_partitions,
    group_name="gaming",
    kinds={"postgres", "api"},
    # One IGDB caller at a time across all runs (the pool's limit is 1); with the shared rate
    # slot this keeps the platform within IGDB's 4 requests/s.
    pool="igdb",
    deps=["tenant_registry", *source_apis],
    metadata={"table": CATALOGUE_TABLE},
    description=(
        "One row per featured game per tenant: IGDB (genres, platforms, rating, Steam id) fused "
        "with Steam (price, discount, reviews) and OpenCritic (critic score, matched by name with a "
        f"confidence), with each source's key. Raw answers are kept in {RAW_TABLE}."
    ),
)
def game_catalogue(
    context: AssetExecutionContext,
    config: GameCatalogueConfig,
    warehouse: WarehouseResource,
    igdb: IgdbResource,
    steam: SteamStoreResource,
    opencritic: OpenCriticResource,
) -> MaterializeResult:
    tenant_id = context.partition_key
    run_id = context.run.run_id
    settings = load_gaming_settings(warehouse, tenant_id)
    previous = _previous_catalogue(warehouse, tenant_id)
    started = time.perf_counter()
    ledger = ApiLedger(warehouse)
    raw = RawAnswers(warehouse, tenant_id, "game_catalogue", tenant_id, run_id)
    matching = Matching(config.min_match_confidence, config.research_unmatched_after_days)
    try:
        if config.reparse:
            fetch = StoredAnswers(warehouse, tenant_id, settings.featured_games)
        else:
            fetch = CatalogueFetch(
                igdb, steam, opencritic, ledger, raw, settings.featured_games, settings.steam_country
            )
        try:
            games, dropped, igdb_fetched_at = fetch.games()
            if not games:
                raise Failure(
                    f"IGDB returned no games for tenant {tenant_id!r}; the previous catalogue is kept"
                )
            context.log.info(f"IGDB: {len(games)} featured games; fetching Steam data")
            steam_data = [fetch.steam_data(game) for game in games]
            critics, report = fetch.critics(games, previous, matching)
        finally:
            fetch.close()
    except (SourceError, UnrecordedRequestError, PlatformError) as exc:
        raise Failure(
            description=f"the catalogue of {tenant_id!r} was not refreshed (the previous one is kept): {exc}",
            metadata=raw.metadata(len(previous)),
        ) from None
    finally:
        raw.close()

    now = datetime.now(UTC)
    rows = [
        {
            **fuse(
                game,
                steam_fields,
                critic,
                previous.get(game["igdb_id"]),
                igdb_fetched_at=igdb_fetched_at,
                steam_fetched_at=steam_fetched_at,
                now=now,
            ),
            "dagster_run_id": run_id,
            "answers_run_id": fetch.run_id if config.reparse else run_id,
        }
        for game, (steam_fields, steam_fetched_at), critic in zip(games, steam_data, critics, strict=True)
    ]
    with warehouse.tenant_transaction(tenant_id) as conn:
        # Writers of one tenant's catalogue go one at a time (the igdb pool already runs one
        # catalogue at a time; this also holds for runs started outside the pool).
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{CATALOGUE_TABLE}:{tenant_id}",))
        written = write_partition(
            conn,
            tenant_id,
            CATALOGUE_TABLE,
            rows,
            columns=(*CATALOGUE_COLUMNS, "dagster_run_id", "answers_run_id"),
            run_id=run_id,
        )
    elapsed = time.perf_counter() - started
    return MaterializeResult(
        metadata=_catalogue_metadata(
            rows, previous, raw, report, fetch.quota, ledger, dropped, written, elapsed
        )
    )


def _share(rows: list[dict], test) -> float:
    return round(sum(1 for r in rows if test(r)) / len(rows), 3) if rows else 0.0


def _catalogue_metadata(rows, previous, raw, report, quota, ledger, dropped, written, elapsed):
    statuses = Counter(r["steam_status"] for r in rows)
    critic = Counter(r["opencritic_status"] for r in rows)
    hashes = {r["igdb_id"]: r["content_hash"] for r in rows}
    metadata = {
        "dagster/row_count": MetadataValue.int(written),
        "games": MetadataValue.int(len(rows)),
        "games_new": MetadataValue.int(sum(1 for k in hashes if k not in previous)),
        "games_changed": MetadataValue.int(
            sum(1 for k, h in hashes.items() if k in previous and previous[k]["content_hash"] != h)
        ),
        "games_dropped": MetadataValue.int(sum(1 for k in previous if k not in hashes)),
        "igdb_records_dropped": MetadataValue.int(dropped),
        **raw.metadata(len(rows)),
        "rate_limit_wait_s": MetadataValue.float(round(ledger.waited_s, 2)),
        "steam_ok": MetadataValue.int(statuses["ok"]),
        "steam_unavailable": MetadataValue.int(statuses["unavailable"]),
        "not_on_steam": MetadataValue.int(statuses["not_on_steam"]),
        "share_on_steam": MetadataValue.float(_share(rows, lambda r: r["steam_status"] == "ok")),
        "free_games": MetadataValue.int(sum(1 for r in rows if r["is_free"])),
        "on_sale": MetadataValue.int(sum(1 for r in rows if (r["discount_percent"] or 0) > 0)),
        "opencritic_matched": MetadataValue.int(critic["matched"]),
        "opencritic_no_match": MetadataValue.int(critic["no_match"]),
        "opencritic_not_searched": MetadataValue.int(critic["not_searched"]),
        "share_opencritic_matched": MetadataValue.float(
            _share(rows, lambda r: r["opencritic_status"] == "matched")
        ),
        "opencritic_searches": MetadataValue.int(report.searches),
        "opencritic_details": MetadataValue.int(report.details),
        "opencritic_skipped_budget": MetadataValue.int(report.skipped_budget),
        # No-matches searched less than research_unmatched_after_days ago are not searched again.
        "opencritic_recent_no_match_kept": MetadataValue.int(report.kept_recent_no_match),
        "opencritic_searches_used_today": MetadataValue.int(ledger.used_today("opencritic_search")),
        "opencritic_requests_used_today": MetadataValue.int(ledger.used_today("opencritic")),
        "games_per_s": MetadataValue.float(round(len(rows) / elapsed, 1) if elapsed else 0.0),
        "preview": preview_table(
            [
                {
                    "rank": r["popularity_rank"],
                    "name": r["name"],
                    "steam": r["steam_appid"] or "-",
                    "price": "free" if r["is_free"] else _price(r),
                    "discount": r["discount_percent"],
                    "reviews": r["review_score_desc"],
                    "critic": r["critic_score"],
                    "match": r["opencritic_match_confidence"],
                    "flags": r["flags"],
                }
                for r in rows
            ],
            limit=15,
        ),
    }
    if remaining := quota.get("x-ratelimit-requests-remaining"):
        metadata["opencritic_plan_requests_remaining"] = MetadataValue.text(remaining)
    if report.note:
        metadata["opencritic_note"] = MetadataValue.text(report.note)
    if report.lost_shared_id:
        metadata["opencritic_shared_matches_dropped"] = MetadataValue.int(report.lost_shared_id)
    return metadata


def _price(row: dict) -> str | None:
    return f"{row['final_price']} {row['currency']}" if row["final_price"] is not None else None


# --- game_price_snapshots --------------------------------------------------------------------------


def check_snapshot_day(day: date, today: date, mode: str) -> None:
    """Steam has no price history: a live fetch is today's price, which may stand for today or
    for yesterday (the daily schedule snapshots the day that just ended). Writing it under an
    older day would overwrite that day's real snapshot, so a live backfill is refused. Replay
    serves the recorded prices of its fixed days, so any day is fine there."""
    if mode == "live" and not today - timedelta(days=1) <= day <= today:
        raise Failure(
            f"price snapshot for {day}: Steam only tells today's prices, so a live run can snapshot "
            f"{today - timedelta(days=1)} or {today}, not an older day (its stored snapshot is kept)"
        )


# A backfill of N days runs ceil(N/30) runs per tenant instead of N: each day is still its own
# fetch and its own atomic write (Steam has no history), only the run start-up is shared. Bounded,
# so a failure costs at most a month of retries and a run's event log stays small.
PRICE_DAYS_PER_RUN = 30
# As in trading_market: Dagster's beta warning for `backfill_policy` on @asset would open every
# CLI command's output.
warnings.filterwarnings(
    "ignore", message="Parameter `backfill_policy` of function `asset`", category=BetaWarning
)


@asset(
    partitions_def=price_partitions,
    group_name="gaming",
    kinds={"postgres", "api"},
    # Runs never call Steam concurrently; the rate slot spaces calls across every process.
    pool="steam",
    backfill_policy=BackfillPolicy.multi_run(PRICE_DAYS_PER_RUN),
    # Each day's partition reads its tenant's catalogue (Dagster maps the shared `tenant` dimension).
    deps=[game_catalogue, steam_api],
    metadata={"table": SNAPSHOT_TABLE},
    description=(
        "The day's Steam price of every catalogue game with a Steam id (major units, currency, "
        "discount, free, available), from batched price_overview requests (up to 100 games per "
        "request). One row per game per day; changes against the previous day in the metadata. "
        f"A backfill runs up to {PRICE_DAYS_PER_RUN} days per run, one fetch and write per day."
    ),
)
def game_price_snapshots(
    context: AssetExecutionContext, warehouse: WarehouseResource, steam: SteamStoreResource
) -> MaterializeResult:
    today = datetime.now(UTC).date()
    partitions = run_partitions(context)
    for days in partitions.values():
        for day in days:
            check_snapshot_day(day, today, steam.mode)
    metadata: dict[str, MetadataValue] = {}
    for tenant_id, days in partitions.items():
        settings = load_gaming_settings(warehouse, tenant_id)
        catalogue = warehouse.query(
            tenant_id,
            f"""SELECT igdb_id, name, steam_appid, coalesce(is_free, false) AS is_free
                  FROM {CATALOGUE_TABLE} WHERE tenant_id = %s ORDER BY popularity_rank""",
            (tenant_id,),
        )
        if not catalogue:
            raise Failure(f"tenant {tenant_id!r} has no game catalogue yet: materialize game_catalogue first")
        for i, day in enumerate(days, 1):
            metadata = _snapshot_day(context, warehouse, steam, settings, tenant_id, day, catalogue)
            if len(days) > 1:
                context.log.info(
                    f"{tenant_id} {day}: {metadata['dagster/row_count'].value} rows ({i}/{len(days)})"
                )
    days_in_run = sum(len(days) for days in partitions.values())
    if days_in_run > 1:
        metadata["days_in_run"] = MetadataValue.int(days_in_run)
    return MaterializeResult(metadata=metadata)


def _snapshot_day(context, warehouse, steam, settings, tenant_id, day, catalogue) -> dict[str, MetadataValue]:
    """Fetch and write one day's snapshot; its metadata (the run's last day's goes to the UI)."""
    games = [g for g in catalogue if g["steam_appid"] is not None]
    partition_key = MultiPartitionKey({TENANT_DIMENSION: tenant_id, DATE_DIMENSION: day.isoformat()})
    raw = RawAnswers(warehouse, tenant_id, "game_price_snapshots", partition_key, context.run.run_id)
    ledger = ApiLedger(warehouse)
    started = time.perf_counter()
    answers: dict[str, Any] = {}
    client = steam.http_client()
    try:
        for batch in steam.price_batches([g["steam_appid"] for g in games]):
            attempts: list[Attempt] = []
            try:
                answers.update(
                    steam.prices(
                        client,
                        batch,
                        settings.steam_country,
                        before_attempt=lambda: ledger.wait_for_slot("steam", steam.min_interval_s),
                        attempts=attempts,
                    )
                )
            finally:
                raw.store(attempts)
    except (SourceError, UnrecordedRequestError) as exc:
        raise Failure(
            description=(
                f"the {day} price snapshot of {tenant_id!r} was not taken (earlier days are kept): {exc}"
            ),
            metadata=raw.metadata(len(games)),
        ) from None
    finally:
        client.close()
        raw.close()

    fetched_at = datetime.now(UTC)
    rows = []
    for game in games:
        price = parse_price_entry(entry_for(answers, game["steam_appid"]))
        rows.append(
            {
                "igdb_id": game["igdb_id"],
                "steam_appid": game["steam_appid"],
                **price,
                # `data: []` has no price: free games (the catalogue knows which) or unpriced ones.
                "is_free": game["is_free"] and price["final_price"] is None,
                "fetched_at": fetched_at,
                "dagster_run_id": context.run.run_id,
            }
        )
    written = warehouse.replace_partition(
        tenant_id, SNAPSHOT_TABLE, rows, partition={"snapshot_date": day}, run_id=context.run.run_id
    )
    elapsed = time.perf_counter() - started
    names = {g["igdb_id"]: g["name"] for g in games}
    yesterday = warehouse.query(
        tenant_id,
        f"""SELECT igdb_id, currency, final_price, discount_percent, available FROM {SNAPSHOT_TABLE}
             WHERE tenant_id = %s AND snapshot_date = %s""",
        (tenant_id, day - timedelta(days=1)),
    )
    changes = price_changes(yesterday, [{**r, "name": names[r["igdb_id"]]} for r in rows])
    kinds = Counter(kind for change in changes for kind in change["kind"].split(","))
    metadata = {
        "dagster/row_count": MetadataValue.int(written),
        "snapshot_date": MetadataValue.text(day.isoformat()),
        "games_in_catalogue": MetadataValue.int(len(catalogue)),
        "games_priced": MetadataValue.int(sum(1 for r in rows if r["final_price"] is not None)),
        "free_games": MetadataValue.int(sum(1 for r in rows if r["is_free"])),
        "unavailable": MetadataValue.int(sum(1 for r in rows if not r["available"])),
        "on_sale": MetadataValue.int(sum(1 for r in rows if (r["discount_percent"] or 0) > 0)),
        **raw.metadata(len(games)),
        "rate_limit_wait_s": MetadataValue.float(round(ledger.waited_s, 2)),
        "rows_per_s": MetadataValue.float(round(written / elapsed, 1) if elapsed else 0.0),
        "previous_day_rows": MetadataValue.int(len(yesterday)),
        "price_changes": MetadataValue.int(len(changes)),
        **{f"changes_{k}": MetadataValue.int(kinds[k]) for k in _CHANGE_KINDS},
        "changes": preview_table(changes, limit=20),
    }
    return metadata


_CHANGE_KINDS = ("price_up", "price_down", "discount_started", "discount_ended", "listed", "delisted")


# --- checks -----------------------------------------------------------------------------------------


@asset_check(
    asset=game_catalogue,
    blocking=True,
    description=(
        "Great Expectations suite on the tenant's catalogue: no duplicate games (IGDB, Steam and "
        "OpenCritic ids unique), names, ratings in range (IGDB total rating and OpenCritic score "
        "0-100, Steam review score 0-9), prices non-negative in a known ISO 4217 currency, "
        "discounts 0-100, match confidence 0-1."
    ),
)
def game_catalogue_valid(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    tenant_id = context.partition_key if context.has_partition_key else None
    if tenant_id is None:
        return skipped_check()
    columns = [
        "igdb_id",
        "steam_appid",
        "opencritic_id",
        "name",
        "total_rating",
        "critic_score",
        "percent_recommended",
        "review_score",
        "initial_price",
        "final_price",
        "discount_percent",
        "currency",
        "opencritic_match_confidence",
    ]
    rows = warehouse.query(
        tenant_id,
        f"""SELECT igdb_id, steam_appid, opencritic_id, name, total_rating::float8, critic_score::float8,
                   percent_recommended::float8, review_score, initial_price::float8, final_price::float8,
                   discount_percent, currency, opencritic_match_confidence::float8
              FROM {CATALOGUE_TABLE} WHERE tenant_id = %s""",
        (tenant_id,),
    )
    frame = pd.DataFrame(rows, columns=columns)
    return validate(
        "game_catalogue",
        frame,
        lambda gxe: [
            gxe.ExpectColumnValuesToBeUnique(column="igdb_id"),
            gxe.ExpectColumnValuesToBeUnique(column="steam_appid"),
            gxe.ExpectColumnValuesToBeUnique(column="opencritic_id"),
            gxe.ExpectColumnValueLengthsToBeBetween(column="name", min_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="total_rating", min_value=0, max_value=100),
            gxe.ExpectColumnValuesToBeBetween(column="critic_score", min_value=0, max_value=100),
            gxe.ExpectColumnValuesToBeBetween(column="percent_recommended", min_value=0, max_value=100),
            gxe.ExpectColumnValuesToBeBetween(column="review_score", min_value=0, max_value=9),
            gxe.ExpectColumnValuesToBeBetween(column="initial_price", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="final_price", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="discount_percent", min_value=0, max_value=100),
            gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=sorted(ISO_4217)),
            gxe.ExpectColumnValuesToBeBetween(column="opencritic_match_confidence", min_value=0, max_value=1),
        ],
    )


@asset_check(
    asset=game_price_snapshots,
    blocking=True,
    description=(
        "Great Expectations suite on the day's snapshot: one row per game, prices non-negative "
        "and the final price not above the initial one, a known ISO 4217 currency, discounts 0-100."
    ),
)
def game_price_snapshots_valid(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    if not context.has_partition_key:
        return skipped_check()
    keys = context.partition_key.keys_by_dimension
    tenant_id, day = keys[TENANT_DIMENSION], date.fromisoformat(keys[DATE_DIMENSION])
    columns = ["igdb_id", "steam_appid", "currency", "initial_price", "final_price", "discount_percent"]
    rows = warehouse.query(
        tenant_id,
        f"""SELECT igdb_id, steam_appid, currency, initial_price::float8, final_price::float8,
                   discount_percent FROM {SNAPSHOT_TABLE} WHERE tenant_id = %s AND snapshot_date = %s""",
        (tenant_id, day),
    )
    frame = pd.DataFrame(rows, columns=columns)
    return validate(
        "game_price_snapshots",
        frame,
        lambda gxe: [
            gxe.ExpectColumnValuesToBeUnique(column="igdb_id"),
            gxe.ExpectColumnValuesToBeUnique(column="steam_appid"),
            gxe.ExpectColumnValuesToBeBetween(column="initial_price", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="final_price", min_value=0),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="initial_price",
                column_B="final_price",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            ),
            gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=sorted(ISO_4217)),
            gxe.ExpectColumnValuesToBeBetween(column="discount_percent", min_value=0, max_value=100),
        ],
    )


# --- jobs and schedules ---------------------------------------------------------------------------

gaming_catalogue_job = define_asset_job(
    "gaming_catalogue_refresh",
    selection=[game_catalogue],
    description="Refresh a gaming tenant's catalogue from IGDB, Steam and OpenCritic.",
)
gaming_prices_job = define_asset_job(
    "gaming_price_snapshot",
    selection=[game_price_snapshots],
    description="Take a gaming tenant's daily Steam price snapshot.",
)


@schedule(job=gaming_catalogue_job, cron_schedule="0 5 * * 1", execution_timezone="UTC")
def gaming_weekly_catalogue(context):
    """Every gaming tenant's catalogue, Mondays 05:00 UTC (IGDB popularity and critic scores move
    slowly; prices have their own daily snapshot)."""
    for tenant_id in context.instance.get_dynamic_partitions(gaming_partitions.name):
        yield RunRequest(
            run_key=f"{tenant_id}:{context.scheduled_execution_time:%Y-%m-%d}",
            partition_key=tenant_id,
            tags={"bizosaas/trigger": "weekly_catalogue"},
        )


@schedule(job=gaming_prices_job, cron_schedule="0 6 * * *", execution_timezone="UTC")
def gaming_daily_prices(context):
    """Every gaming tenant's snapshot for the previous (complete) day, 06:00 UTC."""
    day = (context.scheduled_execution_time - timedelta(days=1)).strftime("%Y-%m-%d")
    days = price_partitions.get_partitions_def_for_dimension(DATE_DIMENSION)
    if not days.has_partition_key(day):
        return SkipReason(f"{day} is outside the price partitions (replay data ends before it)")
    return [
        RunRequest(
            run_key=f"{tenant_id}:{day}",
            partition_key=MultiPartitionKey({TENANT_DIMENSION: tenant_id, DATE_DIMENSION: day}),
            tags={"bizosaas/trigger": "daily_prices"},
        )
        for tenant_id in context.instance.get_dynamic_partitions(gaming_partitions.name)
    ]
