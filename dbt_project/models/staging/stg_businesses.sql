-- The businesses master as analysts read it: one row per business per tenant, with the
-- completeness flags the directory marts aggregate.
select
    tenant_id,
    business_id,
    name,
    category,
    subcategory,
    coalesce(nullif(city, ''), '(unknown)') as city,
    state,
    country_code,
    lat,
    lon,
    phone,
    website,
    opening_hours_raw,
    opening_hours,
    phone is not null as has_phone,
    website is not null as has_website,
    opening_hours_raw is not null as has_opening_hours,
    opening_hours is not null as has_parsed_opening_hours,
    sources,
    cardinality(sources) as source_count,
    status,
    first_seen,
    last_seen,
    verified_at,
    changed_at
from {{ source('core', 'businesses_master') }}
