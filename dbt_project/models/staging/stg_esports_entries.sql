-- Tournament entries with the flags the marts count.
select
    tenant_id,
    tournament_id,
    player_id,
    team,
    placement,
    prize_won,
    registered_at,
    status,
    status not in ('withdrawn') as entered,
    status = 'finished' as finished,
    status in ('withdrawn', 'disqualified') as dropped_out,
    coalesce(placement <= 3, false) as podium,
    coalesce(placement = 1, false) as won
from {{ source('esports', 'gaming_tournament_entries') }}
