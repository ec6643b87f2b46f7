-- One row per backtested candidate: its in-sample and forward metrics, the gap between them,
-- the risk verdict and where the candidate stands. `score` is the forward Sharpe ratio, the
-- evidence from data the strategy never saw; `rank` orders a tenant's candidates by it (best 1),
-- then candidates that never reached the forward test by their in-sample Sharpe, ties by id.
-- `status` and `stage` follow the API's /strategies definitions.
with backtests as (
    select * from {{ ref('stg_trading_backtests') }}
),

forward as (
    select * from {{ ref('stg_trading_forward_tests') }}
),

risk as (
    select * from {{ ref('stg_trading_risk_assessments') }}
),

approvals as (
    select * from {{ ref('stg_trading_approvals') }}
)

select
    b.tenant_id,
    b.candidate_id,
    b.strategy,
    b.params,
    b.symbol,
    b.asset_class,
    row_number() over (
        partition by b.tenant_id
        order by f.sharpe desc nulls last, b.sharpe desc nulls last, b.candidate_id
    )::int as rank,
    f.sharpe as score,
    b.window_start as backtest_start,
    b.window_end as backtest_end,
    b.total_return as backtest_return,
    b.annual_return as backtest_annual_return,
    b.sharpe as backtest_sharpe,
    b.max_drawdown as backtest_max_drawdown,
    b.win_rate as backtest_win_rate,
    b.trades as backtest_trades,
    b.profit_factor as backtest_profit_factor,
    b.positive_month_share as backtest_positive_month_share,
    b.passed as passed_backtest,
    f.window_start as forward_start,
    f.window_end as forward_end,
    f.total_return as forward_return,
    f.sharpe as forward_sharpe,
    f.max_drawdown as forward_max_drawdown,
    f.trades as forward_trades,
    f.positive_month_share as forward_positive_month_share,
    f.performance_gap,
    f.gap_within_target,
    f.passed as passed_forward,
    r.passed as passed_risk,
    coalesce(r.breaches, '{}') as risk_breaches,
    case
        when a.candidate_id is not null then 'approval'
        when r.candidate_id is not null then 'risk'
        when f.candidate_id is not null then 'forward_test'
        else 'backtest'
    end as stage,
    coalesce(
        a.status,
        case
            when b.passed and coalesce(f.passed, true) and coalesce(r.passed, true) then 'testing'
            else 'failed'
        end
    ) as status,
    a.decided_at,
    a.decided_by,
    now() as built_at
from backtests as b
left join forward as f on f.tenant_id = b.tenant_id and f.candidate_id = b.candidate_id
left join risk as r on r.tenant_id = b.tenant_id and r.candidate_id = b.candidate_id
left join approvals as a on a.tenant_id = b.tenant_id and a.candidate_id = b.candidate_id
