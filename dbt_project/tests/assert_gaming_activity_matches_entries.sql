{{ config(meta={'dagster': {'ref': {'name': 'gaming_activity'}}}) }}
-- Every entry is counted exactly once: per tenant, the 'all games' rows add up to the entries
-- (withdrawals excluded), and each week's 'all games' row equals the sum of its games' rows.
-- Returns the tenants or weeks where they differ.
with entries as (
    select tenant_id, count(*) filter (where entered) as entrants
    from {{ ref('stg_esports_entries') }}
    group by tenant_id
),

totals as (
    select tenant_id, sum(entrants) as entrants
    from {{ ref('gaming_activity') }}
    where game = 'all games'
    group by tenant_id
),

weeks as (
    select
        tenant_id,
        week_start,
        sum(entrants) filter (where game = 'all games') as all_games,
        sum(entrants) filter (where game <> 'all games') as per_game
    from {{ ref('gaming_activity') }}
    group by tenant_id, week_start
)

select coalesce(e.tenant_id, t.tenant_id) as tenant_id, null::date as week_start
from entries as e
full outer join totals as t on t.tenant_id = e.tenant_id
where coalesce(e.entrants, 0) <> coalesce(t.entrants, 0)
union all
select tenant_id, week_start
from weeks
where all_games <> coalesce(per_game, 0)
