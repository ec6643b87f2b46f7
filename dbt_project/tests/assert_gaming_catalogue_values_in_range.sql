{{ config(meta={'dagster': {'ref': {'name': 'gaming_catalogue'}}}) }}
-- Scores, reviews, prices and discounts in the mart stay in their ranges, and a price change is
-- only reported against a previous snapshot. Returns the offending rows.
select tenant_id, igdb_id, score, review_score, price, discount_percent, price_change
from {{ ref('gaming_catalogue') }}
where score not between 0 and 100
   or critic_score not between 0 and 100
   or review_score not between 0 and 9
   or price < 0
   or initial_price < price
   or discount_percent not between 0 and 100
   or (price_change is not null and previous_price is null)
   or opencritic_match_confidence not between 0 and 1
