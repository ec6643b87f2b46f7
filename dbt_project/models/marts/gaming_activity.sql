-- Gaming activity per tenant, week and game: tournaments run, who entered them, how many saw
-- them through, and how many players joined. Each week also has a row with game = 'all games'
-- (players counted once across games), so rows of one week must not be summed over games.
with tournaments as (
    select * from {{ ref('stg_esports_tournaments') }}
),

entries as (
    select e.*, t.game, t.start_week, t.status as tournament_status, t.max_entrants
    from {{ ref('stg_esports_entries') }} as e
    inner join tournaments as t using (tenant_id, tournament_id)
),

tournament_stats as (
    select
        tenant_id,
        start_week as week_start,
        case when grouping(game) = 1 then 'all games' else game end as game,
        count(*)::int as tournaments,
        count(*) filter (where status = 'completed')::int as tournaments_completed,
        count(*) filter (where status = 'cancelled')::int as tournaments_cancelled,
        count(*) filter (where status in ('scheduled', 'registration_open', 'live'))::int
            as tournaments_upcoming_or_live,
        sum(max_entrants) as entrant_capacity
    from tournaments
    group by grouping sets ((tenant_id, start_week, game), (tenant_id, start_week))
),

entry_stats as (
    select
        tenant_id,
        start_week as week_start,
        case when grouping(game) = 1 then 'all games' else game end as game,
        count(*) filter (where entered)::int as entrants,
        count(*) filter (where entered and max_entrants is not null)::int as capped_entrants,
        count(distinct player_id) filter (where entered)::int as active_players,
        count(*) filter (where dropped_out)::int as dropouts,
        count(*) filter (where finished and tournament_status = 'completed')::int as finishers,
        count(*) filter (where tournament_status = 'completed')::int as completed_entries
    from entries
    group by grouping sets ((tenant_id, start_week, game), (tenant_id, start_week))
),

prize_by_currency as (
    select
        tenant_id,
        start_week as week_start,
        case when grouping(game) = 1 then 'all games' else game end as game,
        currency,
        sum(prize_pool) as prize_pool
    from tournaments
    where status <> 'cancelled'
    group by grouping sets ((tenant_id, start_week, game, currency), (tenant_id, start_week, currency))
),

prizes as (
    select tenant_id, week_start, game, jsonb_object_agg(currency, prize_pool order by currency) as prize_pools
    from prize_by_currency
    group by tenant_id, week_start, game
),

new_players as (
    select
        tenant_id,
        joined_week as week_start,
        case when grouping(primary_game) = 1 then 'all games' else coalesce(primary_game, '(none)') end
            as game,
        count(*)::int as new_players
    from {{ ref('stg_esports_players') }}
    group by grouping sets ((tenant_id, joined_week, primary_game), (tenant_id, joined_week))
),

weeks as (
    select tenant_id, week_start, game from tournament_stats
    union
    select tenant_id, week_start, game from new_players
)

select
    w.tenant_id,
    w.week_start,
    w.game,
    coalesce(t.tournaments, 0) as tournaments,
    coalesce(t.tournaments_completed, 0) as tournaments_completed,
    coalesce(t.tournaments_cancelled, 0) as tournaments_cancelled,
    coalesce(t.tournaments_upcoming_or_live, 0) as tournaments_upcoming_or_live,
    coalesce(e.entrants, 0) as entrants,
    coalesce(e.active_players, 0) as active_players,
    round(e.entrants::numeric / nullif(t.tournaments, 0), 2) as avg_entrants_per_tournament,
    round(e.entrants::numeric / nullif(e.active_players, 0), 2) as tournaments_per_player,
    round(e.finishers::numeric / nullif(e.completed_entries, 0), 3) as completion_rate,
    round(e.dropouts::numeric / nullif(e.entrants + e.dropouts, 0), 3) as dropout_rate,
    round(e.capped_entrants::numeric / nullif(t.entrant_capacity, 0), 3) as fill_rate,
    coalesce(p.prize_pools, '{}'::jsonb) as prize_pools,
    coalesce(n.new_players, 0) as new_players,
    now() as built_at
from weeks as w
left join tournament_stats as t using (tenant_id, week_start, game)
left join entry_stats as e using (tenant_id, week_start, game)
left join prizes as p using (tenant_id, week_start, game)
left join new_players as n using (tenant_id, week_start, game)
