-- Directory coverage and listing completeness per tenant, category and city: how many
-- businesses the tenant's searches cover, how complete their listings are, and how fresh.
select
    tenant_id,
    category,
    city,
    count(*) filter (where status = 'active')::int as businesses,
    count(*) filter (where status = 'missing')::int as missing_businesses,
    round(avg(has_phone::int) filter (where status = 'active'), 3) as share_with_phone,
    round(avg(has_website::int) filter (where status = 'active'), 3) as share_with_website,
    round(avg(has_opening_hours::int) filter (where status = 'active'), 3) as share_with_opening_hours,
    round(avg((verified_at is not null)::int) filter (where status = 'active'), 3) as share_verified,
    round(avg(source_count) filter (where status = 'active'), 2) as avg_sources_per_business,
    max(last_seen) as last_seen_at,
    max(verified_at) as last_verified_at,
    round((extract(epoch from now() - max(last_seen)) / 3600.0)::numeric, 2) as freshness_hours,
    now() as built_at
from {{ ref('stg_businesses') }}
group by tenant_id, category, city
