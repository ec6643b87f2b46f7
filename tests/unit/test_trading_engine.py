"""The strategy library, the candidate set and the vectorised sweep on hand-checkable series."""

from datetime import date

import numpy as np
import pandas as pd
import pytest
from dagster import Failure

from ml.trading.backtest import CostModel, LookAheadError, run_sweep
from ml.trading.strategies import STRATEGIES, Candidate, Strategy, candidate_id, generate_candidates
from ml.trading.validation import (
    Rule,
    Window,
    forward_window,
    in_sample_window,
    judge,
    performance_gap,
    plan_queue,
)
from orchestration.trading_settings import trading_settings


def bars_from(close, start="2020-01-01", opens=None) -> pd.DataFrame:
    close = np.asarray(close, dtype=float)
    opens = close if opens is None else np.asarray(opens, dtype=float)
    index = pd.date_range(start, periods=len(close), freq="D", tz="UTC")
    return pd.DataFrame(
        {"open": opens, "high": np.maximum(opens, close), "low": np.minimum(opens, close), "close": close,
         "volume": 1.0},
        index=index,
    )  # fmt: skip


def walk(n=400, seed=0, start="2018-01-01") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0005, 0.02, n)))
    opens = close * np.exp(rng.normal(0, 0.005, n))
    return bars_from(close, start, opens)


# --- signals -------------------------------------------------------------------------------------


def test_ma_crossover_signals_on_the_cross_only():
    bars = bars_from([5, 4, 3, 2, 3, 4, 5, 4, 3, 2])
    entries, exits = STRATEGIES["ma_crossover"].signals(bars, [{"fast": 1, "slow": 3}])
    # SMA3 from row 2: 4, 3, 2.67, 3, 4, 4.33, 4, 3; the close (3 > 2.67) crosses above at row 4 and
    # (4 < 4.33) below at row 7.
    assert np.flatnonzero(entries[:, 0]).tolist() == [4]
    assert np.flatnonzero(exits[:, 0]).tolist() == [7]


def test_rsi_reversion_thresholds_and_warm_up():
    bars = bars_from([10, 9, 8, 7, 6, 5, 6, 7, 8, 9, 10, 11])
    entries, exits = STRATEGIES["rsi_reversion"].signals(
        bars, [{"period": 3, "lower": 20, "upper": 80}, {"period": 3, "lower": 20, "upper": 95}]
    )
    # RSI(3), undefined before row 3: 0, 0, 0, 33.3, 55.6, 70.4, 80.2, 86.8, 91.2.
    assert np.flatnonzero(entries[:, 0]).tolist() == [3, 4, 5]
    assert np.flatnonzero(exits[:, 0]).tolist() == [9, 10, 11] and not exits[:, 1].any()


def test_bollinger_and_momentum_signals():
    close = [10.0] * 5 + [20.0, 10.0, 5.0]
    entries, exits = STRATEGIES["bollinger_breakout"].signals(bars_from(close), [{"window": 5, "k": 1.5}])
    assert np.flatnonzero(entries[:, 0]).tolist() == [5]  # jump far above mean + 1.5 std
    assert np.flatnonzero(exits[:, 0]).tolist() == [6, 7]  # below the 5-bar mean 12, then 9
    entries, exits = STRATEGIES["momentum"].signals(
        bars_from([10, 11, 12, 11, 9]), [{"lookback": 2, "threshold": 0.1}]
    )
    assert entries[:, 0].tolist() == [False, False, True, False, False]  # 12/10 - 1 = 0.2 > 0.1
    assert exits[:, 0].tolist() == [False, False, False, False, True]  # 9/12 - 1 < 0


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_default_grid_runs_without_nan_and_shapes(name):
    strategy = STRATEGIES[name]
    candidates = [c for c in generate_candidates(["X"]) if c.strategy == name]
    entries, exits = strategy.signals(walk(300), [c.params for c in candidates])
    assert entries.shape == exits.shape == (300, len(candidates)) and entries.dtype == bool
    assert entries.any() and exits.any()


# --- candidates ----------------------------------------------------------------------------------


def test_candidates_from_grids_are_valid_deterministic_and_overridable():
    candidates = generate_candidates(["BTC-USD", "AAPL"])
    assert len(candidates) == 2 * 80
    assert all(c.params["fast"] < c.params["slow"] for c in candidates if c.strategy == "ma_crossover")
    assert [c.candidate_id for c in candidates] == [
        c.candidate_id for c in generate_candidates(["BTC-USD", "AAPL"])
    ]
    assert candidate_id("momentum", {"lookback": 10, "threshold": 0.0}, "AAPL") == candidate_id(
        "momentum", {"threshold": 0, "lookback": 10.0}, "AAPL"
    )
    small = generate_candidates(["AAPL"], {"ma_crossover": {"fast": [5], "slow": [3, 20]}})
    assert [c.params for c in small if c.strategy == "ma_crossover"] == [{"fast": 5, "slow": 20}]
    with pytest.raises(ValueError, match="no parameter 'window'"):
        generate_candidates(["AAPL"], {"ma_crossover": {"window": [5]}})
    with pytest.raises(ValueError, match="unknown strategies"):
        generate_candidates(["AAPL"], {"pairs": {"x": [1]}})


# --- the sweep -----------------------------------------------------------------------------------


def test_one_trade_matches_the_execution_model_by_hand():
    bars = bars_from([10, 10, 10, 12, 12, 12, 9, 9], opens=[10, 10, 11, 11, 13, 12, 10, 8])
    cost = CostModel()
    cand = Candidate("c", "ma_crossover", {"fast": 1, "slow": 2}, "X")
    result = run_sweep({"X": bars}, {"X": "stock"}, [cand], keep_equity=["c"])
    row = result.metrics.loc["c"]
    # Cross above at row 3 (close 12 > SMA2 11) -> buy at row 4's open 13; cross below at row 6
    # (9 < 10.5) -> sell at row 7's open 8.
    shares = cost.init_cash / (13 * 1.001 * 1.001)
    final = shares * 8 * 0.999 * 0.999
    assert row["trades"] == 1 and row["win_rate"] == 0 and row["profit_factor"] == 0
    assert row["final_value"] == pytest.approx(final)
    assert row["total_return"] == pytest.approx(final / cost.init_cash - 1)
    assert row["exposure"] == pytest.approx(3 / 8)  # in position at the closes of rows 4, 5, 6
    equity = result.equity["c"].to_numpy()
    assert equity[3] == cost.init_cash and equity[4] == pytest.approx(shares * 12)
    assert row["max_drawdown"] == pytest.approx(1 - final / cost.init_cash)


def test_window_and_chunks_do_not_change_results():
    symbols = {"A": walk(500, 1), "B": walk(500, 2), "C": walk(400, 3, "2018-03-01")}
    classes = {"A": "crypto", "B": "stock", "C": "forex"}
    candidates = generate_candidates(list(symbols))
    whole = run_sweep(symbols, classes, candidates, start="2018-06-01", end="2019-03-31")
    chunked = run_sweep(symbols, classes, candidates, start="2018-06-01", end="2019-03-31", chunk_size=7)
    pd.testing.assert_frame_equal(whole.metrics, chunked.metrics)
    assert list(whole.metrics.index) == [c.candidate_id for c in candidates]
    assert (whole.metrics["window_start"].astype(str) == "2018-06-01").all()
    assert whole.metrics["bars"].eq(304).all() and whole.metrics["trades"].sum() > 0
    assert whole.metrics["max_drawdown"].between(0, 1).all() and whole.metrics["exposure"].between(0, 1).all()
    # A symbol's own result does not depend on who else is in the sweep.
    alone = run_sweep({"A": symbols["A"]}, classes, [c for c in candidates if c.symbol == "A"],
                      start="2018-06-01", end="2019-03-31")  # fmt: skip
    pd.testing.assert_frame_equal(alone.metrics, whole.metrics.loc[alone.metrics.index])


def _peeking(bars, params):
    nxt = bars["close"].shift(-1).to_numpy()[:, None]
    now = bars["close"].to_numpy()[:, None]
    with np.errstate(invalid="ignore"):
        return np.repeat(nxt > now, len(params), 1), np.repeat(nxt < now, len(params), 1)


def test_a_strategy_that_peeks_at_the_next_bar_is_caught():
    peek = Strategy("peek", {"x": (1,)}, "tomorrow's close", _peeking)
    strategies = {**STRATEGIES, "peek": peek}
    cand = generate_candidates(["A"], strategies={"peek": peek})
    with pytest.raises(LookAheadError, match="'peek' looks ahead"):
        run_sweep({"A": walk(200)}, {"A": "stock"}, cand, strategies=strategies)


# --- validation rules ----------------------------------------------------------------------------


def test_windows_keep_the_holdout_unseen_and_refuse_short_histories():
    window = in_sample_window(date(2019, 1, 1), date(2026, 11, 24), warmup_days=365, holdout_days=730)
    assert window == Window(date(2020, 1, 1), date(2024, 11, 24))
    capped = in_sample_window(date(2019, 1, 1), date(2026, 11, 24), warmup_days=365, holdout_days=730,
                              in_sample_days=366)  # fmt: skip
    assert capped.start == date(2023, 11, 25) and capped.end == window.end  # 366 days, 2024 is a leap year
    forward = forward_window(window.end, date(2026, 11, 24), gap_days=5)
    assert forward.start == date(2024, 11, 30)  # five embargoed days in between
    with pytest.raises(ValueError, match="too short"):
        in_sample_window(date(2026, 1, 1), date(2026, 11, 24), warmup_days=365, holdout_days=30)
    with pytest.raises(ValueError, match="no forward window"):
        forward_window(date(2026, 11, 20), date(2026, 11, 24), gap_days=5)


def test_criteria_name_every_failure_and_undefined_values():
    frame = pd.DataFrame(
        {"sharpe": [1.2, 0.1, np.nan], "trades": [10, 3, 0], "profit_factor": [np.nan, 0.5, np.nan]},
        index=["a", "b", "c"],
    )
    rules = [Rule("sharpe", "min", 0.5), Rule("trades", "min", 5), Rule("profit_factor", "min", 1.0, True)]
    passed, reasons = judge(frame, rules)
    assert passed.to_dict() == {"a": True, "b": False, "c": False}
    assert reasons["b"] == ["sharpe 0.1 < min 0.5", "trades 3 < min 5", "profit_factor 0.5 < min 1"]
    assert reasons["c"] == ["sharpe undefined", "trades 0 < min 5"]  # no profit factor: no losing trade


def test_performance_gap_is_the_relative_shortfall():
    gap = performance_gap(np.array([1.0, 2.0, -1.0, 0.0]), np.array([0.85, 2.5, -1.5, 1.0]))
    assert gap[:3] == pytest.approx([0.15, -0.25, 0.5]) and np.isnan(gap[3])


def test_the_queue_keeps_decisions_and_withdraws_what_no_longer_passes():
    current = {"p": "pending", "a": "approved", "r": "rejected", "w": "withdrawn", "a2": "approved"}
    changes = plan_queue(
        current, passing={"new", "p", "a", "r", "w"}, why_not={"a2": "risk: exposure 0.95 > max 0.9"}
    )
    assert {(c.candidate_id, c.status, c.reason) for c in changes} == {
        ("new", "pending", None),
        ("p", "pending", None),
        ("w", "pending", "passes every stage again"),
        ("a2", "withdrawn", "risk: exposure 0.95 > max 0.9"),
    }  # approved "a" and rejected "r" are a human's: untouched


def test_settings_choose_strategies_and_grids_with_clear_errors():
    settings = trading_settings(
        "t", {"trading": {"strategies": ["momentum"], "grids": {"momentum": {"lookback": [5]}}}}
    )
    assert [c.params for c in settings.candidates(["AAPL"])] == [
        {"lookback": 5, "threshold": t} for t in STRATEGIES["momentum"].grid["threshold"]
    ]
    assert len(trading_settings("t", {}).candidates(["AAPL"])) == 80
    for bad, key in [
        ({"strategies": ["pairs"]}, "settings.trading.strategies"),
        ({"grids": {"momentum": {"window": [5]}}}, "settings.trading.grids"),
        ({"strategies": ["momentum"], "grids": {"ma_crossover": {}}}, "settings.trading.grids.ma_crossover"),
    ]:
        with pytest.raises(Failure, match=key):
            trading_settings("t", {"trading": bad})


def test_the_marts_use_the_same_gap_target_as_the_assets():
    import yaml

    from ml.trading.validation import PLAN_GAP_TARGET
    from orchestration.runtime import DBT_PROJECT_DIR

    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    assert project["vars"]["quanttrade_gap_target"] == PLAN_GAP_TARGET


def test_rolling_bands_stay_exact_far_below_earlier_prices():
    # A price that has fallen 10^5-fold: running add-and-remove sums (pandas rolling) kept the
    # error of the early prices and moved the band enough to flip a breakout signal.
    from ml.trading.strategies import _rolling

    close = pd.Series(np.r_[np.linspace(100.0, 1.0, 3000), 0.001 * (1 + 0.01 * np.sin(np.arange(600)))])
    window = 10
    exact = np.array(
        [close.iloc[t - window + 1 : t + 1].to_numpy().std() for t in range(window - 1, len(close))]
    )
    got = _rolling(close, window, lambda w: w.std(axis=1))[window - 1 :]
    assert np.isnan(_rolling(close, window, lambda w: w.std(axis=1))[: window - 1]).all()
    assert np.allclose(got, exact, rtol=1e-9, atol=0)
