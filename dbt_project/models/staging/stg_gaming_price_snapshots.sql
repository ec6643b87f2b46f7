-- Daily Steam prices, one row per game per day, with the day before's price of the same game
-- (NULL on its first snapshot, or when the currency changed in between).
select
    tenant_id,
    snapshot_date,
    igdb_id,
    steam_appid,
    currency,
    initial_price,
    final_price,
    discount_percent,
    is_free,
    available,
    fetched_at,
    lag(snapshot_date) over game_days as previous_snapshot_date,
    case when lag(currency) over game_days = currency then lag(final_price) over game_days end
        as previous_final_price,
    lag(discount_percent) over game_days as previous_discount_percent
from {{ source('gaming', 'gaming_price_snapshots') }}
window game_days as (partition by tenant_id, igdb_id order by snapshot_date)
