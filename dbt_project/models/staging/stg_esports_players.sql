-- Players, with "active in the last 30 days" measured back from the tenant's latest known
-- activity: exports arrive in batches, so a quiet week of exports does not read as a collapse.
select
    tenant_id,
    player_id,
    handle,
    country,
    team,
    primary_game,
    platform,
    skill_rating,
    status,
    joined_at,
    last_active_at,
    date_trunc('week', joined_at)::date as joined_week,
    max(last_active_at) over (partition by tenant_id) as activity_as_of,
    last_active_at >= max(last_active_at) over (partition by tenant_id) - interval '30 days'
        as active_last_30d
from {{ source('esports', 'gaming_players') }}
