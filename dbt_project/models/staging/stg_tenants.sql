select
    tenant_id,
    display_name,
    kind,
    parent_tenant_id,
    tier,
    domains,
    status,
    created_at,
    updated_at
from {{ source('core', 'tenants') }}
