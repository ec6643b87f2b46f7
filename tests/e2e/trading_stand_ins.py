"""Deterministic stand-in rows for QuantTrade's validation stages, written where the trading assets
write theirs (core.trading_backtests, _forward_tests, _risk_assessments, _approvals).

For tests of the serving routes and marts, which need candidates at every stage with outcomes a
test can predict. This is no backtest: the metrics are simple functions of the candidate's
position in a fixed grid. Every candidate id starts with `st.` so the stand-ins never collide with
the real assets' candidates in the same tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import psycopg
from psycopg.types.json import Jsonb

SYMBOLS = (("BTC-USD", "crypto"), ("AAPL", "stock"), ("EURUSD", "forex"))
GRID = (
    ("ma_crossover", {"fast": 10, "slow": 50}),
    ("ma_crossover", {"fast": 20, "slow": 100}),
    ("rsi_reversion", {"window": 14, "lower": 30}),
    ("momentum", {"lookback": 60}),
)
LIMITS = {"max_drawdown": 0.25, "max_exposure": 0.9, "max_concentration": 0.5, "min_trades": 5}
IN_SAMPLE = (date(2019, 1, 1), date(2023, 12, 31))
FORWARD = (date(2024, 1, 15), date(2025, 12, 31))


@dataclass(frozen=True)
class StandIn:
    candidate_id: str
    strategy: str
    params: dict
    symbol: str
    asset_class: str
    outcome: str  # failed_backtest | failed_forward | failed_risk | queued


def stand_in_candidates() -> list[StandIn]:
    """12 candidates; outcomes cycle so every stage has passes and failures (6 reach the queue)."""
    outcomes = ("queued", "failed_backtest", "queued", "failed_forward", "queued", "failed_risk")
    out = []
    for i, ((strategy, params), (symbol, asset_class)) in enumerate((g, s) for g in GRID for s in SYMBOLS):
        name = ",".join(f"{k}={v}" for k, v in params.items())
        out.append(
            StandIn(f"st.{strategy}:{name}:{symbol}", strategy, params, symbol, asset_class, outcomes[i % 6])
        )
    return out


def _metrics(i: int, scale: float) -> dict:
    return {
        "bars": 1200,
        "total_return": round(scale * (0.05 + 0.03 * i), 4),
        "annual_return": round(scale * (0.01 + 0.006 * i), 4),
        "sharpe": round(scale * (0.4 + 0.1 * i), 4),
        "max_drawdown": round(0.08 + 0.01 * (i % 5), 4),
        "win_rate": 0.55,
        "trades": 10 + i,
        "profit_factor": 1.4,
        "exposure": 0.6,
        "positive_month_share": 0.6,
    }


def _insert(conn: psycopg.Connection, tenant_id: str, table: str, row: dict) -> None:
    columns = ["tenant_id", *row]
    conn.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
        [tenant_id, *row.values()],
    )


def write_stand_in_pipeline(conn: psycopg.Connection, tenant_id: str) -> list[StandIn]:
    """(Re)write the stand-in candidates' stages, in the caller's transaction (tenant set).

    Queued candidates go to the approval queue as pending; earlier decisions on them stay in the
    append-only audit log, as they would."""
    candidates = stand_in_candidates()
    for table in (
        "trading_approvals",
        "trading_risk_assessments",
        "trading_forward_tests",
        "trading_backtests",
    ):
        conn.execute(
            f"DELETE FROM core.{table} WHERE tenant_id = %s AND candidate_id LIKE 'st.%%'", (tenant_id,)
        )
    for i, c in enumerate(candidates):
        passed_backtest = c.outcome != "failed_backtest"
        backtest = _metrics(i, 1.0 if passed_backtest else -0.5)
        _insert(conn, tenant_id, "core.trading_backtests", {
            "candidate_id": c.candidate_id, "strategy": c.strategy, "params": Jsonb(c.params),
            "symbol": c.symbol, "asset_class": c.asset_class, "window_start": IN_SAMPLE[0],
            "window_end": IN_SAMPLE[1], **backtest, "final_value": 10_000 * (1 + backtest["total_return"]),
            "passed": passed_backtest, "fail_reasons": [] if passed_backtest else ["sharpe below 0.5"],
        })  # fmt: skip
        if not passed_backtest:
            continue
        passed_forward = c.outcome != "failed_forward"
        forward = _metrics(i, 0.9 if passed_forward else 0.4)
        gap = round(1 - forward["sharpe"] / backtest["sharpe"], 4)
        _insert(conn, tenant_id, "core.trading_forward_tests", {
            "candidate_id": c.candidate_id, "window_start": FORWARD[0], "window_end": FORWARD[1],
            "gap_days": 14, **forward, "backtest_metric": backtest["sharpe"],
            "forward_metric": forward["sharpe"], "performance_gap": gap, "passed": passed_forward,
            "fail_reasons": [] if passed_forward else ["forward sharpe 60% below the backtest's"],
        })  # fmt: skip
        if not passed_forward:
            continue
        passed_risk = c.outcome != "failed_risk"
        risk = {
            "max_drawdown": forward["max_drawdown"] if passed_risk else 0.4, "exposure": 0.6,
            "concentration": 0.2, "trades": forward["trades"], "limits": Jsonb(LIMITS),
            "breaches": [] if passed_risk else ["max_drawdown 0.40 > 0.25"], "passed": passed_risk,
        }  # fmt: skip
        _insert(conn, tenant_id, "core.trading_risk_assessments", {"candidate_id": c.candidate_id, **risk})
        if passed_risk:
            _insert(conn, tenant_id, "core.trading_approvals", {
                "candidate_id": c.candidate_id, "strategy": c.strategy, "params": Jsonb(c.params),
                "symbol": c.symbol, "status": "pending",
                "snapshot": Jsonb({"backtest_sharpe": backtest["sharpe"],
                                   "forward_sharpe": forward["sharpe"]}),
            })  # fmt: skip
    return candidates
