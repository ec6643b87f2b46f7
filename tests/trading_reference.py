"""A plain per-bar reference for QuantTrade's backtests, written from the execution model in
ml/trading/__init__.py alone and independently of the engine (ml/trading/backtest.py,
ml/trading/strategies.py): the correctness tests and bench/trading_backtest.py check the
vectorised sweep against it. Deliberately slow and obvious: Python loops and floats, no pandas
rolling windows, no vectorbt.

Where the model leaves a choice open, the reference's reading is stated here:
- the window's first bar may fill the signal of the bar before it (a warm-up bar: it is in the
  past); a signal on the window's last bar has no next open inside the window and is dropped;
- the equity curve starts from the initial cash: the first bar's return is against it, it is
  the first peak for the drawdown, and the first month's change is measured from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

BARS_PER_YEAR = {"crypto": 365, "stock": 252, "forex": 260}


@dataclass(frozen=True)
class Fill:
    day: pd.Timestamp
    price: float  # the open after slippage
    shares: float
    cash: float  # cash paid (entry) or received (exit), fees included


@dataclass
class Trade:
    entry: Fill
    exit: Fill | None = None

    @property
    def pnl(self) -> float | None:
        return None if self.exit is None else self.exit.cash - self.entry.cash


@dataclass
class Run:
    init_cash: float
    equity: list[float] = field(default_factory=list)  # at each window bar's close
    days: list[pd.Timestamp] = field(default_factory=list)
    in_position: list[bool] = field(default_factory=list)  # after each window bar's close
    trades: list[Trade] = field(default_factory=list)


def _window(index: pd.DatetimeIndex, start, end) -> tuple[int, int]:
    lo = 0 if start is None else int(index.searchsorted(pd.Timestamp(start, tz=index.tz), "left"))
    hi = len(index) if end is None else int(index.searchsorted(pd.Timestamp(end, tz=index.tz), "right"))
    return lo, hi


def simulate(
    bars: pd.DataFrame,
    entries: Sequence[bool],
    exits: Sequence[bool],
    *,
    start=None,
    end=None,
    init_cash: float = 10_000.0,
    fees: float = 0.001,
    slippage: float = 0.001,
) -> Run:
    """One candidate, bar by bar. `entries`/`exits` are the raw signals (row t decided on day
    t's close); each is acted on at the next bar's open."""
    opens, closes = bars["open"].tolist(), bars["close"].tolist()
    lo, hi = _window(bars.index, start, end)
    run = Run(init_cash)
    cash, shares, trade = init_cash, 0.0, None
    for i in range(lo, hi):
        if i > 0:
            enter, leave = bool(entries[i - 1]), bool(exits[i - 1])
            if enter and not leave and trade is None:
                price = opens[i] * (1 + slippage)
                shares = cash / (price * (1 + fees))
                trade = Trade(Fill(bars.index[i], price, shares, cash))
                run.trades.append(trade)
                cash = 0.0
            elif leave and not enter and trade is not None:
                price = opens[i] * (1 - slippage)
                cash = shares * price * (1 - fees)
                trade.exit = Fill(bars.index[i], price, shares, cash)
                shares, trade = 0.0, None
        run.days.append(bars.index[i])
        run.equity.append(cash + shares * closes[i])
        run.in_position.append(trade is not None)
    return run


def metrics(run: Run, asset_class: str) -> dict:
    n = len(run.equity)
    previous = [run.init_cash] + run.equity[:-1]
    returns = [e / p - 1 for e, p in zip(run.equity, previous, strict=True)]
    per_year = BARS_PER_YEAR[asset_class]
    total = run.equity[-1] / run.init_cash - 1

    mean = sum(returns) / n
    var = sum((r - mean) ** 2 for r in returns) / (n - 1) if n > 1 else 0.0
    sharpe = mean / math.sqrt(var) * math.sqrt(per_year) if var > 0 else None

    peak, worst = run.init_cash, 0.0
    for e in run.equity:
        peak = max(peak, e)
        worst = max(worst, 1 - e / peak)

    pnls = [t.pnl for t in run.trades if t.exit is not None]
    wins = [p for p in pnls if p > 0]
    gross_win = sum(wins)
    gross_loss = -sum(p for p in pnls if p < 0)

    month_end: dict[tuple[int, int], float] = {}
    for day, e in zip(run.days, run.equity, strict=True):
        month_end[(day.year, day.month)] = e
    level, rose = run.init_cash, 0
    for e in month_end.values():
        rose += e > level
        level = e

    return {
        "total_return": total,
        "annual_return": (1 + total) ** (per_year / n) - 1,
        "sharpe": sharpe,
        "max_drawdown": worst,
        "win_rate": len(wins) / len(pnls) if pnls else None,
        "trades": len(run.trades),
        "profit_factor": gross_win / gross_loss if gross_loss > 0 else None,
        "exposure": sum(run.in_position) / n,
        "positive_month_share": rose / len(month_end),
        "final_value": run.equity[-1],
        # the risk stage's concentration: the best closed trade's share of all winning trades' profit
        "best_trade_share": max(wins) / gross_win if gross_win > 0 else None,
        "bars": n,
        "window_start": run.days[0],
        "window_end": run.days[-1],
    }


# Signals, one bar at a time from that bar and the ones before it. Each function returns the
# raw (entries, exits) lists of one parameter set.


def _sma(values: list[float], i: int, n: int) -> float | None:
    return None if i + 1 < n else sum(values[i + 1 - n : i + 1]) / n


def _std(values: list[float], i: int, n: int) -> float | None:
    mean = _sma(values, i, n)
    if mean is None:
        return None
    return math.sqrt(sum((v - mean) ** 2 for v in values[i + 1 - n : i + 1]) / n)


def ma_crossover(bars: pd.DataFrame, p: Mapping) -> tuple[list[bool], list[bool]]:
    close = bars["close"].tolist()
    entries, exits = [False] * len(close), [False] * len(close)
    for i in range(1, len(close)):
        f0, s0 = _sma(close, i - 1, p["fast"]), _sma(close, i - 1, p["slow"])
        f1, s1 = _sma(close, i, p["fast"]), _sma(close, i, p["slow"])
        if None in (f0, s0, f1, s1):
            continue
        entries[i] = f0 <= s0 and f1 > s1
        exits[i] = f0 >= s0 and f1 < s1
    return entries, exits


def _rsi(close: list[float], n: int) -> list[float | None]:
    """Wilder's RSI: the first average over n changes, then alpha = 1/n smoothing."""
    out: list[float | None] = [None] * len(close)
    gain = loss = 0.0
    for i in range(1, len(close)):
        change = close[i] - close[i - 1]
        up, down = max(change, 0.0), max(-change, 0.0)
        if i <= n:
            gain += up / n
            loss += down / n
            if i < n:
                continue
        else:
            gain = (gain * (n - 1) + up) / n
            loss = (loss * (n - 1) + down) / n
        # No move at all yet: neither overbought nor oversold (the engine's convention too).
        out[i] = (50.0 if gain == 0 else 100.0) if loss == 0 else 100 - 100 / (1 + gain / loss)
    return out


def rsi_reversion(bars: pd.DataFrame, p: Mapping) -> tuple[list[bool], list[bool]]:
    rsi = _rsi(bars["close"].tolist(), p["period"])
    entries = [r is not None and r < p["lower"] for r in rsi]
    exits = [r is not None and r > p["upper"] for r in rsi]
    return entries, exits


def bollinger_breakout(bars: pd.DataFrame, p: Mapping) -> tuple[list[bool], list[bool]]:
    close = bars["close"].tolist()
    entries, exits = [False] * len(close), [False] * len(close)
    for i in range(len(close)):
        mid, std = _sma(close, i, p["window"]), _std(close, i, p["window"])
        if mid is None:
            continue
        entries[i] = close[i] > mid + p["k"] * std
        exits[i] = close[i] < mid
    return entries, exits


def momentum(bars: pd.DataFrame, p: Mapping) -> tuple[list[bool], list[bool]]:
    close = bars["close"].tolist()
    n = p["lookback"]
    entries, exits = [False] * len(close), [False] * len(close)
    for i in range(n, len(close)):
        change = close[i] / close[i - n] - 1
        entries[i] = change > p["threshold"]
        exits[i] = change < 0
    return entries, exits


SIGNALS = {
    "ma_crossover": ma_crossover,
    "rsi_reversion": rsi_reversion,
    "bollinger_breakout": bollinger_breakout,
    "momentum": momentum,
}


def backtest(
    bars: pd.DataFrame, asset_class: str, strategy: str, params: Mapping, *, start=None, end=None, **costs
) -> tuple[dict, Run]:
    entries, exits = SIGNALS[strategy](bars, params)
    run = simulate(bars, entries, exits, start=start, end=end, **costs)
    return metrics(run, asset_class), run


def synthetic_bars(seed: int, asset_class: str, years: float, end: str = "2026-10-30") -> pd.DataFrame:
    """Seeded daily bars on the asset class's calendar (crypto every day, stocks and forex on
    weekdays): a geometric random walk whose drift switches regime every ~60 bars, so every
    strategy both enters and exits; opens gap from the previous close."""
    rng = np.random.default_rng(seed)
    days = pd.date_range(end=end, periods=int(years * 366) + 1, freq="D", tz="UTC")
    if asset_class != "crypto":
        days = days[days.day_of_week < 5]
    days = days[-round(years * BARS_PER_YEAR[asset_class]) :]
    n = len(days)
    vol = {"crypto": 0.035, "stock": 0.015, "forex": 0.005}[asset_class]
    drift = np.repeat(rng.normal(0, vol / 4, n // 60 + 1), 60)[:n]
    close = 100 * np.exp(np.cumsum(drift + rng.normal(0, vol, n)))
    opens = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0, vol / 4, n))
    spread = np.abs(rng.normal(0, vol / 2, n))
    return pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, close) * (1 + spread),
            "low": np.minimum(opens, close) * (1 - spread),
            "close": close,
            "volume": rng.integers(1_000, 100_000, n).astype(float),
        },
        index=days,
    )
