"""The four validation stages on the real Postgres and Dagster instance, for a tenant of this test
with synthetic bars seeded straight into core.market_prices (market data has its own tests):
the funnel, the approval queue surviving re-runs, withdrawals, and the risk-limit check."""

from datetime import date, timedelta

import numpy as np
import psycopg
import pytest
from dagster import materialize
from psycopg.types.json import Jsonb

from assets import trading
from orchestration import tenants
from orchestration.warehouse import WarehouseResource, set_tenant

TENANT = "tq_stage_probe"
ASSETS = [
    trading.backtest_results,
    trading.forward_tests,
    trading.risk_assessments,
    trading.strategy_approvals,
    trading.approved_strategies_within_risk_limits,
]
SETTINGS = {
    "trading": {
        "universe": ["BTC-USD", "AAPL"],
        "strategies": ["ma_crossover", "momentum"],
        "grids": {
            "ma_crossover": {"fast": [5, 10, 20], "slow": [30, 60]},
            "momentum": {"lookback": [10, 40]},
        },
    }
}
CANDIDATES = 2 * (6 + 2 * 4)  # 2 symbols x (3 x 2 crossovers + 2 lookbacks x 4 thresholds)
LENIENT = {
    "backtest_results": {"warmup_days": 90, "holdout_days": 300, "min_sharpe": 0.0, "min_trades": 2},
    "forward_tests": {"min_sharpe": -5.0, "max_performance_gap": 50.0, "max_drawdown": 0.9, "min_trades": 1},
    "risk_assessments": {"max_drawdown": 0.9, "max_exposure": 1.0, "max_concentration": 1.0, "min_trades": 1},
}


def _bars(symbol: str, asset_class: str, days: list[date], seed: int, drift: float) -> list[dict]:
    rng = np.random.default_rng(seed)
    # A trend with slow cycles: crossovers and momentum find trades, some pay.
    t = np.arange(len(days))
    close = 100 * np.exp(drift * t + 0.15 * np.sin(t / 40) + np.cumsum(rng.normal(0, 0.012, len(days))))
    opens = close * np.exp(rng.normal(0, 0.004, len(days)))
    return [
        {"symbol": symbol, "day": d, "asset_class": asset_class, "source": source, "currency": "USD",
         "open": o, "high": max(o, c) * 1.005, "low": min(o, c) * 0.995, "close": c, "volume": 1e6}
        for d, o, c in zip(days, opens, close, strict=True)
        for source in [{"crypto": "coingecko", "stock": "alphavantage"}[asset_class]]
    ]  # fmt: skip


@pytest.fixture(scope="module")
def tenant(platform, dagster_instance):
    with platform.admin() as conn:
        conn.execute(
            """INSERT INTO core.tenants
                      (tenant_id, display_name, kind, parent_tenant_id, tier, domains, settings)
               VALUES (%s, 'Trading stage probe', 'internal', 'bizoholic', 'internal', '{trading}', %s)
               ON CONFLICT (tenant_id) DO NOTHING""",
            (TENANT, Jsonb(SETTINGS)),
        )
    start = date(2022, 1, 1)
    every_day = [start + timedelta(days=i) for i in range(1000)]
    rows = _bars("BTC-USD", "crypto", every_day, 1, 0.0006)
    rows += _bars("AAPL", "stock", [d for d in every_day if d.weekday() < 5], 2, 0.0004)
    warehouse = WarehouseResource(database_url=platform.writer_url)
    with warehouse.tenant_transaction(TENANT) as conn, conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO core.market_prices (tenant_id, symbol, day, asset_class, source, currency,
                                                   open, high, low, close, volume)
                   VALUES (%(t)s, %(symbol)s, %(day)s, %(asset_class)s, %(source)s, %(currency)s,
                           %(open)s, %(high)s, %(low)s, %(close)s, %(volume)s)""",
            [{**r, "t": TENANT} for r in rows],
        )
    dagster_instance.add_dynamic_partitions(trading.trading_partitions.name, [TENANT])
    yield TENANT
    with platform.admin() as conn:
        tenants.offboard(conn, TENANT)
    dagster_instance.delete_dynamic_partition(trading.trading_partitions.name, TENANT)


def _run(platform, instance, **overrides):
    config = {name: {**values, **overrides.get(name, {})} for name, values in LENIENT.items()}
    result = materialize(
        ASSETS,
        partition_key=TENANT,
        instance=instance,
        resources={"warehouse": WarehouseResource(database_url=platform.writer_url)},
        run_config={"ops": {name: {"config": values} for name, values in config.items()}},
        raise_on_error=False,
    )
    assert result.success
    return result


def _query(url, sql, params=()):
    with psycopg.connect(url) as conn, conn.transaction():
        set_tenant(conn, TENANT)
        return conn.execute(sql, params).fetchall()


def _metadata(result, key):
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [key]]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _queue(platform):
    return dict(_query(platform.writer_url, "SELECT candidate_id, status FROM core.trading_approvals"))


def _decide(platform, candidate, decision="approve"):
    return _query(
        platform.serving_url,
        "SELECT status FROM core.decide_strategy(%s, %s, %s, 'desk-key-1', 'api_key', '10.0.0.1')",
        (candidate, decision, "reviewed in the stage test"),
    )[0][0]


def test_the_funnel_the_queue_across_re_runs_and_the_risk_check(platform, dagster_instance, tenant):
    first = _run(platform, dagster_instance)
    assert all(e.passed for e in first.get_asset_check_evaluations())
    backtests = _query(
        platform.writer_url, "SELECT candidate_id, passed, window_end FROM core.trading_backtests"
    )
    forward = _query(
        platform.writer_url, "SELECT candidate_id, passed, window_start FROM core.trading_forward_tests"
    )
    risk = _query(platform.writer_url, "SELECT candidate_id, passed FROM core.trading_risk_assessments")
    assert len(backtests) == CANDIDATES
    # Each stage sees exactly the previous stage's survivors, on a window after the in-sample one.
    assert {c for c, p, _ in backtests if p} == {c for c, _, _ in forward}
    assert {c for c, p, _ in forward if p} == {c for c, _ in risk}
    assert min(s for _, _, s in forward) > max(e for _, _, e in backtests)
    passing = {c for c, p in risk if p}
    assert passing and set(_queue(platform)) == passing
    assert set(_queue(platform).values()) == {"pending"}

    meta = _metadata(first, "backtest_results")
    assert meta["candidates"] == CANDIDATES and meta["candidates_per_second"] > 0
    assert meta["equity_curves"].startswith("![equity curves](data:image/png;base64,")
    funnel = _metadata(first, "strategy_approvals")
    assert funnel["overall_pass_rate"] == pytest.approx(len(passing) / CANDIDATES, abs=1e-4)
    assert funnel["queue"]["pending"] == len(passing) and 0 <= funnel["share_within_plan_gap"] <= 1

    # A human approves one; re-running the stages keeps the decision.
    chosen = sorted(passing)[0]
    assert _decide(platform, chosen) == "approved"
    _run(platform, dagster_instance)
    assert _queue(platform)[chosen] == "approved"

    # Its risk no longer passes: withdrawn with the reason, the check still holds.
    strict = _run(platform, dagster_instance, risk_assessments={"max_drawdown": 0.0})
    assert set(_queue(platform).values()) == {"withdrawn"}
    (reason,) = _query(
        platform.writer_url,
        "SELECT status_reason FROM core.trading_approvals WHERE candidate_id = %s",
        (chosen,),
    )[0]
    assert reason.startswith("risk: max_drawdown")
    assert all(e.passed for e in strict.get_asset_check_evaluations())
    assert _metadata(strict, "strategy_approvals")["withdrawn_this_run"][chosen] == reason

    # Passing again: back in the queue for a fresh decision (the audit keeps the old one).
    _run(platform, dagster_instance)
    assert _queue(platform)[chosen] == "pending"
    assert _query(platform.writer_url, "SELECT count(*) FROM core.trading_decisions WHERE candidate_id = %s",
                  (chosen,))[0][0] == 1  # fmt: skip

    # The check's query catches an approved strategy over a limit of its latest assessment.
    assert _decide(platform, chosen) == "approved"
    warehouse = WarehouseResource(database_url=platform.writer_url)
    assert trading.approved_over_limits(warehouse, TENANT) == []
    with warehouse.tenant_transaction(TENANT) as conn:
        conn.execute(
            "UPDATE core.trading_risk_assessments SET exposure = 1.5 WHERE candidate_id = %s", (chosen,)
        )
    assert [r["candidate_id"] for r in trading.approved_over_limits(warehouse, TENANT)] == [chosen]


def test_a_tenant_without_prices_gets_a_clear_failure_and_loses_nothing(platform, dagster_instance, tenant):
    empty = "tq_stage_empty"
    with platform.admin() as conn:
        conn.execute(
            """INSERT INTO core.tenants
                      (tenant_id, display_name, kind, parent_tenant_id, tier, domains, settings)
               VALUES (%s, 'No prices yet', 'internal', 'bizoholic', 'internal', '{trading}', %s)""",
            (empty, Jsonb(SETTINGS)),
        )
    dagster_instance.add_dynamic_partitions(trading.trading_partitions.name, [empty])
    before = _query(platform.writer_url, "SELECT candidate_id, built_at FROM core.trading_backtests")
    try:
        result = materialize(
            [trading.backtest_results],
            partition_key=empty,
            instance=dagster_instance,
            resources={"warehouse": WarehouseResource(database_url=platform.writer_url)},
            raise_on_error=False,
        )
        assert not result.success
        (failure,) = [e for e in result.all_events if e.is_step_failure]
        assert "no market prices for BTC-USD, AAPL: materialize market_prices first" in str(
            failure.event_specific_data.error
        )
        # The other tenant's stages are untouched.
        assert (
            _query(platform.writer_url, "SELECT candidate_id, built_at FROM core.trading_backtests") == before
        )
    finally:
        with platform.admin() as conn:
            tenants.offboard(conn, empty)
        dagster_instance.delete_dynamic_partition(trading.trading_partitions.name, empty)
