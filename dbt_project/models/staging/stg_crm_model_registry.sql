-- The model registry with its metrics unpacked (the metric names the lead_scoring_model asset
-- records: roc_auc, pr_auc, brier and baseline_roc_auc, the simple baseline on the same holdout).
-- The fitted estimator (artifact) stays out.
select
    tenant_id,
    version,
    kind,
    algorithm,
    status,
    decision,
    trained_at,
    training_rows,
    outcomes_seen,
    jsonb_array_length(features) as feature_count,
    (metrics ->> 'roc_auc')::double precision as roc_auc,
    (metrics ->> 'pr_auc')::double precision as pr_auc,
    (metrics ->> 'brier')::double precision as brier,
    (metrics ->> 'baseline_roc_auc')::double precision as baseline_roc_auc,
    (holdout ->> 'rows')::int as holdout_rows,
    (holdout ->> 'positives')::int as holdout_positives
from {{ source('crm', 'crm_model_registry') }}
