-- The backtest stage as analysts read it: the candidate, its in-sample window and metrics and
-- the stage's verdict (ratios are fractions: 0.12 = 12 %).
select
    tenant_id,
    candidate_id,
    strategy,
    params,
    symbol,
    asset_class,
    window_start,
    window_end,
    bars,
    total_return,
    annual_return,
    sharpe,
    max_drawdown,
    win_rate,
    trades,
    profit_factor,
    exposure,
    positive_month_share,
    passed,
    fail_reasons
from {{ source('trading', 'trading_backtests') }}
