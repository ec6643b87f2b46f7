-- Esports news as analysts read it: one row per story per tenant.
select
    tenant_id,
    item_key,
    source,
    sources,
    cardinality(sources) as source_count,
    title,
    url,
    author,
    tags,
    published_at,
    published_inferred,
    first_seen_at,
    last_seen_at
from {{ source('esports', 'gaming_news_items') }}
