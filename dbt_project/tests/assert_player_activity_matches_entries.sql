{{ config(meta={'dagster': {'ref': {'name': 'gaming_player_activity'}}}) }}
-- Every player appears once, and per tenant the tournaments entered add up to the entries.
with mart as (
    select tenant_id, count(*) as players, count(distinct player_id) as distinct_players,
           sum(tournaments_entered) as entered
    from {{ ref('gaming_player_activity') }}
    group by tenant_id
),

entries as (
    select tenant_id, count(*) filter (where entered) as entered
    from {{ ref('stg_esports_entries') }}
    group by tenant_id
)

select m.tenant_id
from mart as m
left join entries as e using (tenant_id)
where m.players <> m.distinct_players or m.entered <> coalesce(e.entered, 0)
