-- Leads as analysts read them: no contact details (name, email, phone), only what the funnel
-- and campaign marts group by. `is_closed`: won or lost, the lead's outcome is settled.
select
    tenant_id,
    lead_id,
    source,
    campaign_id,
    status,
    status in ('won', 'lost') as is_closed,
    created_at,
    updated_at,
    source_records,
    ai_score,
    scored_at
from {{ source('crm', 'crm_leads') }}
