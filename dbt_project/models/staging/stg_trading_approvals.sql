-- The approval queue; the stage snapshot (jsonb) stays in core.
select
    tenant_id,
    candidate_id,
    status,
    status_reason,
    queued_at,
    decided_at,
    decided_by
from {{ source('trading', 'trading_approvals') }}
