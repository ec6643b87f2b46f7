"""market_prices end to end on the real Postgres and Dagster instance, replaying the recorded
CoinGecko, Alpha Vantage and Frankfurter answers in fixtures/ through the real clients.

QuantTrade's whole history is loaded the way `make demo` does it (the CLI planner: one run over
every day); the edge cases run on a tenant of their own (`trading_edge`)."""

from datetime import date

import psycopg
import pytest
from dagster import AssetKey, MultiPartitionKey, materialize
from psycopg.types.json import Jsonb

from assets import trading_market as tm
from orchestration import tenants
from orchestration.api_limits import ApiLedger, BudgetExhaustedError
from orchestration.materialize import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from orchestration.trading_sources import AlphaVantageResource, CoinGeckoResource, FrankfurterResource
from orchestration.warehouse import WarehouseResource, set_tenant

PRICES = AssetKey("market_prices")
EDGE = "trading_edge"
LAST_DAY = date(2026, 11, 24)
CHECKS = [tm.market_prices_valid, tm.market_prices_gaps]


def _query(platform, tenant, sql, params=()):
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, tenant)
        return conn.execute(sql, params).fetchall()


def _resources(platform):
    return {
        "warehouse": WarehouseResource(database_url=platform.writer_url),
        "coingecko": CoinGeckoResource(min_interval_s=0),
        "alphavantage": AlphaVantageResource(min_interval_s=0),
        "frankfurter": FrankfurterResource(min_interval_s=0),
    }


def _run(platform, instance, tenant, first, last=None, **kwargs):
    keys = [MultiPartitionKey({"tenant": tenant, "date": str(d)}) for d in (first, last or first)]
    tags = {ASSET_PARTITION_RANGE_START_TAG: str(keys[0]), ASSET_PARTITION_RANGE_END_TAG: str(keys[1])}
    return materialize(
        [tm.market_prices, *CHECKS, *tm.source_apis],
        selection=[PRICES],
        instance=instance,
        resources=_resources(platform),
        raise_on_error=False,
        **({"partition_key": keys[0]} if last is None else {"tags": tags}),
        **kwargs,
    )


def _check(result, name):
    [evaluation] = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.check_name == name
    ]
    return evaluation


def _failure(result) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.event_specific_data.error.message


@pytest.fixture(scope="module")
def history(materialized):
    """QuantTrade's full history, as the session's demo-like materialization planned and ran it
    (running it again here would cost the suite another couple of minutes)."""
    runs = [o for o in materialized if o.run.assets == [PRICES] and "quanttrade" in o.run.label]
    assert [o.success for o in runs] == [True], [o.error for o in runs]
    return runs[0]


@pytest.fixture(scope="module")
def edge_tenant(platform, dagster_instance):
    with platform.admin() as conn:
        conn.execute(
            """INSERT INTO core.tenants (tenant_id, display_name, kind, parent_tenant_id, tier, domains)
               VALUES (%s, 'Trading edge cases', 'client', 'bizoholic', 'starter', '{trading}')
               ON CONFLICT (tenant_id) DO NOTHING""",
            (EDGE,),
        )
    dagster_instance.add_dynamic_partitions(tm.trading_tenants.name, [EDGE])
    yield EDGE
    # The failing runs above leave market_prices' checks planned but never evaluated; the
    # session's other tests read every check's latest evaluation, so end on a passing one.
    restored = _run(platform, dagster_instance, "quanttrade", LAST_DAY)
    assert restored.success and _check(restored, "market_prices_valid").passed
    with platform.admin() as conn:
        tenants.offboard(conn, EDGE)
    dagster_instance.delete_dynamic_partition(tm.trading_tenants.name, EDGE)


def _universe(platform, *symbols):
    with platform.admin() as conn:
        conn.execute(
            """UPDATE core.tenants SET settings = jsonb_set(settings, '{trading}', %s, true)
                WHERE tenant_id = %s""",
            (Jsonb({"universe": list(symbols)}), EDGE),
        )


def test_the_whole_history_loads_in_one_run_with_one_request_per_symbol(platform, dagster_instance, history):
    assert history.run.partition_range is not None and "2019-01-01..2026-11-24" in history.run.label
    rows = dict(
        _query(platform, "quanttrade", "SELECT symbol, count(*) FROM core.market_prices GROUP BY symbol")
    )
    # crypto every day, stocks on NYSE sessions, forex on TARGET days, 2019-01-01..2026-11-24
    assert rows == {"BTC-USD": 2885, "ETH-USD": 2885, "AAPL": 1986, "MSFT": 1986, "EURUSD": 2023}
    # The run's own events: later tests (and the session's other runs) materialize prices again.
    events = dagster_instance.all_logs(history.run_id)
    materializations = [e.asset_materialization for e in events if e.asset_materialization is not None]
    assert materializations and all(m.asset_key == PRICES for m in materializations)
    meta = {k: v.value for k, v in materializations[-1].metadata.items()}
    assert (meta["api_calls_coingecko"], meta["api_calls_alphavantage"], meta["api_calls_frankfurter"]) == (
        4,
        2,
        1,
    )
    assert meta["gaps"] == 0 and meta["symbols_failed"] == 0 and meta["partial_bars_dropped"] == 2
    assert meta["days"] == 2885 and meta["rows_per_symbol"]["AAPL"] == 1986
    stored = _query(
        platform,
        "quanttrade",
        "SELECT count(*), count(DISTINCT dagster_run_id) FROM raw.trading_api_responses",
    )
    assert stored[0][0] >= 7
    evaluations = {
        e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data.passed
        for e in events
        if e.dagster_event is not None and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert evaluations == {"market_prices_valid": True, "market_prices_gaps": True}


def test_a_day_refresh_replaces_only_that_day(platform, dagster_instance, history):
    before = _query(
        platform,
        "quanttrade",
        "SELECT symbol, day, fetched_at, dagster_run_id FROM core.market_prices ORDER BY symbol, day",
    )
    result = _run(platform, dagster_instance, "quanttrade", LAST_DAY)
    assert result.success and _check(result, "market_prices_valid").passed
    after = _query(
        platform,
        "quanttrade",
        "SELECT symbol, day, fetched_at, dagster_run_id FROM core.market_prices ORDER BY symbol, day",
    )
    assert [r[:2] for r in after] == [r[:2] for r in before]
    changed = [a for a, b in zip(after, before, strict=True) if a != b]
    assert {r[1] for r in changed} == {LAST_DAY} and len(changed) == 5
    assert all(
        r[3] == result.run_id and r[2] > b[2] for r, b in zip(after, before, strict=True) if r[1] == LAST_DAY
    )
    # the short end of the ladder: 7 days of crypto, compact stocks, 7 days of ECB rates
    requests = [
        r[0]
        for r in _query(
            platform,
            "quanttrade",
            "SELECT request FROM raw.trading_api_responses WHERE dagster_run_id = %s",
            (result.run_id,),
        )
    ]
    assert len(requests) == 7 and all("apikey" not in r for r in requests)
    assert sum("days=7" in r for r in requests) == 4 and sum("outputsize=compact" in r for r in requests) == 2


def test_gaps_are_reported_and_closed_by_refreshing_the_days(platform, dagster_instance, history):
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, "quanttrade")
        conn.execute(
            """DELETE FROM core.market_prices WHERE (symbol = 'BTC-USD' AND day = '2026-11-10')
                  OR (symbol = 'AAPL' AND day IN ('2026-11-12', '2026-11-13'))"""
        )
    result = _run(platform, dagster_instance, "quanttrade", date(2026, 11, 20))
    gaps = _check(result, "market_prices_gaps")
    assert result.success and not gaps.passed and gaps.severity.value == "WARN"
    assert gaps.metadata["gaps"].value == {"BTC-USD": ["2026-11-10"], "AAPL": ["2026-11-12..2026-11-13"]}
    # a range of days is one run; afterwards no gap is left and the check passes again
    closed = _run(platform, dagster_instance, "quanttrade", date(2026, 11, 9), date(2026, 11, 13))
    assert closed.success and _check(closed, "market_prices_gaps").passed
    meta = closed.asset_materializations_for_node("market_prices")[0].metadata
    assert meta["days"].value == 5 and meta["api_calls_total"].value == 7  # one request per symbol


def test_an_unknown_coin_in_the_settings_is_a_clear_failure(platform, dagster_instance, edge_tenant):
    _universe(platform, "BTC-USD", "FOO-USD")
    result = _run(platform, dagster_instance, EDGE, LAST_DAY)
    assert not result.success
    message = _failure(result)
    assert "settings.trading.universe[1]" in message and "FOO-USD" in message and "tenants.yaml" in message


def test_a_failed_symbol_keeps_its_rows_and_the_others_are_written(platform, dagster_instance, edge_tenant):
    # NVDA meets Alpha Vantage's daily quota (HTTP 200 Information): no further stock is called
    _universe(platform, "BTC-USD", "NVDA", "IBM")
    _query(
        platform,
        EDGE,
        """INSERT INTO core.market_prices (tenant_id, symbol, day, asset_class, source, currency,
                                           open, high, low, close, volume, fetched_at)
           VALUES (%s, 'NVDA', %s, 'stock', 'alphavantage', 'USD', 10, 11, 9, 10.5, 100,
                   '2026-01-01T00:00:00Z') RETURNING symbol""",
        (EDGE, LAST_DAY),
    )
    result = _run(platform, dagster_instance, EDGE, LAST_DAY)
    assert not result.success
    message = _failure(result)
    assert (
        "NVDA: alphavantage: the daily request quota is spent" in message
        and "IBM: alphavantage: not called" in message
    )
    rows = _query(platform, EDGE, "SELECT symbol, day, fetched_at FROM core.market_prices ORDER BY symbol")
    assert [(r[0], r[1]) for r in rows] == [("BTC-USD", LAST_DAY), ("NVDA", LAST_DAY)]
    assert rows[1][2].year == 2026 and (rows[1][2].month, rows[1][2].day) == (1, 1)  # NVDA's bar kept
    stored = _query(
        platform,
        EDGE,
        """SELECT symbol, status, body FROM raw.trading_api_responses
            WHERE dagster_run_id = %s ORDER BY response_id""",
        (result.run_id,),
    )
    assert [s[0] for s in stored] == ["BTC-USD", "BTC-USD", "NVDA"] and "25 requests per day" in stored[2][2]


def test_the_26th_alpha_vantage_request_of_a_day_is_refused_before_it_is_sent(platform):
    # Its own ledger entry: spending the session's real "alphavantage" budget would starve every
    # later stock refresh of the test session (the ledger lives in the session's database).
    budget = "alphavantage_budget_test"
    ledger = ApiLedger(WarehouseResource(database_url=platform.writer_url))
    resource = AlphaVantageResource(min_interval_s=0, daily_limit=25)
    sent = []
    client = resource.http_client(event_hooks={"request": [sent.append]})

    def call():
        resource.daily(
            client,
            "AAPL",
            LAST_DAY,
            date(2026, 11, 25),
            before_attempt=lambda: ledger.spend(budget, resource.daily_limit),
            attempts=[],
        )

    for _ in range(25):
        call()
    with pytest.raises(BudgetExhaustedError, match="25 requests|budget"):
        call()
    assert len(sent) == 25
    ledger.close()
