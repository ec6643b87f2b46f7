"""QuantTrade's pure logic: the tenant's symbol universe and daily bars, the strategy library and
its candidates, the vectorised backtest sweep and its metrics, and the validation stages'
criteria. No Dagster and no database here; assets/trading*.py wire it to the warehouse.

Execution model (the contract the engine, the tests' per-bar reference simulation and the docs
share):
- long-only, all in: a signal computed from bars up to and including day t's close is executed
  at day t+1's open. The engine shifts signals by one bar itself, so no strategy can trade on
  the bar that produced its signal; a strategy whose signal for day t depends on later bars is
  rejected by the engine's causality check (`LookAheadError`).
- buy at open x (1 + slippage) with all cash, paying fees on the traded value:
  shares = cash / (price x (1 + fees)); sell at open x (1 - slippage), receiving
  shares x price x (1 - fees). Defaults: cash 10,000, fees 0.1 %, slippage 0.1 %.
- an entry and an exit on the same bar do nothing; a position still open at the window's end is
  valued at the last close (it counts in the return, not in win rate or profit factor).
- equity is valued at each close; daily returns are equity_t / equity_{t-1} - 1.
- metrics: total_return, annual_return (compounded over the window's bars), sharpe
  (mean / sample std of daily returns x sqrt(bars per year: crypto 365, stock 252, forex 260);
  None without variance), max_drawdown (largest fall from a peak, a positive fraction),
  win_rate and profit_factor over closed trades (None when undefined), trades (entries made),
  exposure (share of bars ending in a position), positive_month_share (share of calendar months
  whose equity rose).
"""
