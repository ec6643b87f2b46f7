{{ config(meta={'dagster': {'ref': {'name': 'tenant_overview'}}}) }}
-- The overview's row counts come from the load log. A row written into a table without going
-- through the warehouse resource (or a load log out of step) shows up here as a mismatch.
with actual as (
    select tenant_id, count(*) as row_count
    from {{ source('core', 'tenant_profile') }}
    group by 1
)

select o.tenant_id, o.row_counts ->> 'core.tenant_profile' as logged, a.row_count as actual
from {{ ref('tenant_overview') }} as o
full outer join actual as a on a.tenant_id = o.tenant_id
where coalesce((o.row_counts ->> 'core.tenant_profile')::bigint, 0) <> coalesce(a.row_count, 0)
