select
    tenant_id,
    candidate_id,
    max_drawdown,
    exposure,
    concentration,
    trades,
    breaches,
    passed
from {{ source('trading', 'trading_risk_assessments') }}
