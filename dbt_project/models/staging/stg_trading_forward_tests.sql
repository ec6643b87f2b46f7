-- The forward test (walk-forward on the later, unseen window). `gap_within_target`: the
-- forward run is at most the plan's target (15 %) worse than its backtest (one-sided: a better
-- forward run is within it; var quanttrade_gap_target).
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
    performance_gap <= {{ var('quanttrade_gap_target') }} as gap_within_target,
    passed,
    fail_reasons
from {{ source('trading', 'trading_forward_tests') }}
