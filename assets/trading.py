"""QuantTrade's validation pipeline: backtest, forward test, risk assessment and the approval queue,
one asset per stage, per trading tenant.

`backtest_results` sweeps every candidate (strategy x parameters x symbol of the tenant's
universe) over the in-sample window with ml.trading.backtest.run_sweep; `forward_tests` paper-trades
the ones that passed on the later, unseen window (after an embargo); `risk_assessments` checks the
survivors' whole record against the desk's limits; `strategy_approvals` queues those that passed
everything for a human (the API's approve/reject calls core.decide_strategy). Each stage's
criteria are its run config (defaults shown in the launchpad) and are stored with its verdicts.
The windows and the gap are defined in ml/trading/validation.py.
"""

import base64
import io
import json
from datetime import date
from typing import Any, Literal

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AutomationCondition,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)
from pydantic import Field

from ml.trading.backtest import METRICS, CostModel, SweepResult, run_sweep
from ml.trading.strategies import Candidate
from ml.trading.validation import (
    PLAN_GAP_TARGET,
    Rule,
    forward_window,
    in_sample_window,
    judge,
    performance_gap,
    plan_queue,
    share,
)
from orchestration.metadata import preview_table
from orchestration.partitions import tenant_partitions
from orchestration.quality import skipped_check
from orchestration.tenant_settings import tenant_settings
from orchestration.trading_settings import trading_settings, trading_universe
from orchestration.warehouse import WarehouseResource, upsert_rows, write_partition

PRICES = "core.market_prices"
BACKTESTS = "core.trading_backtests"
FORWARD = "core.trading_forward_tests"
RISK = "core.trading_risk_assessments"
APPROVALS = "core.trading_approvals"
MARKET_PRICES = AssetKey("market_prices")

trading_partitions = tenant_partitions("trading")


# --- reading and shared helpers ------------------------------------------------------------------


def load_bars(warehouse: WarehouseResource, tenant_id: str, symbols: list[str]):
    """(bars by symbol, asset class by symbol) of the symbols that have prices."""
    rows = warehouse.query(
        tenant_id,
        f"""SELECT symbol, day, asset_class, open, high, low, close, volume FROM {PRICES}
             WHERE tenant_id = %s AND symbol = ANY(%s) ORDER BY symbol, day""",
        (tenant_id, symbols),
    )
    frame = pd.DataFrame(
        rows, columns=["symbol", "day", "asset_class", "open", "high", "low", "close", "volume"]
    )
    bars, classes = {}, {}
    for symbol, group in frame.groupby("symbol", sort=False):
        index = pd.DatetimeIndex(pd.to_datetime(group["day"]), name="day").tz_localize("UTC")
        bars[symbol] = group[["open", "high", "low", "close", "volume"]].astype(float).set_axis(index)
        classes[symbol] = group["asset_class"].iloc[-1]
    return bars, classes


def _universe_bars(warehouse: WarehouseResource, tenant_id: str, symbols: list[str] | None = None):
    settings = tenant_settings(warehouse, tenant_id)
    wanted = symbols if symbols is not None else [i.symbol for i in trading_universe(tenant_id, settings)]
    bars, classes = load_bars(warehouse, tenant_id, wanted)
    if not bars:
        raise Failure(
            f"tenant {tenant_id!r} has no market prices for {', '.join(wanted) or 'its universe'}: "
            "materialize market_prices first"
        )
    return settings, bars, classes


def _last_day(bars: dict[str, pd.DataFrame]) -> date:
    return max(b.index[-1] for b in bars.values()).date()


def _covering(bars: dict[str, pd.DataFrame], start: date, end: date) -> tuple[dict, list[str]]:
    """The symbols with at least two bars in [start, end], and the names of the others."""
    keep, skipped = {}, []
    for symbol, frame in bars.items():
        days = frame.index.date
        if ((days >= start) & (days <= end)).sum() >= 2:
            keep[symbol] = frame
        else:
            skipped.append(symbol)
    return keep, skipped


def _num(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


def _metric_row(metrics: pd.Series) -> dict[str, Any]:
    row = {m: _num(metrics[m]) for m in METRICS}
    row["trades"] = int(metrics["trades"])
    row["bars"] = int(metrics["bars"])
    return row


def _rows(warehouse: WarehouseResource, tenant_id: str, query: str) -> list[dict]:
    return warehouse.query(tenant_id, query, {"t": tenant_id})


def _median(values) -> float | None:
    values = pd.Series(values, dtype=float).dropna()
    return float(values.median()) if len(values) else None


def _rate(passed: int, total: int) -> MetadataValue | str:
    return MetadataValue.float(round(passed / total, 4)) if total else "n/a (nothing to test)"


def _candidates(rows: list[dict]) -> list[Candidate]:
    return [Candidate(r["candidate_id"], r["strategy"], r["params"], r["symbol"]) for r in rows]


def equity_plot(curves: dict[str, pd.Series], labels: dict[str, str], init_cash: float) -> str:
    """The curves as a small PNG, as Markdown with a data URL (the Dagster UI renders data: images)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 2.8), dpi=72)
    for cid, curve in curves.items():
        ax.plot(curve.index, curve.to_numpy() / init_cash, linewidth=1, label=labels.get(cid, cid))
    ax.axhline(1.0, color="grey", linewidth=0.6)
    ax.set_yscale("log")  # growth rates compare as slopes; crypto curves would flatten the rest
    ax.set_ylabel("equity / initial cash (log)")
    ax.legend(fontsize=6, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return f"![equity curves](data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()})"


# --- stage 1: backtest_results -------------------------------------------------------------------


class BacktestConfig(Config):
    warmup_days: int = Field(
        default=365,
        ge=0,
        description="Days after the first bar before the in-sample window opens, so every indicator of the "
        "grid (momentum looks back up to 250 bars) is defined when trading starts.",
    )
    holdout_days: int = Field(
        default=730,
        ge=1,
        description="The last days of history, never seen in-sample: the forward test's embargo and window.",
    )
    in_sample_days: int | None = Field(
        default=None, ge=30, description="Cap on the in-sample window's length in days (default: all)."
    )
    min_sharpe: float = Field(default=0.5, description="Minimum annualised Sharpe ratio in-sample.")
    max_drawdown: float = Field(default=0.4, ge=0, le=1, description="Maximum drawdown in-sample (fraction).")
    min_trades: int = Field(default=5, ge=0, description="Minimum number of trades in-sample.")
    min_total_return: float = Field(default=0.0, description="Minimum total return in-sample (fraction).")
    chunk_size: int = Field(default=2000, ge=1, description="Candidates per vectorbt call (bounds memory).")
    plot_top: int = Field(default=5, ge=0, le=10, description="Equity curves of the best candidates to plot.")

    def rules(self) -> list[Rule]:
        return [
            Rule("sharpe", "min", self.min_sharpe),
            Rule("max_drawdown", "max", self.max_drawdown),
            Rule("trades", "min", self.min_trades),
            Rule("total_return", "min", self.min_total_return),
        ]


@asset(
    partitions_def=trading_partitions,
    group_name="trading",
    kinds={"vectorbt", "postgres"},
    deps=[MARKET_PRICES],
    # New prices (any day) re-run the sweep; a day never fetched must not hold it back.
    automation_condition=AutomationCondition.eager().without(~AutomationCondition.any_deps_missing()),
    metadata={"table": BACKTESTS},
    description=(
        "Every candidate (strategy x parameter set x symbol of settings.trading.universe; grids from the "
        "strategy library or settings.trading.grids) backtested with vectorbt on the in-sample window: "
        "signals on day t's close trade at day t+1's open, 10,000 initial cash, 0.1 % fees and 0.1 % "
        "slippage. Passes on the run config's criteria."
    ),
)
def backtest_results(
    context: AssetExecutionContext, config: BacktestConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    tenant_id = context.partition_key
    settings, bars, classes = _universe_bars(warehouse, tenant_id)
    strategies = trading_settings(tenant_id, settings)
    first = min(b.index[0] for b in bars.values()).date()
    try:
        window = in_sample_window(
            first, _last_day(bars), warmup_days=config.warmup_days, holdout_days=config.holdout_days,
            in_sample_days=config.in_sample_days,
        )  # fmt: skip
    except ValueError as error:
        raise Failure(f"tenant {tenant_id!r}: {error}") from error
    bars, skipped = _covering(bars, window.start, window.end)
    if not bars:
        raise Failure(f"tenant {tenant_id!r}: no symbol has bars in the in-sample window {window}")
    candidates = strategies.candidates(list(bars))
    context.log.info(f"backtesting {len(candidates)} candidates on {len(bars)} symbols, {window}")
    # The first vectorbt call in a process compiles its kernels (~15 s): paid on a two-candidate
    # sweep so that the throughput reported is the sweep's own.
    warmup = run_sweep(bars, classes, candidates[:2], start=window.start, end=window.end).seconds
    sweep = run_sweep(
        bars, classes, candidates, start=window.start, end=window.end, chunk_size=config.chunk_size
    )
    metrics = sweep.metrics
    passed, reasons = judge(metrics, config.rules())
    run_id = context.run.run_id
    rows = [
        {"candidate_id": c.candidate_id, "strategy": c.strategy, "params": dict(c.params), "symbol": c.symbol,
         "asset_class": classes[c.symbol], "window_start": metrics.at[c.candidate_id, "window_start"],
         "window_end": metrics.at[c.candidate_id, "window_end"], **_metric_row(metrics.loc[c.candidate_id]),
         "passed": bool(passed[c.candidate_id]), "fail_reasons": reasons[c.candidate_id],
         "dagster_run_id": run_id}
        for c in candidates
    ]  # fmt: skip
    with warehouse.tenant_transaction(tenant_id) as conn:
        written = write_partition(conn, tenant_id, BACKTESTS, rows, run_id=run_id)

    ranked = metrics.assign(passed=passed).sort_values(
        ["passed", "sharpe"], ascending=False, na_position="last"
    )
    by_id = {c.candidate_id: c for c in candidates}
    top = [
        {"candidate_id": cid, "strategy": by_id[cid].strategy, "symbol": by_id[cid].symbol,
         "params": json.dumps(dict(by_id[cid].params)), "sharpe": round(float(r["sharpe"]), 3),
         "total_return": round(float(r["total_return"]), 4),
         "max_drawdown": round(float(r["max_drawdown"]), 4), "trades": int(r["trades"]),
         "passed": bool(r["passed"])}
        for cid, r in ranked.head(10).iterrows()
    ]  # fmt: skip
    metadata = {
        "candidates": MetadataValue.int(len(candidates)),
        "symbols": MetadataValue.json(sorted(bars)),
        "symbols_without_in_sample_bars": MetadataValue.json(skipped),
        "window": MetadataValue.text(f"{window.start}..{window.end}"),
        "sweep_seconds": MetadataValue.float(round(sweep.seconds, 3)),
        "warmup_seconds": MetadataValue.float(round(warmup, 3)),
        "candidates_per_second": MetadataValue.float(round(sweep.candidates_per_second, 1)),
        "passed": MetadataValue.int(int(passed.sum())),
        "pass_rate": _rate(int(passed.sum()), len(candidates)),
        "median_positive_month_share": _float_or_na(_median(metrics["positive_month_share"])),
        "criteria": MetadataValue.json(config.model_dump(exclude={"chunk_size", "plot_top"})),
        "rows": MetadataValue.int(written),
        "top_10": preview_table(top),
    }
    best = list(ranked.index[: config.plot_top])
    if best:
        curves = _equity(bars, classes, [by_id[cid] for cid in best], window.start, window.end)
        labels = {cid: f"{by_id[cid].strategy} {by_id[cid].symbol} {dict(by_id[cid].params)}" for cid in best}
        metadata["equity_curves"] = MetadataValue.md(equity_plot(curves, labels, CostModel().init_cash))
    return MaterializeResult(metadata=metadata)


def _equity(bars, classes, candidates: list[Candidate], start, end) -> dict[str, pd.Series]:
    """Equity curves of a few candidates (a second, small sweep keeps the big one lean)."""
    symbols = {c.symbol for c in candidates}
    sweep: SweepResult = run_sweep({s: bars[s] for s in symbols}, classes, candidates, start=start, end=end,
                                   keep_equity=[c.candidate_id for c in candidates])  # fmt: skip
    return {c.candidate_id: sweep.equity[c.candidate_id] for c in candidates}


def _float_or_na(value: float | None) -> MetadataValue | str:
    return MetadataValue.float(round(value, 4)) if value is not None else "n/a"


# --- stage 2: forward_tests ----------------------------------------------------------------------


class ForwardTestConfig(Config):
    gap_days: int = Field(
        default=5,
        ge=0,
        description="Embargo in days between the in-sample window's end and the forward window.",
    )
    metric: Literal["sharpe", "annual_return"] = Field(
        default="sharpe", description="The metric compared between backtest and forward test."
    )
    max_performance_gap: float = Field(
        default=0.5,
        description="Largest accepted relative shortfall (backtest - forward) / |backtest| of the metric. "
        f"The plan's target, a gap within {PLAN_GAP_TARGET:.0%}, is reported as the share of candidates "
        "meeting it.",
    )
    min_sharpe: float = Field(
        default=0.25, description="Minimum annualised Sharpe ratio on the forward window."
    )
    max_drawdown: float = Field(
        default=0.4, ge=0, le=1, description="Maximum drawdown on the forward window."
    )
    min_trades: int = Field(default=2, ge=0, description="Minimum number of trades on the forward window.")

    def rules(self) -> list[Rule]:
        return [
            Rule("sharpe", "min", self.min_sharpe),
            Rule("max_drawdown", "max", self.max_drawdown),
            Rule("trades", "min", self.min_trades),
            Rule("performance_gap", "max", self.max_performance_gap),
        ]


@asset(
    partitions_def=trading_partitions,
    group_name="trading",
    kinds={"vectorbt", "postgres"},
    deps=[backtest_results],
    automation_condition=AutomationCondition.eager(),
    metadata={"table": FORWARD},
    description=(
        "Walk-forward test: the candidates that passed the backtest, paper-traded on the later window they "
        "never saw (from gap_days after the in-sample end to the last bar), with the backtest-vs-forward gap "
        "(relative shortfall of the compared metric) recorded. Passes on the run config's criteria."
    ),
)
def forward_tests(
    context: AssetExecutionContext, config: ForwardTestConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    tenant_id = context.partition_key
    tested = _rows(
        warehouse, tenant_id,
        f"""SELECT candidate_id, strategy, params, symbol, window_end, sharpe, annual_return
              FROM {BACKTESTS} WHERE tenant_id = %(t)s AND passed ORDER BY candidate_id""",
    )  # fmt: skip
    rows, frame, window, unpriced = [], pd.DataFrame(), None, []
    if tested:
        _, bars, classes = _universe_bars(warehouse, tenant_id, sorted({r["symbol"] for r in tested}))
        try:
            window = forward_window(
                max(r["window_end"] for r in tested), _last_day(bars), gap_days=config.gap_days
            )
        except ValueError as error:
            raise Failure(f"tenant {tenant_id!r}: {error}") from error
        bars, _ = _covering(bars, window.start, window.end)
        # A symbol without bars in the forward window cannot be paper-traded yet: its candidates
        # are not forward-tested (the queue says so) and the metadata names the symbol.
        unpriced = sorted({r["symbol"] for r in tested} - set(bars))
        tested = [r for r in tested if r["symbol"] in bars]
        sweep = run_sweep(bars, classes, _candidates(tested), start=window.start, end=window.end)
        frame = sweep.metrics
        before = pd.Series({r["candidate_id"]: _num(r[config.metric]) for r in tested}, dtype=float)
        frame["backtest_metric"] = before
        frame["forward_metric"] = frame[config.metric]
        frame["performance_gap"] = performance_gap(frame["backtest_metric"], frame["forward_metric"])
        passed, reasons = judge(frame, config.rules())
        frame["passed"] = passed
        rows = [
            {"candidate_id": cid, "window_start": r["window_start"], "window_end": r["window_end"],
             "gap_days": config.gap_days, **_metric_row(r), "backtest_metric": _num(r["backtest_metric"]),
             "forward_metric": _num(r["forward_metric"]), "performance_gap": _num(r["performance_gap"]),
             "passed": bool(passed[cid]), "fail_reasons": reasons[cid], "dagster_run_id": context.run.run_id}
            for cid, r in frame.iterrows()
        ]  # fmt: skip
        for row in rows:
            row.pop("final_value")  # not a column of the forward stage
    with warehouse.tenant_transaction(tenant_id) as conn:
        written = write_partition(conn, tenant_id, FORWARD, rows, run_id=context.run.run_id)
    gaps = frame["performance_gap"] if len(frame) else pd.Series(dtype=float)
    n_passed = int(frame["passed"].sum()) if len(frame) else 0
    return MaterializeResult(
        metadata={
            "tested": MetadataValue.int(len(rows)),
            "passed": MetadataValue.int(n_passed),
            "pass_rate": _rate(n_passed, len(rows)),
            "window": MetadataValue.text(
                f"{window.start}..{window.end}" if window else "n/a (nothing passed)"
            ),
            "compared_metric": MetadataValue.text(config.metric),
            "symbols_without_forward_bars": MetadataValue.json(unpriced),
            "median_performance_gap": _float_or_na(_median(gaps)),
            "share_within_plan_gap": _float_or_na(
                share(gaps.dropna() <= PLAN_GAP_TARGET) if len(gaps) else None
            ),
            "median_positive_month_share": _float_or_na(
                _median(frame["positive_month_share"]) if len(frame) else None
            ),
            "criteria": MetadataValue.json(config.model_dump()),
            "rows": MetadataValue.int(written),
            "preview": preview_table(
                [
                    {
                        k: (round(v, 4) if isinstance(v, float) else v)
                        for k, v in row.items()
                        if k
                        in (
                            "candidate_id",
                            "sharpe",
                            "backtest_metric",
                            "forward_metric",
                            "performance_gap",
                            "trades",
                            "passed",
                        )
                    }
                    for row in rows
                ]
            ),  # fmt: skip
        }
    )


# --- stage 3: risk_assessments -------------------------------------------------------------------


class RiskConfig(Config):
    max_drawdown: float = Field(
        default=0.35,
        ge=0,
        le=1,
        description="Largest drawdown over the whole record (in-sample to last bar).",
    )
    max_exposure: float = Field(
        default=0.9, ge=0, le=1, description="Largest share of days ending in a position (time at risk)."
    )
    max_concentration: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="Largest share of the gross profit of winning trades made by the single best trade (a "
        "strategy living off one lucky trade is not a strategy); 1 when no trade won.",
    )
    min_trades: int = Field(default=8, ge=0, description="Fewest trades over the whole record.")

    def rules(self) -> list[Rule]:
        return [
            Rule("max_drawdown", "max", self.max_drawdown),
            Rule("exposure", "max", self.max_exposure),
            Rule("concentration", "max", self.max_concentration),
            Rule("trades", "min", self.min_trades),
        ]


@asset(
    partitions_def=trading_partitions,
    group_name="trading",
    kinds={"vectorbt", "postgres"},
    deps=[forward_tests],
    automation_condition=AutomationCondition.eager(),
    metadata={"table": RISK},
    description=(
        "Risk limits on the candidates that passed the forward test, over their whole record (in-sample "
        "start to the last bar): drawdown, exposure (time in the market), concentration (the best trade's "
        "share of the gross profit) and a minimum trade count. The limits applied are stored per row."
    ),
)
def risk_assessments(context: AssetExecutionContext, config: RiskConfig, warehouse: WarehouseResource):
    tenant_id = context.partition_key
    survivors = _rows(
        warehouse, tenant_id,
        f"""SELECT b.candidate_id, b.strategy, b.params, b.symbol, b.window_start, f.window_end
              FROM {FORWARD} f JOIN {BACKTESTS} b USING (tenant_id, candidate_id)
             WHERE f.tenant_id = %(t)s AND f.passed ORDER BY b.candidate_id""",
    )  # fmt: skip
    rows, limits = [], config.model_dump()
    if survivors:
        _, bars, classes = _universe_bars(warehouse, tenant_id, sorted({r["symbol"] for r in survivors}))
        start, end = min(r["window_start"] for r in survivors), max(r["window_end"] for r in survivors)
        frame = run_sweep(bars, classes, _candidates(survivors), start=start, end=end).metrics
        frame["concentration"] = frame["best_trade_share"].fillna(1.0)
        passed, reasons = judge(frame, config.rules())
        rows = [
            {"candidate_id": cid, "max_drawdown": float(r["max_drawdown"]), "exposure": float(r["exposure"]),
             "concentration": float(r["concentration"]), "trades": int(r["trades"]), "limits": limits,
             "breaches": reasons[cid], "passed": bool(passed[cid]), "dagster_run_id": context.run.run_id}
            for cid, r in frame.iterrows()
        ]  # fmt: skip
    with warehouse.tenant_transaction(tenant_id) as conn:
        written = write_partition(conn, tenant_id, RISK, rows, run_id=context.run.run_id)
    n_passed = sum(r["passed"] for r in rows)
    breaches: dict[str, int] = {}
    for row in rows:
        for breach in row["breaches"]:
            breaches[breach.split(" ")[0]] = breaches.get(breach.split(" ")[0], 0) + 1
    return MaterializeResult(
        metadata={
            "assessed": MetadataValue.int(len(rows)),
            "passed": MetadataValue.int(n_passed),
            "pass_rate": _rate(n_passed, len(rows)),
            "breaches_by_limit": MetadataValue.json(breaches),
            "limits": MetadataValue.json(limits),
            "rows": MetadataValue.int(written),
            "preview": preview_table(
                [
                    {
                        k: row[k]
                        for k in (
                            "candidate_id",
                            "max_drawdown",
                            "exposure",
                            "concentration",
                            "trades",
                            "passed",
                            "breaches",
                        )
                    }
                    for row in rows
                ]
            ),  # fmt: skip
        }
    )


# --- stage 4: strategy_approvals -----------------------------------------------------------------


def stage_rows(warehouse: WarehouseResource, tenant_id: str) -> list[dict]:
    """Every backtested candidate with its verdict at each stage it reached."""
    return _rows(
        warehouse, tenant_id,
        f"""SELECT b.candidate_id, b.strategy, b.params, b.symbol, b.passed AS backtest_passed,
                   b.fail_reasons AS backtest_reasons, b.sharpe AS backtest_sharpe,
                   b.total_return AS backtest_return, b.max_drawdown AS backtest_drawdown,
                   f.passed AS forward_passed, f.fail_reasons AS forward_reasons, f.sharpe AS forward_sharpe,
                   f.total_return AS forward_return, f.performance_gap,
                   f.positive_month_share AS forward_positive_months,
                   r.passed AS risk_passed, r.breaches, r.max_drawdown AS risk_drawdown, r.exposure,
                   r.concentration, r.trades AS risk_trades
              FROM {BACKTESTS} b
              LEFT JOIN {FORWARD} f USING (tenant_id, candidate_id)
              LEFT JOIN {RISK} r USING (tenant_id, candidate_id)
             WHERE b.tenant_id = %(t)s""",
    )  # fmt: skip


def _why_not(row: dict) -> str:
    if not row["backtest_passed"]:
        return "backtest: " + "; ".join(row["backtest_reasons"])
    if row["forward_passed"] is None:
        return "not forward-tested yet"
    if not row["forward_passed"]:
        return "forward test: " + "; ".join(row["forward_reasons"])
    if row["risk_passed"] is None:
        return "not risk-assessed yet"
    return "risk: " + "; ".join(row["breaches"])


def _snapshot(row: dict) -> dict:
    keys = ("backtest_sharpe", "backtest_return", "backtest_drawdown", "forward_sharpe", "forward_return",
            "performance_gap", "forward_positive_months", "risk_drawdown", "exposure", "concentration",
            "risk_trades")  # fmt: skip
    return {k: row[k] for k in keys}


@asset(
    partitions_def=trading_partitions,
    group_name="trading",
    kinds={"postgres"},
    deps=[backtest_results, forward_tests, risk_assessments],
    automation_condition=AutomationCondition.eager(),
    metadata={"table": APPROVALS},
    description=(
        "The approval queue: candidates that passed backtest, forward test and risk wait as 'pending' for a "
        "QuantTrade approver (POST /api/brain/quanttrade/strategies/{id}/approve or /reject). Human "
        "decisions survive re-runs; a pending or approved candidate that no longer passes every stage is "
        "'withdrawn' with the reason. Metadata: the funnel (stage pass rates) and the plan's success metrics."
    ),
)
def strategy_approvals(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    tenant_id = context.partition_key
    stages = stage_rows(warehouse, tenant_id)
    by_id = {r["candidate_id"]: r for r in stages}
    passing = {
        cid for cid, r in by_id.items() if r["backtest_passed"] and r["forward_passed"] and r["risk_passed"]
    }
    with warehouse.tenant_transaction(tenant_id) as conn:
        # Rows locked: a decision arriving meanwhile waits, then sees the queue this run leaves.
        current = dict(
            conn.execute(
                f"SELECT candidate_id, status FROM {APPROVALS} WHERE tenant_id = %s FOR UPDATE", (tenant_id,)
            ).fetchall()
        )
        why_not = {cid: _why_not(by_id[cid]) if cid in by_id else "no longer a candidate" for cid in current}
        changes = plan_queue(current, passing, why_not)
        rows = [
            {"candidate_id": ch.candidate_id,
             "strategy": by_id.get(ch.candidate_id, {}).get("strategy", ""),
             "params": by_id.get(ch.candidate_id, {}).get("params", {}),
             "symbol": by_id.get(ch.candidate_id, {}).get("symbol", ""),
             "status": ch.status, "status_reason": ch.reason,
             "snapshot": _snapshot(by_id[ch.candidate_id]) if ch.candidate_id in by_id else {},
             "dagster_run_id": context.run.run_id}
            for ch in changes
        ]  # fmt: skip
        # Only the transitions plan_queue allows reach here; a re-queued candidate starts afresh.
        requeue = "t.status = 'withdrawn' AND EXCLUDED.status = 'pending'"
        upsert_rows(
            conn, tenant_id, APPROVALS, rows, key=["candidate_id"], run_id=context.run.run_id,
            updates={
                "status": "EXCLUDED.status",
                "status_reason": "EXCLUDED.status_reason",
                "snapshot": "CASE WHEN EXCLUDED.status = 'pending' THEN EXCLUDED.snapshot "
                "ELSE t.snapshot END",
                "queued_at": f"CASE WHEN {requeue} THEN now() ELSE t.queued_at END",
                "decided_at": f"CASE WHEN {requeue} THEN NULL ELSE t.decided_at END",
                "decided_by": f"CASE WHEN {requeue} THEN NULL ELSE t.decided_by END",
                "updated_at": "now()",
                "dagster_run_id": "EXCLUDED.dagster_run_id",
            },
        )  # fmt: skip
        statuses = dict(
            conn.execute(
                f"SELECT status, count(*) FROM {APPROVALS} WHERE tenant_id = %s GROUP BY status", (tenant_id,)
            ).fetchall()
        )
    return MaterializeResult(metadata=_funnel_metadata(stages, passing, changes, current, statuses))


def _funnel_metadata(stages, passing, changes, current, statuses) -> dict[str, Any]:
    total = len(stages)
    bt = sum(bool(r["backtest_passed"]) for r in stages)
    fw_in = sum(r["forward_passed"] is not None for r in stages)
    fw = sum(bool(r["forward_passed"]) for r in stages)
    risk_in = sum(r["risk_passed"] is not None for r in stages)
    funnel = [
        {"stage": "backtest", "in": total, "passed": bt},
        {"stage": "forward_test", "in": fw_in, "passed": fw},
        {"stage": "risk", "in": risk_in, "passed": len(passing)},
    ]
    gaps = [r["performance_gap"] for r in stages if r["forward_passed"] is not None]
    gap_values = pd.Series(gaps, dtype=float).dropna()
    months = [r["forward_positive_months"] for r in stages if r["candidate_id"] in passing]
    new = [c for c in changes if c.status == "pending" and c.candidate_id not in current]
    withdrawn = [c for c in changes if c.status == "withdrawn"]
    return {
        "candidates": MetadataValue.int(total),
        "funnel": preview_table(
            [{**f, "pass_rate": round(f["passed"] / f["in"], 4) if f["in"] else None} for f in funnel]
        ),
        "backtest_pass_rate": _rate(bt, total),
        "forward_pass_rate": _rate(fw, fw_in),
        "risk_pass_rate": _rate(len(passing), risk_in),
        "overall_pass_rate": _rate(len(passing), total),
        "median_backtest_forward_gap": _float_or_na(_median(gaps)),
        "share_within_plan_gap": _float_or_na(
            share(gap_values <= PLAN_GAP_TARGET) if len(gap_values) else None
        ),
        "median_positive_month_share_of_passing": _float_or_na(_median(months)),
        "queue": MetadataValue.json(
            {s: statuses.get(s, 0) for s in ("pending", "approved", "rejected", "withdrawn")}
        ),
        "newly_queued": MetadataValue.int(len(new)),
        "withdrawn_this_run": MetadataValue.json({c.candidate_id: c.reason for c in withdrawn}),
    }


# --- check ---------------------------------------------------------------------------------------


def approved_over_limits(warehouse: WarehouseResource, tenant_id: str) -> list[dict]:
    """Approved strategies whose latest risk assessment is missing, failed, or exceeds its limits."""
    return _rows(
        warehouse, tenant_id,
        f"""SELECT a.candidate_id, r.passed, r.max_drawdown, r.exposure, r.concentration, r.trades, r.limits
              FROM {APPROVALS} a LEFT JOIN {RISK} r USING (tenant_id, candidate_id)
             WHERE a.tenant_id = %(t)s AND a.status = 'approved'
               AND (r.candidate_id IS NULL OR NOT r.passed
                    OR r.max_drawdown > (r.limits ->> 'max_drawdown')::float8
                    OR r.exposure > (r.limits ->> 'max_exposure')::float8
                    OR r.concentration > (r.limits ->> 'max_concentration')::float8
                    OR r.trades < (r.limits ->> 'min_trades')::int)
             ORDER BY a.candidate_id""",
    )  # fmt: skip


@asset_check(
    asset=strategy_approvals,
    blocking=True,
    description="No approved strategy exceeds a risk limit of its latest risk assessment (or lacks one).",
)
def approved_strategies_within_risk_limits(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    if not context.has_partition_key:
        return skipped_check()
    tenant_id = context.partition_key
    bad = approved_over_limits(warehouse, tenant_id)
    approved = _rows(
        warehouse,
        tenant_id,
        f"SELECT count(*) AS n FROM {APPROVALS} WHERE tenant_id = %(t)s AND status = 'approved'",
    )[0]["n"]
    return AssetCheckResult(
        passed=not bad,
        metadata={
            "approved": MetadataValue.int(approved),
            "over_limits": MetadataValue.json(
                [{k: (str(v) if k == "limits" else v) for k, v in r.items()} for r in bad]
            ),
        },  # fmt: skip
        description=f"{len(bad)} of {approved} approved strategies over a risk limit"
        + (f": {', '.join(r['candidate_id'] for r in bad)}" if bad else ""),
    )
