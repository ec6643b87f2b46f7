-- The game catalogue mart: per tenant and game, the blended score, the current price and
-- discount (the tenant's latest daily snapshot when it is newer than the catalogue's own fetch,
-- as the API serves it), the change against the game's snapshot before it, reviews, and how
-- fresh each part is.
with latest_day as (
    select tenant_id, max(snapshot_date) as snapshot_date
    from {{ ref('stg_gaming_price_snapshots') }}
    group by tenant_id
),

latest as (
    select s.*
    from {{ ref('stg_gaming_price_snapshots') }} as s
    inner join latest_day as d on d.tenant_id = s.tenant_id and d.snapshot_date = s.snapshot_date
),

priced as (
    select
        c.*,
        l.snapshot_date,
        l.previous_snapshot_date,
        l.previous_final_price,
        l.previous_discount_percent,
        l.fetched_at as price_fetched_at,
        l.final_price as snapshot_final_price,
        l.fetched_at is not null and (c.steam_fetched_at is null or l.fetched_at >= c.steam_fetched_at)
            as from_snapshot,
        l.currency as snapshot_currency,
        l.initial_price as snapshot_initial_price,
        l.discount_percent as snapshot_discount_percent,
        l.available as snapshot_available
    from {{ ref('stg_gaming_catalogue') }} as c
    left join latest as l on l.tenant_id = c.tenant_id and l.igdb_id = c.igdb_id
)

select
    tenant_id,
    igdb_id,
    steam_appid,
    opencritic_id,
    name,
    popularity_rank,
    release_date,
    genres,
    platforms,
    score,
    total_rating,
    critic_score,
    critic_tier,
    opencritic_status,
    opencritic_match_confidence,
    review_score,
    review_score_desc,
    reviews_total,
    steam_positive_share,
    steam_status,
    is_free,
    case when from_snapshot then snapshot_currency else currency end as currency,
    case when from_snapshot then snapshot_initial_price else initial_price end as initial_price,
    case when from_snapshot then snapshot_final_price else final_price end as price,
    coalesce(case when from_snapshot then snapshot_discount_percent else discount_percent end, 0)
        as discount_percent,
    coalesce(case when from_snapshot then snapshot_discount_percent else discount_percent end, 0) > 0
        as on_sale,
    case when from_snapshot then 'snapshot' when final_price is not null then 'catalogue' end as price_source,
    snapshot_date as price_snapshot_date,
    previous_snapshot_date,
    previous_final_price as previous_price,
    snapshot_final_price - previous_final_price as price_change,
    case when previous_final_price > 0
        then round((snapshot_final_price - previous_final_price) / previous_final_price * 100, 2)
    end as price_change_pct,
    previous_discount_percent,
    refreshed_at as catalogue_refreshed_at,
    round((extract(epoch from now() - refreshed_at) / 3600.0)::numeric, 2) as freshness_hours,
    round((extract(epoch from now() - coalesce(price_fetched_at, steam_fetched_at)) / 3600.0)::numeric, 2)
        as price_freshness_hours,
    now() as built_at
from priced
