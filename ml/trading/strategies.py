"""The strategy library and the candidate set (strategy x parameters x symbol).

A strategy turns daily bars into raw entry/exit signals for a whole list of parameter sets at
once: each indicator is computed once per distinct window and broadcast across the parameter
sets that share it, so a grid of hundreds of candidates costs a handful of rolling passes.
Signals are raw: the value at row t uses bars[: t + 1] only and is NOT shifted; the engine
(ml.trading.backtest) executes it at the next bar's open. Warm-up rows (an indicator not yet
defined) are False, never NaN.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

Signals = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Strategy:
    name: str
    grid: Mapping[str, tuple]
    description: str
    compute: Callable[[pd.DataFrame, Sequence[Mapping]], Signals] = field(repr=False)
    is_valid: Callable[[Mapping], bool] = field(default=lambda params: True, repr=False)

    def valid(self, params: Mapping) -> bool:
        return bool(self.is_valid(params))

    def signals(self, bars: pd.DataFrame, params: Sequence[Mapping]) -> Signals:
        """(entries, exits): bool arrays of shape (len(bars), len(params))."""
        if not len(params):
            empty = np.zeros((len(bars), 0), dtype=bool)
            return empty, empty.copy()
        entries, exits = self.compute(bars, params)
        return np.asarray(entries, dtype=bool), np.asarray(exits, dtype=bool)


# --- indicators (causal: row t from rows <= t) ---------------------------------------------------


def _by_window(values: Sequence[int], indicator: Callable[[int], np.ndarray]) -> np.ndarray:
    """indicator(w) for each entry of `values`, computed once per distinct w, as columns."""
    cache = {w: indicator(int(w)) for w in sorted(set(values))}
    return np.column_stack([cache[w] for w in values])


def _windows(close: pd.Series, window: int) -> np.ndarray | None:
    """Row t of the result holds closes t-window+1..t (None when there are fewer bars)."""
    values = close.to_numpy(dtype=float)
    return sliding_window_view(values, window) if len(values) >= window else None


def _rolling(close: pd.Series, window: int, statistic: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`statistic` over each trailing window, NaN before the first full one. Each window is summed
    afresh: pandas' running add-and-remove sums carry the error of earlier, larger prices, which
    at a price 10^5 times below its peak moved a Bollinger band by 2e-5 and flipped signals."""
    out = np.full(len(close), np.nan)
    windows = _windows(close, window)
    if windows is not None:
        out[window - 1 :] = statistic(windows)
    return out


def _sma(close: pd.Series, window: int) -> np.ndarray:
    return _rolling(close, window, lambda w: w.mean(axis=1))


def _wilder(moves: pd.Series, period: int) -> pd.Series:
    """Wilder's smoothing as he defined it (and TA-Lib computes it): the first average is the
    simple mean of the first `period` moves, then alpha 1/period. Seeding the exponential
    average with the first move instead shifts the RSI by several points for ~5 periods."""
    seeded = moves.copy()
    seeded.iloc[: period + 1] = np.nan
    if len(moves) > period:
        seeded.iloc[period] = moves.iloc[1 : period + 1].mean()
    return seeded.ewm(alpha=1 / period, adjust=False).mean()


def _rsi(close: pd.Series, period: int) -> np.ndarray:
    """Wilder's RSI (see _wilder), NaN for the first `period` rows."""
    delta = close.diff()
    gain, loss = _wilder(delta.clip(lower=0), period), _wilder((-delta).clip(lower=0), period)
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = 100 - 100 / (1 + gain.to_numpy() / loss.to_numpy())
    # No losses at all in the smoothing window: RSI is 100 (gain/0 = inf gives that already).
    rsi[(loss.to_numpy() == 0) & (gain.to_numpy() == 0)] = 50.0
    rsi[:period] = np.nan
    return rsi


def _column(params: Sequence[Mapping], key: str) -> np.ndarray:
    return np.array([p[key] for p in params], dtype=float)


def _crossed_above(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a crosses above b at row t: a > b at t and a <= b at t - 1 (both defined at both rows)."""
    prev_a, prev_b = np.roll(a, 1, axis=0), np.roll(b, 1, axis=0)
    with np.errstate(invalid="ignore"):
        out = (a > b) & (prev_a <= prev_b)
    out[0] = False
    return out


# --- the strategies ------------------------------------------------------------------------------


def _ma_crossover(bars: pd.DataFrame, params: Sequence[Mapping]) -> Signals:
    close = bars["close"]
    fast = _by_window([p["fast"] for p in params], lambda w: _sma(close, w))
    slow = _by_window([p["slow"] for p in params], lambda w: _sma(close, w))
    return _crossed_above(fast, slow), _crossed_above(slow, fast)


def _rsi_reversion(bars: pd.DataFrame, params: Sequence[Mapping]) -> Signals:
    rsi = _by_window([p["period"] for p in params], lambda w: _rsi(bars["close"], w))
    with np.errstate(invalid="ignore"):
        return rsi < _column(params, "lower"), rsi > _column(params, "upper")


def _bollinger_breakout(bars: pd.DataFrame, params: Sequence[Mapping]) -> Signals:
    close = bars["close"]
    windows = [p["window"] for p in params]
    mid = _by_window(windows, lambda w: _sma(close, w))
    std = _by_window(windows, lambda w: _rolling(close, w, lambda x: x.std(axis=1)))
    price = close.to_numpy()[:, None]
    with np.errstate(invalid="ignore"):
        return price > mid + _column(params, "k") * std, price < mid


def _momentum(bars: pd.DataFrame, params: Sequence[Mapping]) -> Signals:
    close = bars["close"]
    change = _by_window([p["lookback"] for p in params], lambda w: (close / close.shift(w) - 1).to_numpy())
    with np.errstate(invalid="ignore"):
        return change > _column(params, "threshold"), change < 0


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy(
            "ma_crossover",
            {"fast": (5, 10, 20, 30, 50), "slow": (20, 50, 100, 150, 200)},
            "Buy when the fast simple moving average of the close crosses above the slow one; sell when it "
            "crosses back below.",
            _ma_crossover,
            lambda p: p["fast"] < p["slow"],
        ),
        Strategy(
            "rsi_reversion",
            {"period": (7, 14, 21), "lower": (20, 25, 30), "upper": (65, 70, 75)},
            "Mean reversion: buy while Wilder's RSI(period) is below `lower` (oversold), sell once it is "
            "above `upper` (overbought).",
            _rsi_reversion,
            lambda p: p["period"] >= 2 and 0 < p["lower"] < p["upper"] < 100,
        ),
        Strategy(
            "bollinger_breakout",
            {"window": (10, 20, 30, 50), "k": (1.5, 2.0, 2.5)},
            "Breakout: buy when the close rises above the upper Bollinger band (mean + k population standard "
            "deviations over `window` closes); sell when it falls below the middle band.",
            _bollinger_breakout,
            lambda p: p["window"] >= 2 and p["k"] > 0,
        ),
        Strategy(
            "momentum",
            {"lookback": (10, 20, 60, 120, 250), "threshold": (0.0, 0.02, 0.05, 0.1)},
            "Time-series momentum: buy when the close is more than `threshold` above the close `lookback` "
            "bars earlier; sell when it is below it.",
            _momentum,
            lambda p: p["lookback"] >= 1 and p["threshold"] >= 0,
        ),
    )
}


# --- candidates ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    candidate_id: str
    strategy: str
    params: Mapping[str, int | float]
    symbol: str


def _number(value) -> int | float:
    """10, 10.0 and np.int64(10) are the same parameter: one canonical form for ids and storage."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"strategy parameters must be numbers, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"strategy parameters must be finite, got {value!r}")
    return int(value) if value.is_integer() else value


def candidate_id(strategy: str, params: Mapping, symbol: str) -> str:
    """Stable across runs and processes: readable prefix + a digest of the canonical parameters.
    URL-safe (it is a path segment of the approval routes)."""
    canonical = json.dumps(
        {"strategy": strategy, "symbol": symbol, "params": {k: _number(v) for k, v in params.items()}},
        sort_keys=True,
        separators=(",", ":"),
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    return f"{strategy}.{symbol}.{digest}"


def resolve_grid(strategy: Strategy, override: Mapping[str, Sequence] | None = None) -> dict[str, tuple]:
    """The strategy's grid with `override`'s parameters replaced; unknown parameters are an error."""
    grid = {k: tuple(v) for k, v in strategy.grid.items()}
    for key, values in (override or {}).items():
        if key not in grid:
            raise ValueError(
                f"strategy {strategy.name!r} has no parameter {key!r}; its parameters: {', '.join(grid)}"
            )
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise ValueError(
                f"grid {strategy.name}.{key} must be a non-empty list of numbers, got {values!r}"
            )
        grid[key] = tuple(dict.fromkeys(_number(v) for v in values))
    return grid


def generate_candidates(
    symbols: Sequence[str],
    grids: Mapping[str, Mapping[str, Sequence]] | None = None,
    strategies: Mapping[str, Strategy] = STRATEGIES,
) -> list[Candidate]:
    """Every valid (strategy, parameters, symbol), in a deterministic order (symbol, strategy,
    grid order). `grids` overrides parameters of named strategies; the others keep their grid."""
    grids = dict(grids or {})
    unknown = sorted(set(grids) - set(strategies))
    if unknown:
        raise ValueError(
            f"unknown strategies in grids: {', '.join(unknown)}; choose from {', '.join(strategies)}"
        )
    resolved = {name: resolve_grid(s, grids.get(name)) for name, s in strategies.items()}
    candidates = []
    for symbol in dict.fromkeys(symbols):
        for name, strategy in strategies.items():
            keys = list(resolved[name])
            for values in itertools.product(*(resolved[name][k] for k in keys)):
                params = dict(zip(keys, (_number(v) for v in values), strict=True))
                if strategy.valid(params):
                    candidates.append(Candidate(candidate_id(name, params, symbol), name, params, symbol))
    return candidates
