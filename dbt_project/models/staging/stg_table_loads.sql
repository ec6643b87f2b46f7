select
    tenant_id,
    table_name,
    -- The table's domain is its name's prefix by convention (e.g. directory_..., gaming_...);
    -- platform tables such as tenant_profile belong to the 'platform' domain.
    case
        when split_part(table_name, '.', 2) ~ '^(directory|gaming|crm|ecommerce|trading)_'
            then split_part(split_part(table_name, '.', 2), '_', 1)
        else 'platform'
    end as domain,
    partition_key,
    row_count,
    loaded_at,
    dagster_run_id
from {{ source('core', 'table_loads') }}
