-- Every business of the master is counted exactly once in the coverage mart: per tenant, the
-- mart's active and missing totals equal the master's. Returns the tenants where they differ.
with master as (
    select
        tenant_id,
        count(*) filter (where status = 'active') as active,
        count(*) filter (where status = 'missing') as missing
    from {{ ref('stg_businesses') }}
    group by tenant_id
),

mart as (
    select tenant_id, sum(businesses) as active, sum(missing_businesses) as missing
    from {{ ref('directory_coverage') }}
    group by tenant_id
)

select coalesce(master.tenant_id, mart.tenant_id) as tenant_id, master.active, mart.active
from master
full outer join mart on mart.tenant_id = master.tenant_id
where master.active is distinct from mart.active or master.missing is distinct from mart.missing
