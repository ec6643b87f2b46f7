select
    o.tenant_id,
    o.lead_id,
    o.outcome,
    o.occurred_at,
    o.value,
    -- Days from the lead's creation to this outcome (fractional).
    extract(epoch from o.occurred_at - l.created_at) / 86400.0 as days_after_created
from {{ source('crm', 'crm_lead_outcomes') }} as o
inner join {{ source('crm', 'crm_leads') }} as l
    on l.tenant_id = o.tenant_id and l.lead_id = o.lead_id
