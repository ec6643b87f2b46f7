"""QuantTrade's market data: `market_prices`, one daily OHLCV bar per symbol of the tenant's
universe (settings.trading.universe) per day, from CoinGecko (crypto), Alpha Vantage (stocks) and
Frankfurter (ECB forex fixes).

Partitions are tenant x day and a range of days runs as one run (a single-run backfill policy):
one request per symbol (two for a coin: candles and volumes) whatever the number of days, and the
history length comes from a fixed ladder (see orchestration/trading_sources.py). Every answer is
stored in raw.trading_api_responses before it is parsed. The run then replaces exactly the
requested days of the symbols that answered, in one transaction; a symbol whose source failed
keeps its stored rows, and the run fails afterwards naming it (the others' fresh bars are kept),
so a data engineer sees a red run and the reason, and a re-run of the same days refetches all.
"""

import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
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

from ml.trading.bars import (
    BarsError,
    clean_bars,
    find_gaps,
    gap_ranges,
    parse_alphavantage,
    parse_coingecko,
    parse_frankfurter,
)
from ml.trading.universe import ASSET_CLASSES, SOURCE_OF, Instrument
from orchestration.api_limits import ApiLedger, BudgetExhaustedError
from orchestration.materialize import HISTORY_TAG
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
from orchestration.tenant_settings import tenant_settings
from orchestration.trading_settings import trading_universe
from orchestration.trading_sources import (
    AlphaVantageResource,
    CoinGeckoResource,
    FrankfurterResource,
    QuotaSpentError,
    now_of,
    source_today,
)
from orchestration.warehouse import WarehouseResource, append_rows, upsert_rows

PRICES_TABLE = "core.market_prices"
RAW_TABLE = "raw.trading_api_responses"
HISTORY_START = "2019-01-01"
PRICE_COLUMNS = ("open", "high", "low", "close", "volume")

market_partitions = tenant_daily_partitions("trading", HISTORY_START)
trading_tenants = tenant_partitions("trading")

source_apis = [
    AssetSpec(f"{name}_api", group_name="trading", kinds={"api"}, description=description)
    for name, description in [
        ("coingecko", "CoinGecko /coins/{id}/ohlc and /market_chart (daily candles, 24-hour volumes)."),
        ("alphavantage", "Alpha Vantage TIME_SERIES_DAILY (stocks; free tier 25 requests a day)."),
        ("frankfurter", "Frankfurter: the ECB's euro reference rates, one fix per TARGET day (forex)."),
    ]
]
coingecko_api, alphavantage_api, frankfurter_api = source_apis


# --- settings -------------------------------------------------------------------------------------


def load_universe(warehouse: WarehouseResource, tenant_id: str) -> list[Instrument]:
    return trading_universe(tenant_id, tenant_settings(warehouse, tenant_id))


# --- fetching -------------------------------------------------------------------------------------


@dataclass
class SymbolResult:
    instrument: Instrument
    bars: list[dict] = field(default_factory=list)
    error: str | None = None
    duplicate_days: list[date] = field(default_factory=list)
    invalid: list[dict] = field(default_factory=list)
    partial_dropped: int = 0
    gaps: list[date] = field(default_factory=list)


class MarketFetch:
    """One run's calls: each symbol's answers stored in raw.trading_api_responses (its own
    transaction, whatever the outcome) before they are parsed; calls counted per source."""

    def __init__(self, warehouse, tenant_id, partition, run_id, coingecko, alphavantage, frankfurter):
        self.warehouse, self.tenant_id, self.partition, self.run_id = warehouse, tenant_id, partition, run_id
        self.coingecko, self.alphavantage, self.frankfurter = coingecko, alphavantage, frankfurter
        self.ledger = ApiLedger(warehouse)
        self.calls: Counter[str] = Counter()
        self.clients: dict[str, Any] = {}
        self.stopped: dict[str, str] = {}  # source -> why no more calls this run (a spent quota)

    def client(self, resource):
        if resource.source not in self.clients:
            self.clients[resource.source] = resource.http_client()
        return self.clients[resource.source]

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        self.ledger.close()

    def store(self, symbol: str, attempts: list[Attempt]) -> None:
        if not attempts:
            return
        rows = [
            {
                "partition_key": self.partition,
                "source": a.source,
                "symbol": symbol,
                "request": a.request,
                "status": a.status,
                "body": a.body,
                "attempt": a.attempt,
                "fetched_at": a.fetched_at,
                "dagster_run_id": self.run_id,
            }
            for a in attempts
        ]
        with self.warehouse.tenant_transaction(self.tenant_id) as conn:
            append_rows(conn, self.tenant_id, RAW_TABLE, rows)
        self.calls.update(a.source for a in attempts)

    def _slot(self, resource, budget: int | None = None):
        def before_attempt() -> None:
            if budget is not None:
                self.ledger.spend(resource.source, budget)
            self.ledger.wait_for_slot(resource.source, resource.min_interval_s)

        return before_attempt

    def bars(self, instrument: Instrument, days: list[date]) -> SymbolResult:
        result = SymbolResult(instrument)
        source = instrument.source
        if source in self.stopped:
            result.error = self.stopped[source]
            return result
        first = days[0]
        attempts: list[Attempt] = []
        try:
            if source == "coingecko":
                today = source_today(self.coingecko.mode)
                ohlc, chart = self.coingecko.daily_bars_answers(
                    self.client(self.coingecko),
                    instrument.source_id,
                    first,
                    today,
                    before_attempt=self._slot(self.coingecko),
                    attempts=attempts,
                )
                parsed, result.partial_dropped = parse_coingecko(ohlc, chart, now_of(today))
            elif source == "alphavantage":
                body = self.alphavantage.daily(
                    self.client(self.alphavantage),
                    instrument.source_id,
                    first,
                    source_today(self.alphavantage.mode),
                    before_attempt=self._slot(self.alphavantage, self.alphavantage.daily_limit),
                    attempts=attempts,
                )
                parsed = parse_alphavantage(body)
            else:
                body = self.frankfurter.series(
                    self.client(self.frankfurter),
                    instrument.base,
                    instrument.currency,
                    first,
                    source_today(self.frankfurter.mode),
                    before_attempt=self._slot(self.frankfurter),
                    attempts=attempts,
                )
                parsed = parse_frankfurter(body, instrument.currency)
        except BudgetExhaustedError as exc:
            result.error = self.stopped[source] = str(exc)
        except SourceError as exc:
            result.error = str(exc)
            if isinstance(exc, QuotaSpentError):
                self.stopped[source] = f"{source}: not called (the daily quota was spent earlier in this run)"
        except (BarsError, UnrecordedRequestError) as exc:
            result.error = f"{source}: {exc}"
        else:
            wanted = set(days)
            cleaned = clean_bars(b for b in parsed if b["day"] in wanted)
            result.bars, result.duplicate_days, result.invalid = (
                cleaned.bars,
                cleaned.duplicate_days,
                cleaned.invalid,
            )
            result.gaps = find_gaps(
                instrument.asset_class, [b["day"] for b in cleaned.bars], days[0], days[-1]
            )
        finally:
            self.store(instrument.symbol, attempts)
        return result


# --- market_prices --------------------------------------------------------------------------------


class MarketPricesConfig(Config):
    symbols: list[str] = Field(
        default_factory=list,
        description="Refresh only these symbols of the universe (e.g. the one a failed run named); "
        "empty = the whole universe.",
    )


def _range_label(tenant_id: str, days: list[date]) -> str:
    return f"{days[0]}..{days[-1]}|{tenant_id}" if len(days) > 1 else f"{days[0]}|{tenant_id}"


def write_bars(conn, tenant_id: str, results: list[SymbolResult], days: list[date], run_id: str) -> int:
    """Write the new bars of the symbols that answered (in the caller's transaction). A stored
    bar is replaced only by a new, valid bar of its day: a day the answer lacks, or whose bar
    was invalid or contradicted itself, keeps what is stored (the gaps check reports it)."""
    done = [r for r in results if r.error is None]
    if not done:
        return 0
    fetched_at = datetime.now(UTC)  # a replaced bar is as fresh as its answer, not its first load
    rows = [
        {
            "symbol": r.instrument.symbol,
            "day": bar["day"],
            "asset_class": r.instrument.asset_class,
            "source": r.instrument.source,
            "currency": r.instrument.currency,
            **{k: bar[k] for k in PRICE_COLUMNS},
            "fetched_at": fetched_at,
            "dagster_run_id": run_id,
        }
        for r in done
        for bar in r.bars
    ]
    upsert_rows(conn, tenant_id, PRICES_TABLE, rows, key=("symbol", "day"), run_id=run_id)
    return len(rows)


# Dagster marks `backfill_policy` on @asset (not on @multi_asset) as beta; its warning at import
# time would open every CLI command's output and hide the one line an error is.
warnings.filterwarnings(
    "ignore", message="Parameter `backfill_policy` of function `asset`", category=BetaWarning
)


@asset(
    partitions_def=market_partitions,
    group_name="trading",
    kinds={"postgres", "api"},
    # One market-data run at a time across the platform: the three APIs' rate slots and Alpha
    # Vantage's daily budget are shared anyway, and an asset has one pool.
    pool="market_data",
    backfill_policy=BackfillPolicy.single_run(),
    deps=["tenant_registry", *source_apis],
    metadata={"table": PRICES_TABLE},
    # The demo and a manual `bizosaas materialize` load every day since HISTORY_START (one
    # request per symbol): strategies need years of bars.
    tags={HISTORY_TAG: "full"},
    description=(
        "One daily OHLCV bar per symbol of the tenant's universe (settings.trading.universe) per UTC "
        "day: crypto from CoinGecko, stocks from Alpha Vantage, forex from the ECB via Frankfurter "
        "(one fix a day: open = high = low = close, no volume). A run over many days makes one "
        f"request per symbol; raw answers are kept in {RAW_TABLE}."
    ),
)
def market_prices(
    context: AssetExecutionContext,
    config: MarketPricesConfig,
    warehouse: WarehouseResource,
    coingecko: CoinGeckoResource,
    alphavantage: AlphaVantageResource,
    frankfurter: FrankfurterResource,
) -> MaterializeResult:
    run_id = context.run.run_id
    started = time.perf_counter()
    results: list[SymbolResult] = []
    written, calls = 0, Counter()
    ledger = ApiLedger(warehouse)
    av_before = ledger.used_today("alphavantage")  # the budget is platform-wide, not per tenant
    for tenant_id, days in run_partitions(context).items():
        instruments = load_universe(warehouse, tenant_id)
        if config.symbols:
            unknown = sorted(set(config.symbols) - {i.symbol for i in instruments})
            if unknown:
                raise Failure(f"config.symbols names symbols outside {tenant_id!r}'s universe: {unknown}")
            instruments = [i for i in instruments if i.symbol in config.symbols]
        fetch = MarketFetch(
            warehouse, tenant_id, _range_label(tenant_id, days), run_id, coingecko, alphavantage, frankfurter
        )
        try:
            tenant_results = []
            for instrument in instruments:
                result = fetch.bars(instrument, days)
                tenant_results.append(result)
                context.log.info(
                    f"{tenant_id} {instrument.symbol}: "
                    + (f"FAILED {result.error}" if result.error else f"{len(result.bars)} bars")
                )
            calls += fetch.calls
        finally:
            fetch.close()
        with warehouse.tenant_transaction(tenant_id) as conn:
            # One writer of a tenant's prices at a time (a schedule tick racing a backfill).
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{PRICES_TABLE}:{tenant_id}",))
            written += write_bars(conn, tenant_id, tenant_results, days, run_id)
        results += tenant_results

    av_used = ledger.used_today("alphavantage")
    ledger.close()
    all_days = sorted({d for days in run_partitions(context).values() for d in days})
    metadata = _metadata(results, all_days, written, calls, alphavantage, av_before, av_used, started)
    failed = [r for r in results if r.error]
    if failed:
        names = "; ".join(f"{r.instrument.symbol}: {r.error}" for r in failed)
        raise Failure(
            description=(
                f"{len(failed)} of {len(results)} symbols not refreshed (their stored bars are kept; "
                f"the other symbols' bars are written): {names}"
            ),
            metadata=metadata,
        )
    return MaterializeResult(metadata=metadata)


def _metadata(results, days, written, calls, alphavantage, av_before, av_used, started):
    elapsed = time.perf_counter() - started
    gaps = {r.instrument.symbol: gap_ranges(r.gaps) for r in results if r.gaps}
    return {
        "dagster/row_count": MetadataValue.int(written),
        "days": MetadataValue.int(len(days)),
        "first_day": MetadataValue.text(str(days[0]) if days else "-"),
        "last_day": MetadataValue.text(str(days[-1]) if days else "-"),
        "symbols": MetadataValue.int(len(results)),
        "symbols_failed": MetadataValue.int(sum(1 for r in results if r.error)),
        "rows_per_symbol": MetadataValue.json({r.instrument.symbol: len(r.bars) for r in results}),
        **{f"api_calls_{s}": MetadataValue.int(calls.get(s, 0)) for s in SOURCE_OF.values()},
        "api_calls_total": MetadataValue.int(sum(calls.values())),
        "alphavantage_budget_used_today": MetadataValue.int(av_used),
        "alphavantage_budget_left_today": MetadataValue.int(max(0, alphavantage.daily_limit - av_used)),
        "alphavantage_calls_this_run": MetadataValue.int(av_used - av_before),
        "gaps": MetadataValue.int(sum(len(r.gaps) for r in results)),
        "gap_days": MetadataValue.json(gaps),
        "duplicate_days_in_answers": MetadataValue.json(
            {r.instrument.symbol: [str(d) for d in r.duplicate_days] for r in results if r.duplicate_days}
        ),
        "bars_rejected": MetadataValue.json(
            {
                r.instrument.symbol: [f"{i['day']}: {i['reason']}" for i in r.invalid][:20]
                for r in results
                if r.invalid
            }
        ),
        "partial_bars_dropped": MetadataValue.int(sum(r.partial_dropped for r in results)),
        "rows_per_s": MetadataValue.float(round(written / elapsed, 1) if elapsed else 0.0),
        "preview": preview_table(
            [
                {
                    "symbol": r.instrument.symbol,
                    "class": r.instrument.asset_class,
                    "source": r.instrument.source,
                    "bars": len(r.bars),
                    "last_day": str(r.bars[-1]["day"]) if r.bars else "-",
                    "last_close": round(r.bars[-1]["close"], 6) if r.bars else None,
                    "status": r.error or "ok",
                }
                for r in results
            ],
            limit=50,
        ),
    }


# --- checks ---------------------------------------------------------------------------------------


def _stored(warehouse: WarehouseResource, tenant_id: str, days: list[date] | None = None) -> pd.DataFrame:
    columns = ["symbol", "day", "asset_class", "source", "open", "high", "low", "close", "volume"]
    where, params = ("AND day = ANY(%s)", (tenant_id, days)) if days is not None else ("", (tenant_id,))
    rows = warehouse.query(
        tenant_id,
        f"SELECT {', '.join(columns)} FROM {PRICES_TABLE} WHERE tenant_id = %s {where} ORDER BY symbol, day",
        params,
    )
    frame = pd.DataFrame(rows, columns=columns)
    frame["high_over_max_open_close"] = frame["high"] - frame[["open", "close"]].max(axis=1)
    frame["min_open_close_over_low"] = frame[["open", "close"]].min(axis=1) - frame["low"]
    return frame


@asset_check(
    asset=market_prices,
    blocking=True,
    description=(
        "Great Expectations suite on the run's days: one bar per (symbol, day), prices positive, "
        "high >= max(open, close) and min(open, close) >= low, volume non-negative, known asset "
        "classes and sources."
    ),
)
def market_prices_valid(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    partitions = run_partitions(context)
    if not partitions:
        return skipped_check()
    frame = pd.concat([_stored(warehouse, tenant, days) for tenant, days in partitions.items()])
    return validate(
        "market_prices",
        frame,
        lambda gxe: [
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["symbol", "day"]),
            *(
                gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, strict_min=True)
                for c in PRICE_COLUMNS[:4]
            ),
            gxe.ExpectColumnValuesToBeBetween(column="volume", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="high_over_max_open_close", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="min_open_close_over_low", min_value=0),
            gxe.ExpectColumnValuesToBeInSet(column="asset_class", value_set=list(ASSET_CLASSES)),
            gxe.ExpectColumnValuesToBeInSet(column="source", value_set=sorted(set(SOURCE_OF.values()))),
        ],
    )


def find_stored_gaps(frame: pd.DataFrame, universe: list[Instrument]) -> dict[str, list[str]]:
    """Per symbol of the universe: the expected days missing between its first and last stored
    bar (crypto every day, stocks NYSE sessions, forex TARGET days), or 'no bars'."""
    gaps: dict[str, list[str]] = {}
    for instrument in universe:
        days = list(frame.loc[frame["symbol"] == instrument.symbol, "day"])
        if not days:
            gaps[instrument.symbol] = ["no bars"]
        elif missing := find_gaps(instrument.asset_class, days):
            gaps[instrument.symbol] = gap_ranges(missing)
    return gaps


@asset_check(
    asset=market_prices,
    description=(
        "Warns when a symbol of the universe misses a bar on a day its calendar trades (crypto any "
        "day, stocks NYSE sessions, forex TARGET days) between its first and last stored bar, or has "
        "no bars at all; the metadata lists the missing days."
    ),
)
def market_prices_gaps(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    partitions = run_partitions(context)
    if not partitions:
        return skipped_check()
    gaps: dict[str, list[str]] = {}
    for tenant_id in partitions:
        universe = load_universe(warehouse, tenant_id)
        gaps.update(
            {
                f"{tenant_id}:{symbol}" if len(partitions) > 1 else symbol: missing
                for symbol, missing in find_stored_gaps(_stored(warehouse, tenant_id), universe).items()
            }
        )
    return AssetCheckResult(
        passed=not gaps,
        severity=AssetCheckSeverity.WARN,
        description=f"{len(gaps)} symbol(s) with missing bars" if gaps else "no missing bars",
        metadata={
            "symbols_with_gaps": MetadataValue.int(len(gaps)),
            "gaps": MetadataValue.json(gaps),
        },
    )


# --- job and schedule -----------------------------------------------------------------------------

market_prices_job = define_asset_job(
    "market_prices_daily",
    selection=[market_prices],
    description="Refresh a trading tenant's market prices for a day (or a range, as one run).",
)


@schedule(job=market_prices_job, cron_schedule="30 1 * * *", execution_timezone="UTC")
def market_prices_daily(context):
    """Every trading tenant's bars of the previous UTC day, at 01:30 UTC: US markets have closed,
    CoinGecko's daily candle is final (from 00:35 UTC) and the ECB fix is out since 16:00 CET."""
    day = (context.scheduled_execution_time - timedelta(days=1)).strftime("%Y-%m-%d")
    days = market_partitions.get_partitions_def_for_dimension(DATE_DIMENSION)
    if not days.has_partition_key(day):
        return SkipReason(f"{day} is outside the market_prices partitions (replay data ends before it)")
    return [
        RunRequest(
            run_key=f"{tenant_id}:{day}",
            partition_key=MultiPartitionKey({TENANT_DIMENSION: tenant_id, DATE_DIMENSION: day}),
            tags={"bizosaas/trigger": "daily_market_prices"},
        )
        for tenant_id in context.instance.get_dynamic_partitions(trading_tenants.name)
    ]
