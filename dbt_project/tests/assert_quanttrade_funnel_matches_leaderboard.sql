-- The funnel's totals agree with the leaderboard and with its own per-strategy rows, and each
-- stage only narrows the one before it.
with board as (
    select tenant_id, count(*) as candidates, count(*) filter (where passed_risk) as passed_risk
    from {{ ref('quanttrade_strategy_leaderboard') }}
    group by 1
),

funnel as (
    select * from {{ ref('quanttrade_validation_funnel') }}
),

per_strategy as (
    select tenant_id, sum(candidates) as candidates, sum(approved) as approved
    from funnel where not is_total group by 1
)

select f.tenant_id, f.strategy
from funnel as f
left join board as b on b.tenant_id = f.tenant_id
left join per_strategy as s on s.tenant_id = f.tenant_id
where (f.is_total and (f.candidates <> b.candidates or f.passed_risk <> b.passed_risk
                       or f.candidates <> s.candidates or f.approved <> s.approved))
   or f.passed_backtest > f.candidates
   or f.passed_forward > f.forward_tested
   or f.passed_risk > f.risk_assessed
   or f.approved + f.pending + f.rejected + f.withdrawn > f.candidates
