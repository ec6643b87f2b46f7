-- How candidates fare through the validation stages, per tenant and strategy, plus one row per
-- tenant over every strategy (strategy = 'all'). Each stage's pass rate is over the candidates
-- that reached it; overall_pass_rate is the share of all candidates that passed every test.
-- The gap figures are the plan's success metric: median backtest-vs-forward gap and the share
-- of forward-tested candidates within 15 %.
with board as (
    select * from {{ ref('quanttrade_strategy_leaderboard') }}
)

select
    tenant_id,
    coalesce(strategy, 'all') as strategy,
    grouping(strategy) = 1 as is_total,
    count(*)::int as candidates,
    count(*) filter (where passed_backtest)::int as passed_backtest,
    count(passed_forward)::int as forward_tested,
    count(*) filter (where passed_forward)::int as passed_forward,
    count(passed_risk)::int as risk_assessed,
    count(*) filter (where passed_risk)::int as passed_risk,
    count(*) filter (where status = 'pending')::int as pending,
    count(*) filter (where status = 'approved')::int as approved,
    count(*) filter (where status = 'rejected')::int as rejected,
    count(*) filter (where status = 'withdrawn')::int as withdrawn,
    round(count(*) filter (where passed_backtest)::numeric / count(*), 4)::double precision
        as backtest_pass_rate,
    round(
        count(*) filter (where passed_forward)::numeric / nullif(count(passed_forward), 0), 4
    )::double precision as forward_pass_rate,
    round(
        count(*) filter (where passed_risk)::numeric / nullif(count(passed_risk), 0), 4
    )::double precision as risk_pass_rate,
    round(count(*) filter (where passed_risk)::numeric / count(*), 4)::double precision
        as overall_pass_rate,
    round((percentile_cont(0.5) within group (order by performance_gap))::numeric, 4)::double precision
        as median_gap,
    round(
        count(*) filter (where gap_within_target)::numeric / nullif(count(performance_gap), 0), 4
    )::double precision as share_within_target,
    round(avg(forward_positive_month_share)::numeric, 4)::double precision as avg_forward_positive_month_share,
    max(forward_sharpe) as best_forward_sharpe,
    now() as built_at
from board
group by grouping sets ((tenant_id, strategy), (tenant_id))
