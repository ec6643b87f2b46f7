"""The sweep's metrics against the plain per-bar reference (tests/trading_reference.py), and the
reference itself against hand-computed cases."""

import math

import numpy as np
import pandas as pd
import pytest

from tests import trading_reference as ref


def bars_from(opens, closes, start="2024-01-01", freq="D") -> pd.DataFrame:
    index = pd.date_range(start, periods=len(opens), freq=freq, tz="UTC")
    opens, closes = np.asarray(opens, float), np.asarray(closes, float)
    return pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, closes) + 1,
            "low": np.minimum(opens, closes) - 1,
            "close": closes,
            "volume": 1_000.0,
        },
        index=index,
    )


FIVE = bars_from([100, 101, 102, 103, 104], [100.5, 101.5, 102.5, 103.5, 104.5])


def test_reference_round_trip_to_the_cent():
    # Entry decided on day 0 fills at day 1's open 101 x 1.001 with all 10,000 less 0.1% fees;
    # exit decided on day 2 fills at day 3's open 103 x 0.999, less 0.1% fees.
    run = ref.simulate(FIVE, [True, False, False, False, False], [False, False, True, False, False])
    (trade,) = run.trades
    assert trade.entry.day == FIVE.index[1] and trade.exit.day == FIVE.index[3]
    assert trade.entry.price == pytest.approx(101.101)
    assert trade.entry.shares == pytest.approx(98.81217782, abs=1e-8)
    assert round(trade.exit.cash, 2) == 10157.31
    assert [round(e, 2) for e in run.equity] == [10000.00, 10029.44, 10128.25, 10157.31, 10157.31]
    assert run.in_position == [False, True, True, False, False]

    m = ref.metrics(run, "crypto")
    assert m["total_return"] == pytest.approx(0.0157309185, abs=1e-10)
    assert m["trades"] == 1 and m["win_rate"] == 1.0
    assert m["profit_factor"] is None  # no losing trade: undefined
    assert m["exposure"] == pytest.approx(2 / 5)
    assert m["max_drawdown"] == 0.0
    assert m["final_value"] == pytest.approx(10157.309184717)
    assert m["positive_month_share"] == 1.0
    assert m["annual_return"] == pytest.approx(1.0157309185 ** (365 / 5) - 1)


def test_reference_open_position_is_valued_at_the_last_close_and_not_a_closed_trade():
    run = ref.simulate(FIVE, [False, False, True, False, False], [False] * 5)
    assert run.trades[0].exit is None
    shares = 10_000 / (103 * 1.001 * 1.001)
    assert run.equity[-1] == pytest.approx(shares * 104.5)
    m = ref.metrics(run, "stock")
    assert m["trades"] == 1 and m["win_rate"] is None and m["profit_factor"] is None
    assert m["total_return"] == pytest.approx(shares * 104.5 / 10_000 - 1)


def test_reference_same_bar_entry_and_exit_do_nothing_and_last_signal_is_dropped():
    run = ref.simulate(FIVE, [True, False, False, False, True], [True, False, False, False, False])
    assert run.trades == [] and run.equity == [10_000.0] * 5
    m = ref.metrics(run, "forex")
    assert m["sharpe"] is None  # no variance
    assert m["total_return"] == 0 and m["exposure"] == 0 and m["positive_month_share"] == 0


def test_reference_losses_drawdown_sharpe_and_months():
    # Two round trips across a month end: a loss in January, a win in February.
    opens = [100, 100, 90, 90, 90, 100, 110, 110]
    closes = [100, 95, 90, 90, 95, 105, 110, 110]
    bars = bars_from(opens, closes, start="2024-01-28")
    entries = [True, False, False, True, False, False, False, False]
    exits = [False, True, False, False, False, True, False, False]
    run = ref.simulate(bars, entries, exits)
    first_cash = 10_000 / (100 * 1.001 * 1.001) * 90 * 0.999 * 0.999
    assert run.trades[0].pnl == pytest.approx(first_cash - 10_000)
    second_shares = first_cash / (90 * 1.001 * 1.001)
    final = second_shares * 110 * 0.999 * 0.999
    assert run.equity[-1] == pytest.approx(final)
    m = ref.metrics(run, "stock")
    assert m["trades"] == 2 and m["win_rate"] == 0.5
    assert m["profit_factor"] == pytest.approx((final - first_cash) / (10_000 - first_cash))
    # The deepest point is the cash after the first (losing) exit, against the initial cash.
    assert m["max_drawdown"] == pytest.approx(1 - first_cash / 10_000)
    returns = np.array(run.equity) / np.array([10_000] + run.equity[:-1]) - 1
    assert m["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(252))
    # January (28th-31st) ends below 10,000; February ends above January's close.
    assert m["positive_month_share"] == 0.5


def test_reference_window_fills_the_warm_up_bars_signal_and_starts_from_the_initial_cash():
    run = ref.simulate(FIVE, [False, True, False, False, False], [False] * 5, start="2024-01-03")
    assert run.days[0] == FIVE.index[2] and run.trades[0].entry.day == FIVE.index[2]
    assert ref.metrics(run, "crypto")["bars"] == 3
    later = ref.simulate(FIVE, [False, True, False, False, False], [False] * 5, end="2024-01-02")
    assert later.trades == [] and len(later.equity) == 2


def test_reference_signals_are_causal_and_cross():
    close = np.r_[np.linspace(100, 80, 30), np.linspace(80, 130, 30), np.linspace(130, 90, 30)]
    bars = bars_from(close, close)
    for name, params in {
        "ma_crossover": {"fast": 5, "slow": 20},
        "rsi_reversion": {"window": 14, "lower": 30, "upper": 70},
        "bollinger_breakout": {"window": 20, "k": 1.0},
        "momentum": {"lookback": 10, "threshold": 0.02},
    }.items():
        entries, exits = ref.SIGNALS[name](bars, params)
        assert any(entries) and any(exits), name
        prefix = ref.SIGNALS[name](bars.iloc[:45], params)
        assert prefix == (entries[:45], exits[:45]), name
