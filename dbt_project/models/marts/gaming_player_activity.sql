-- Per tenant and player: how active they are and what they have played. "Last 30 days"
-- counts back from the tenant's latest known activity (see stg_esports_players).
with entries as (
    select e.*, t.start_at, t.currency
    from {{ ref('stg_esports_entries') }} as e
    inner join {{ ref('stg_esports_tournaments') }} as t using (tenant_id, tournament_id)
),

per_player as (
    select
        tenant_id,
        player_id,
        count(*) filter (where entered)::int as tournaments_entered,
        count(*) filter (where finished)::int as tournaments_finished,
        count(*) filter (where won)::int as wins,
        count(*) filter (where podium)::int as podiums,
        min(placement) as best_placement,
        min(start_at) filter (where entered) as first_tournament_at,
        max(start_at) filter (where entered) as last_tournament_at
    from entries
    group by tenant_id, player_id
),

winnings as (
    select tenant_id, player_id, jsonb_object_agg(currency, won order by currency) as prize_won
    from (
        select tenant_id, player_id, currency, sum(prize_won) as won
        from entries
        where prize_won > 0
        group by tenant_id, player_id, currency
    ) as by_currency
    group by tenant_id, player_id
)

select
    p.tenant_id,
    p.player_id,
    p.handle,
    p.country,
    p.team,
    p.primary_game,
    p.status,
    p.joined_at,
    p.last_active_at,
    p.activity_as_of,
    p.active_last_30d,
    extract(day from p.activity_as_of - p.last_active_at)::int as days_since_active,
    coalesce(s.tournaments_entered, 0) as tournaments_entered,
    coalesce(s.tournaments_finished, 0) as tournaments_finished,
    coalesce(s.wins, 0) as wins,
    coalesce(s.podiums, 0) as podiums,
    s.best_placement,
    s.first_tournament_at,
    s.last_tournament_at,
    coalesce(w.prize_won, '{}'::jsonb) as prize_won,
    now() as built_at
from {{ ref('stg_esports_players') }} as p
left join per_player as s using (tenant_id, player_id)
left join winnings as w using (tenant_id, player_id)
