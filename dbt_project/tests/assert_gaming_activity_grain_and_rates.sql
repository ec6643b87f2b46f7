{{ config(meta={'dagster': {'ref': {'name': 'gaming_activity'}}}) }}
-- One row per tenant, week and game, and every rate a share between 0 and 1.
select tenant_id, week_start, game, 'duplicate row' as problem
from {{ ref('gaming_activity') }}
group by tenant_id, week_start, game
having count(*) > 1
union all
select tenant_id, week_start, game, 'rate out of range'
from {{ ref('gaming_activity') }}
where completion_rate not between 0 and 1
    or dropout_rate not between 0 and 1
    or active_players > entrants
