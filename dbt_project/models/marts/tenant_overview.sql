-- Per tenant: what it subscribes to, how much data each of its tables holds, when it was last
-- materialized, and how fresh its stalest table is.
with loads_per_table as (
    select
        tenant_id,
        domain,
        table_name,
        sum(row_count) as row_count,
        max(loaded_at) as last_loaded_at
    from {{ ref('stg_table_loads') }}
    group by 1, 2, 3
),

per_tenant as (
    select
        tenant_id,
        jsonb_object_agg(table_name, row_count order by table_name) as row_counts,
        sum(row_count)::bigint as total_rows,
        count(*)::int as tables_loaded,
        array_agg(distinct domain order by domain) as domains_loaded,
        max(last_loaded_at) as last_materialized_at,
        min(last_loaded_at) as stalest_table_loaded_at
    from loads_per_table
    group by 1
)

select
    t.tenant_id,
    t.display_name,
    t.kind,
    t.parent_tenant_id,
    t.tier,
    t.domains,
    t.status,
    coalesce(p.row_counts, '{}'::jsonb) as row_counts,
    coalesce(p.total_rows, 0) as total_rows,
    coalesce(p.tables_loaded, 0) as tables_loaded,
    coalesce(p.domains_loaded, '{}') as domains_loaded,
    p.last_materialized_at,
    tp.materialized_at as profile_materialized_at,
    coalesce(cardinality(tp.readable_tenants), 0) as readable_tenant_count,
    round((extract(epoch from now() - p.stalest_table_loaded_at) / 3600.0)::numeric, 2)
        as freshness_hours,
    now() as built_at
from {{ ref('stg_tenants') }} as t
left join per_tenant as p on p.tenant_id = t.tenant_id
left join {{ ref('stg_tenant_profile') }} as tp on tp.tenant_id = t.tenant_id
