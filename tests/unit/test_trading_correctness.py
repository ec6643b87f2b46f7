"""The sweep's metrics against the plain per-bar reference (tests/trading_reference.py), and the
reference itself against hand-computed cases."""

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from ml.trading.backtest import CostModel, run_sweep
from ml.trading.strategies import STRATEGIES, generate_candidates
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
    assert m["best_trade_share"] == 1.0
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
    assert m["best_trade_share"] is None
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
    assert m["trades"] == 2 and m["win_rate"] == 0.5 and m["best_trade_share"] == 1.0
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
        "rsi_reversion": {"period": 14, "lower": 30, "upper": 70},
        "bollinger_breakout": {"window": 20, "k": 1.0},
        "momentum": {"lookback": 10, "threshold": 0.02},
    }.items():
        entries, exits = ref.SIGNALS[name](bars, params)
        assert any(entries) and any(exits), name
        prefix = ref.SIGNALS[name](bars.iloc[:45], params)
        assert prefix == (entries[:45], exits[:45]), name


# --- the sweep against the reference ---------------------------------------------------------------

# Relative tolerance on every float metric: both sides do the same IEEE arithmetic in a different
# order (vectorbt's cash/shares bookkeeping against the reference's single products), so they
# agree to a few ulps per fill; 1e-9 leaves room for ~10^6 ulps of drift over hundreds of fills
# and still catches any semantic difference (one basis point of fee is 1e-4).
RTOL = 1e-9
CLASSES = {"BTC-USD": "crypto", "AAPL": "stock", "EURUSD": "forex"}
PER_STRATEGY = 10


@pytest.fixture(scope="module")
def market():
    return {s: ref.synthetic_bars(i, cls, years=3) for i, (s, cls) in enumerate(CLASSES.items())}


def sample_candidates():
    everything = generate_candidates(list(CLASSES))
    picked = []
    for name in STRATEGIES:
        group = [c for c in everything if c.strategy == name]
        picked += group[:: max(1, len(group) // PER_STRATEGY)][:PER_STRATEGY]
    return picked


def assert_metrics_match(got: pd.Series, want: dict, label: str):
    for name, expected in want.items():
        value = got[name]
        if name in ("window_start", "window_end"):
            assert pd.Timestamp(value).date() == expected.date(), (label, name, value)
        elif expected is None:
            assert value is None or math.isnan(value), (label, name, value)
        elif name in ("trades", "bars"):
            assert value == expected, (label, name, value, expected)
        else:
            assert value == pytest.approx(expected, rel=RTOL, abs=1e-12), (label, name, value, expected)


@pytest.mark.parametrize(
    "window, costs",
    [
        (None, CostModel()),
        (("2024-06-01", "2025-12-31"), CostModel()),
        # Other costs, so a default wired in somewhere instead of the model's own would show.
        (("2024-06-01", "2025-12-31"), CostModel(init_cash=2_500.0, fees=0.005, slippage=0.0)),
    ],
    ids=["all-bars", "window", "window-other-costs"],
)
def test_sweep_metrics_and_equity_equal_the_per_bar_reference(market, window, costs):
    start, end = window or (None, None)
    candidates = sample_candidates()
    assert len({c.strategy for c in candidates}) == 4 and len(candidates) == 4 * PER_STRATEGY
    assert {c.symbol for c in candidates} == set(CLASSES)
    kept = [c.candidate_id for c in candidates[::7]]
    result = run_sweep(market, CLASSES, candidates, start=start, end=end, costs=costs, keep_equity=kept)
    traded = 0
    for c in candidates:
        want, run = ref.backtest(
            market[c.symbol], CLASSES[c.symbol], c.strategy, c.params, start=start, end=end,
            init_cash=costs.init_cash, fees=costs.fees, slippage=costs.slippage,
        )  # fmt: skip
        traded += want["trades"] > 0
        assert_metrics_match(result.metrics.loc[c.candidate_id], want, c.candidate_id)
        if c.candidate_id in kept:
            equity = result.equity[c.candidate_id]
            assert list(equity.index) == run.days
            np.testing.assert_allclose(equity.to_numpy(), run.equity, rtol=RTOL)
    assert traded >= 0.9 * len(candidates)  # the comparison covers fills, not idle cash
    if window:
        # 2024-06-01 is a Saturday: the stock and forex windows open on the Monday.
        assert set(result.metrics["window_start"]) == {date(2024, 6, 1), date(2024, 6, 3)}
        assert set(result.metrics["window_end"]) == {date(2025, 12, 31)}
