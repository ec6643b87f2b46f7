"""The vectorised backtest sweep: every candidate of a calendar in one vectorbt call per chunk.

Semantics are those of ml/trading/__init__.py. Concretely, for the trading window
[start, end] (inclusive; default: all bars):
- the raw signal of row t (from bars[: t + 1], warm-up bars before `start` included) is
  executed at row t + 1's open; the window's first bar can therefore execute the signal of the
  bar just before the window (there is no signal before a symbol's first bar);
- equity is valued at each close of the window; the day before the window counts as equity
  `init_cash`, so the first daily return is equity_0 / init_cash - 1 and the drawdown's first
  peak is init_cash;
- positive_month_share: calendar months of the window whose last equity is above the previous
  month's last equity (the first month's against init_cash);
- beyond METRICS, `best_trade_share`: the single best closed trade's share of the gross profit
  of all winning closed trades (the risk stage's concentration);
- undefined metrics (sharpe without variance, win rate without a closed trade, profit factor
  without a losing closed trade) are NaN in `SweepResult.metrics`.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.trading.strategies import STRATEGIES, Candidate, Strategy


@dataclass(frozen=True)
class CostModel:
    init_cash: float = 10_000.0
    fees: float = 0.001
    slippage: float = 0.001


BARS_PER_YEAR = {"crypto": 365, "stock": 252, "forex": 260}
METRICS = (
    "total_return", "annual_return", "sharpe", "max_drawdown", "win_rate", "trades",
    "profit_factor", "exposure", "positive_month_share", "final_value",
)  # fmt: skip
BAR_COLUMNS = ("open", "high", "low", "close", "volume")
LOOKAHEAD_CUTS = 8


class LookAheadError(ValueError):
    """A strategy's signal at some row depends on later bars."""


@dataclass
class SweepResult:
    metrics: pd.DataFrame  # index candidate_id; METRICS, best_trade_share, bars, window_start, window_end
    equity: dict[str, pd.Series] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the sweep (signals, simulation, metrics)

    @property
    def candidates_per_second(self) -> float:
        return len(self.metrics) / self.seconds if self.seconds > 0 else float("nan")


# --- input checks --------------------------------------------------------------------------------


def _check_bars(symbol: str, bars: pd.DataFrame) -> None:
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise ValueError(f"bars of {symbol}: the index must be a DatetimeIndex of days")
    missing = [c for c in ("open", "close") if c not in bars.columns]
    if missing:
        raise ValueError(f"bars of {symbol}: missing columns {', '.join(missing)}")
    if not bars.index.is_monotonic_increasing or bars.index.has_duplicates:
        raise ValueError(f"bars of {symbol}: days must be increasing and unique")
    prices = bars[["open", "close"]].to_numpy(dtype=float)
    if not np.isfinite(prices).all() or (prices <= 0).any():
        raise ValueError(f"bars of {symbol}: open and close must be positive numbers")


def _window_mask(index: pd.DatetimeIndex, start, end) -> np.ndarray:
    mask = np.ones(len(index), dtype=bool)
    if start is not None:
        mask &= index >= _stamp(start, index)
    if end is not None:
        mask &= index <= _stamp(end, index)
    return mask


def _stamp(value, index: pd.DatetimeIndex) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    if index.tz is not None and stamp.tz is None:
        stamp = stamp.tz_localize(index.tz)
    elif index.tz is None and stamp.tz is not None:
        stamp = stamp.tz_convert(None)
    return stamp


# --- look-ahead ----------------------------------------------------------------------------------


def check_causal(strategy: Strategy, bars: pd.DataFrame, params: Sequence[Mapping]) -> None:
    """Raise LookAheadError unless the signals computed on prefixes of `bars` equal the full
    run's signals on those prefixes. The cuts are placed right after rows where the full run
    signals (where peeking at a later bar changes an answer), plus the middle."""
    entries, exits = strategy.signals(bars, params)
    n = len(bars)
    if entries.shape != (n, len(params)) or exits.shape != (n, len(params)):
        raise ValueError(
            f"strategy {strategy.name!r} returned signals of shape {entries.shape}/{exits.shape}, "
            f"expected {(n, len(params))}"
        )
    active = np.flatnonzero((entries | exits).any(axis=1))
    picks = active[np.linspace(0, len(active) - 1, LOOKAHEAD_CUTS).astype(int)] if len(active) else []
    cuts = sorted({int(row) + 1 for row in picks if row + 1 < n} | ({n // 2} if n > 2 else set()))
    for cut in cuts:
        prefix_entries, prefix_exits = strategy.signals(bars.iloc[:cut], params)
        differ = int((prefix_entries != entries[:cut]).sum() + (prefix_exits != exits[:cut]).sum())
        if differ:
            raise LookAheadError(
                f"strategy {strategy.name!r} looks ahead: its signals on the bars up to "
                f"{bars.index[cut - 1]:%Y-%m-%d} change once later bars are added ({differ} values differ)"
            )


# --- the sweep -----------------------------------------------------------------------------------


@dataclass
class _Column:
    """One candidate prepared for simulation: its executable signals over the window."""

    candidate: Candidate
    entries: np.ndarray
    exits: np.ndarray


def _prepare_symbol(
    symbol: str, bars: pd.DataFrame, candidates: list[Candidate], mask: np.ndarray,
    strategies: Mapping[str, Strategy],
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Shifted (executable) window signals of all the symbol's candidates, columns in order."""
    entries = np.zeros((int(mask.sum()), len(candidates)), dtype=bool)
    exits = entries.copy()
    by_strategy: dict[str, list[int]] = {}
    for i, candidate in enumerate(candidates):
        by_strategy.setdefault(candidate.strategy, []).append(i)
    for name, columns in by_strategy.items():
        raw_entries, raw_exits = strategies[name].signals(bars, [candidates[i].params for i in columns])
        # Executed one bar later: row t trades on the signal of row t - 1.
        entries[:, columns] = np.vstack([np.zeros((1, len(columns)), bool), raw_entries[:-1]])[mask]
        exits[:, columns] = np.vstack([np.zeros((1, len(columns)), bool), raw_exits[:-1]])[mask]
    return entries, exits


def run_sweep(
    bars_by_symbol: Mapping[str, pd.DataFrame],
    asset_classes: Mapping[str, str],
    candidates: Sequence[Candidate],
    *,
    start=None,
    end=None,
    costs: CostModel = CostModel(),
    strategies: Mapping[str, Strategy] = STRATEGIES,
    chunk_size: int = 2000,
    keep_equity: Collection[str] = (),
) -> SweepResult:
    """Backtest every candidate on its symbol's bars in [start, end]; see the module doc."""
    began = time.perf_counter()
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    by_symbol: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        if candidate.strategy not in strategies:
            raise ValueError(f"candidate {candidate.candidate_id}: unknown strategy {candidate.strategy!r}")
        if candidate.symbol not in bars_by_symbol:
            raise ValueError(f"candidate {candidate.candidate_id}: no bars for symbol {candidate.symbol!r}")
        if asset_classes.get(candidate.symbol) not in BARS_PER_YEAR:
            raise ValueError(
                f"symbol {candidate.symbol!r}: asset class must be one of {', '.join(BARS_PER_YEAR)}, "
                f"got {asset_classes.get(candidate.symbol)!r}"
            )
        by_symbol.setdefault(candidate.symbol, []).append(candidate)
    if len({c.candidate_id for c in candidates}) != len(candidates):
        raise ValueError("candidate ids must be unique")

    checked: set[str] = set()
    calendars: dict[bytes, dict] = {}
    for symbol, members in by_symbol.items():
        bars = bars_by_symbol[symbol]
        _check_bars(symbol, bars)
        if end is not None:
            # No bar after the window reaches a strategy at all (the forward test's window stays
            # unseen in-sample), whatever check_causal's sample of cut points would catch.
            bars = bars[_window_mask(bars.index, None, end)]
        for name in dict.fromkeys(c.strategy for c in members):
            if name not in checked:
                check_causal(strategies[name], bars, [c.params for c in members if c.strategy == name])
                checked.add(name)
        mask = _window_mask(bars.index, start, end)
        if not mask.any():
            raise ValueError(f"symbol {symbol!r} has no bars between {start} and {end}")
        entries, exits = _prepare_symbol(symbol, bars, members, mask, strategies)
        index = bars.index[mask]
        group = calendars.setdefault(index.asi8.tobytes(), {"index": index, "symbols": []})
        group["symbols"].append((symbol, members, entries, exits, bars.loc[mask]))

    frames, equity = [], {}
    keep = set(keep_equity)
    for group in calendars.values():
        frame, kept = _simulate_calendar(
            group["index"], group["symbols"], asset_classes, costs, chunk_size, keep
        )
        frames.append(frame)
        equity.update(kept)
    metrics = pd.concat(frames) if frames else _empty_metrics()
    metrics = metrics.reindex([c.candidate_id for c in candidates])
    return SweepResult(metrics, equity, time.perf_counter() - began)


def _empty_metrics() -> pd.DataFrame:
    columns = [*METRICS, "best_trade_share", "bars", "window_start", "window_end"]
    return pd.DataFrame(columns=columns, index=pd.Index([], name="candidate_id"))


def _simulate_calendar(index, symbols, asset_classes, costs, chunk_size, keep):
    ids, sym_of_column, entries, exits = [], [], [], []
    opens, closes, bpy = [], [], []
    for s, (symbol, members, sym_entries, sym_exits, bars) in enumerate(symbols):
        ids += [c.candidate_id for c in members]
        sym_of_column += [s] * len(members)
        entries.append(sym_entries)
        exits.append(sym_exits)
        opens.append(bars["open"].to_numpy(dtype=float))
        closes.append(bars["close"].to_numpy(dtype=float))
        bpy.append(BARS_PER_YEAR[asset_classes[symbol]])
    entries, exits = np.hstack(entries), np.hstack(exits)
    opens, closes = np.column_stack(opens), np.column_stack(closes)
    sym_of_column, bpy = np.array(sym_of_column), np.array(bpy, dtype=float)
    months = index.tz_localize(None).to_period("M") if index.tz is not None else index.to_period("M")
    month_ends = np.flatnonzero(np.r_[months[1:] != months[:-1], True])

    frames, kept = [], {}
    for lo in range(0, len(ids), chunk_size):
        cols = slice(lo, lo + chunk_size)
        sym = sym_of_column[cols]
        value, in_position, trades = _simulate(opens[:, sym], closes[:, sym], entries[:, cols],
                                               exits[:, cols], costs)  # fmt: skip
        frame = _metrics(value, in_position, trades, bpy[sym], month_ends, costs.init_cash)
        frame.index = pd.Index(ids[cols], name="candidate_id")
        frames.append(frame)
        for j, cid in enumerate(ids[cols]):
            if cid in keep:
                kept[cid] = pd.Series(value[:, j], index=index, name=cid)
    result = pd.concat(frames)
    result["bars"] = len(index)
    result["window_start"] = index[0].date()
    result["window_end"] = index[-1].date()
    return result, kept


def _simulate(opens, closes, entries, exits, costs):
    """One vectorbt call for a chunk: (value, in_position, trade records)."""
    import vectorbt as vbt  # imported on use: numba compiles on first import

    width = closes.shape[1]
    if width == 1:
        # vectorbt runs one column through other (1-D) kernels, another ~10 s numba compile.
        opens, closes, entries, exits = (np.repeat(a, 2, axis=1) for a in (opens, closes, entries, exits))
    # C-contiguous inputs: a strided view would make numba compile another specialisation.
    opens, closes, entries, exits = map(np.ascontiguousarray, (opens, closes, entries, exits))
    # Plain arrays in and records out: vectorbt's pandas wrapping of inputs and of value()/assets()
    # copied every matrix (under pandas 3) and cost about as much as the simulation itself.
    pf = vbt.Portfolio.from_signals(
        close=closes,
        price=opens,
        entries=entries,
        exits=exits,
        direction="longonly",
        accumulate=False,
        upon_long_conflict="ignore",
        init_cash=costs.init_cash,
        fees=costs.fees,
        slippage=costs.slippage,
        freq="1D",
    )
    trades = pf.trades.values
    value, assets = _replay_orders(pf.order_records, closes, costs.init_cash)
    if width == 1:
        return value[:, :1], assets[:, :1] > 0, trades[trades["col"] == 0]
    return value, assets > 0, trades


def _replay_orders(orders: np.ndarray, closes: np.ndarray, init_cash: float) -> tuple[np.ndarray, np.ndarray]:
    """Equity and holdings at each close from vectorbt's order records (bar, column, size, fill
    price after slippage, fees, side). All in, long only, at most one order a bar: a buy turns all
    cash into `size` shares, a sale turns them back into its proceeds, so each bar's state is
    that of the column's last order (no running sum to accumulate rounding)."""
    rows, cols = orders["idx"], orders["col"]
    buy = orders["side"] == 0
    shares = np.zeros_like(closes)
    cash = np.zeros_like(closes)
    shares[rows, cols] = np.where(buy, orders["size"], 0.0)
    cash[rows, cols] = np.where(buy, 0.0, orders["size"] * orders["price"] - orders["fees"])
    # Forward-fill each column from its last order (before the first: the initial cash, no shares).
    last = np.zeros(closes.shape, dtype=np.int64)
    last[rows, cols] = rows + 1
    last = np.maximum.accumulate(last, axis=0)
    filled = last > 0
    pick = np.maximum(last - 1, 0)
    grid = np.arange(closes.shape[1])
    shares = np.where(filled, shares[pick, grid], 0.0)
    cash = np.where(filled, cash[pick, grid], init_cash)
    return cash + shares * closes, shares


def _metrics(value, in_position, trades, bars_per_year, month_ends, init_cash) -> pd.DataFrame:
    n, k = value.shape
    with_start = np.vstack([np.full((1, k), init_cash), value])
    returns = with_start[1:] / with_start[:-1] - 1
    total_return = value[-1] / init_cash - 1
    std = returns.std(axis=0, ddof=1) if n > 1 else np.full(k, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(std > 1e-12, returns.mean(axis=0) / std * np.sqrt(bars_per_year), np.nan)
        annual_return = np.where(total_return > -1, (1 + total_return) ** (bars_per_year / n) - 1, -1.0)
    drawdown = 1 - with_start / np.maximum.accumulate(with_start, axis=0)
    month_values = np.vstack([np.full((1, k), init_cash), value[month_ends]])
    positive_months = (month_values[1:] > month_values[:-1]).mean(axis=0)

    col = trades["col"]
    closed = trades["status"] == 1
    pnl = trades["pnl"]
    count = np.bincount(col, minlength=k)
    closed_count = np.bincount(col[closed], minlength=k)
    wins = np.bincount(col[closed & (pnl > 0)], minlength=k)
    gross_win = np.bincount(col[closed & (pnl > 0)], weights=pnl[closed & (pnl > 0)], minlength=k)
    gross_loss = -np.bincount(col[closed & (pnl < 0)], weights=pnl[closed & (pnl < 0)], minlength=k)
    best_win = np.zeros(k)
    np.maximum.at(best_win, col[closed & (pnl > 0)], pnl[closed & (pnl > 0)])
    with np.errstate(divide="ignore", invalid="ignore"):
        win_rate = np.where(closed_count > 0, wins / closed_count, np.nan)
        profit_factor = np.where(gross_loss > 0, gross_win / gross_loss, np.nan)
        best_trade_share = np.where(gross_win > 0, best_win / gross_win, np.nan)
    return pd.DataFrame(
        {
            "total_return": total_return,
            "annual_return": annual_return,
            "sharpe": sharpe,
            "max_drawdown": np.clip(drawdown.max(axis=0), 0.0, 1.0),
            "win_rate": win_rate,
            "trades": count.astype(int),
            "profit_factor": profit_factor,
            "exposure": in_position.mean(axis=0),
            "positive_month_share": positive_months,
            "final_value": value[-1],
            "best_trade_share": best_trade_share,
        }
    )
