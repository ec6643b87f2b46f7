-- Tables named after their asset rather than prefixed with their domain are listed here;
-- the rest follow the prefix convention (directory_..., gaming_...), and platform tables such
-- as tenant_profile belong to the 'platform' domain.
with named_tables (table_name, domain) as (
    values
        ('core.businesses_master', 'directory'),
        ('core.business_words', 'directory'),
        ('core.business_facets', 'directory')
)

select
    l.tenant_id,
    l.table_name,
    coalesce(
        n.domain,
        case
            when split_part(l.table_name, '.', 2) ~ '^(directory|gaming|crm|ecommerce|trading)_'
                then split_part(split_part(l.table_name, '.', 2), '_', 1)
            else 'platform'
        end
    ) as domain,
    l.partition_key,
    l.row_count,
    l.loaded_at,
    l.dagster_run_id
from {{ source('core', 'table_loads') }} as l
left join named_tables as n on n.table_name = l.table_name
