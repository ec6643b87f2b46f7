-- The forward test (walk-forward on the later, unseen window). `gap_within_target`: the
-- backtest-vs-forward gap is within the plan's target of 15 % either way.
select
    tenant_id,
    candidate_id,
    window_start,
    window_end,
    gap_days,
    bars,
    total_return,
    sharpe,
    max_drawdown,
    trades,
    positive_month_share,
    performance_gap,
    abs(performance_gap) <= 0.15 as gap_within_target,
    passed,
    fail_reasons
from {{ source('trading', 'trading_forward_tests') }}
