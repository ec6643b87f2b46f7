-- Tournaments with the week they start in and how long they ran.
select
    tenant_id,
    tournament_id,
    name,
    game,
    format,
    region,
    team_size,
    max_entrants,
    start_at,
    end_at,
    date_trunc('week', start_at)::date as start_week,
    round((extract(epoch from end_at - start_at) / 3600.0)::numeric, 1) as duration_hours,
    prize_pool,
    currency,
    status
from {{ source('esports', 'gaming_tournaments') }}
