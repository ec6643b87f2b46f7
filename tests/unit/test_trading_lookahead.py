"""Look-ahead is impossible by construction: peeking strategies are refused by name, a window's
metrics cannot see bars after it, and a signal never fills at the prices of its own bar."""

import numpy as np
import pandas as pd
import pytest

from ml.trading.backtest import LookAheadError, run_sweep
from ml.trading.strategies import STRATEGIES, Strategy, generate_candidates
from tests import trading_reference as ref

COSTS = (1 + 0.001) * (1 + 0.001)  # slippage, then fees, on a buy


def constant(series: pd.Series, params) -> tuple[np.ndarray, np.ndarray]:
    """Entry where `series` rises, exit where it falls: one column per parameter set."""
    values = series.to_numpy()[:, None]
    with np.errstate(invalid="ignore"):
        up, down = values > 0, values < 0
    return np.repeat(up, len(params), 1), np.repeat(down, len(params), 1)


PEEKERS = {
    # tomorrow's close: the classic cheat
    "next_close": lambda bars, p: constant(bars["close"].shift(-1) - bars["close"], p),
    # tomorrow's opening gap: only one bar ahead, on another column
    "next_open": lambda bars, p: constant(bars["open"].shift(-1) - bars["close"], p),
    # a week ahead, rarely differing from a causal momentum rule
    "week_ahead": lambda bars, p: constant(bars["close"].shift(-5) - bars["close"].shift(5), p),
    # a centred moving average: half of its window lies in the future
    "centred_mean": lambda bars, p: constant(
        bars["close"] - bars["close"].rolling(21, center=True).mean(), p
    ),
    # the whole sample's mean: no shifted series at all
    "sample_mean": lambda bars, p: constant(bars["close"] - bars["close"].mean(), p),
}


@pytest.fixture(scope="module")
def stock():
    return ref.synthetic_bars(7, "stock", years=2)


@pytest.mark.parametrize("name", PEEKERS)
def test_a_peeking_strategy_is_refused_by_name(stock, name):
    peeker = Strategy(name, {"n": (1, 2)}, "peeks", PEEKERS[name])
    strategies = {**STRATEGIES, name: peeker}
    # Among honest strategies on the same symbol, so the error must single out the cheat.
    candidates = generate_candidates(["AAPL"], {"momentum": {"lookback": (10,), "threshold": (0.0,)}},
                                     {"momentum": STRATEGIES["momentum"], name: peeker})  # fmt: skip
    assert {c.strategy for c in candidates} == {"momentum", name}
    with pytest.raises(LookAheadError, match=f"'{name}'"):
        run_sweep({"AAPL": stock}, {"AAPL": "stock"}, candidates, strategies=strategies)


def test_the_honest_version_of_a_peeker_runs(stock):
    lagged = Strategy("yesterday", {"n": (1,)}, "causal", lambda b, p: constant(b["close"].diff(), p))
    candidates = generate_candidates(["AAPL"], strategies={"yesterday": lagged})
    result = run_sweep({"AAPL": stock}, {"AAPL": "stock"}, candidates, strategies={"yesterday": lagged})
    assert result.metrics["trades"].iloc[0] > 10


def test_bars_after_a_window_never_change_its_metrics():
    bars = {"BTC-USD": ref.synthetic_bars(1, "crypto", 3), "AAPL": ref.synthetic_bars(2, "stock", 3)}
    classes = {"BTC-USD": "crypto", "AAPL": "stock"}
    candidates = generate_candidates(list(bars))
    start, end = "2024-03-01", "2025-06-30"
    cut = pd.Timestamp(end, tz="UTC")
    before = run_sweep({s: b[b.index <= cut] for s, b in bars.items()}, classes, candidates, start=start)
    # Appended history, then the same history with a crash and a tenfold spike right after the
    # window: a metric that moved would have seen the future.
    after = run_sweep(bars, classes, candidates, start=start, end=end)
    shocked = {}
    for symbol, b in bars.items():
        b = b.copy()
        later = b.index > cut
        b.loc[later, ["open", "high", "low", "close"]] *= np.where(np.arange(later.sum()) % 2, 10.0, 0.1)[
            :, None
        ]
        shocked[symbol] = b
    shocked_run = run_sweep(shocked, classes, candidates, start=start, end=end)
    assert (before.metrics["trades"] > 0).mean() > 0.9
    pd.testing.assert_frame_equal(before.metrics, after.metrics, check_exact=True)
    pd.testing.assert_frame_equal(before.metrics, shocked_run.metrics, check_exact=True)


def test_a_signal_never_fills_at_its_own_bars_prices():
    # Day 3 opens at 50 and closes at 100; day 4 opens at 100. A buy filled on the signal's own
    # bar would double the money. Day 6 closes at 200 and day 7 opens at 100: a sale at the
    # signal bar's close would too.
    opens = [100, 100, 100, 50, 100, 110, 120, 100, 100, 100]
    closes = [100, 100, 100, 100, 105, 115, 200, 100, 100, 100]
    index = pd.date_range("2024-01-01", periods=len(opens), freq="D", tz="UTC")
    bars = pd.DataFrame({"open": opens, "high": np.maximum(opens, closes), "low": np.minimum(opens, closes),
                         "close": closes, "volume": 1.0}, index=index).astype(float)  # fmt: skip

    def on_days(bars, params):
        entries = np.zeros((len(bars), len(params)), bool)
        exits = entries.copy()
        entries[3:4], exits[6:7] = True, True  # slices: the causality check passes prefixes
        return entries, exits

    fixed = Strategy("fixed", {"n": (1,)}, "enters on day 3, exits on day 6", on_days)
    candidates = generate_candidates(["X"], strategies={"fixed": fixed})
    (cid,) = [c.candidate_id for c in candidates]
    result = run_sweep(
        {"X": bars}, {"X": "crypto"}, candidates, strategies={"fixed": fixed}, keep_equity=[cid]
    )
    equity = result.equity[cid].to_numpy()
    assert equity[3] == pytest.approx(10_000)  # still cash at the signal bar's close
    shares = equity[4] / closes[4]
    assert 10_000 / (shares * COSTS) == pytest.approx(opens[4])  # filled at day 4's open
    assert equity[6] == pytest.approx(shares * 200)  # still holding at the exit signal's close
    final = shares * opens[7] * (1 - 0.001) ** 2
    assert equity[7:] == pytest.approx([final] * 3)  # sold at day 7's open
    assert result.metrics.at[cid, "total_return"] == pytest.approx(final / 10_000 - 1)
    assert result.metrics.at[cid, "total_return"] < 0.01  # the cheat's fills would have made > 100%
