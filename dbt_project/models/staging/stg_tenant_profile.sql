select
    tenant_id,
    display_name,
    domains,
    readable_tenants,
    settings_keys,
    materialized_at,
    dagster_run_id
from {{ source('core', 'tenant_profile') }}
