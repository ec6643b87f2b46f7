-- Lead-scoring model performance over time: one row per tenant and registry version (models
-- and labelled baselines, promoted or not), with its holdout metrics, the simple baseline's AUC
-- on the same holdout, and the change in ROC AUC against the tenant's previous promoted version
-- (each on its own holdout: the trend over time; the promotion decision compared both models on
-- the same rows, as the registry's decision says).
with versions as (
    select * from {{ ref('stg_crm_model_registry') }}
),

with_previous as (
    select
        v.*,
        (
            select p.roc_auc
            from versions as p
            where p.tenant_id = v.tenant_id and p.version < v.version and p.status in ('champion', 'retired')
            order by p.version desc
            limit 1
        ) as previous_champion_roc_auc
    from versions as v
)

select
    tenant_id,
    version,
    kind,
    algorithm,
    status,
    status = 'champion' as is_current,
    decision,
    trained_at,
    training_rows,
    outcomes_seen,
    feature_count,
    holdout_rows,
    holdout_positives,
    roc_auc,
    pr_auc,
    brier,
    baseline_roc_auc,
    round((roc_auc - baseline_roc_auc)::numeric, 4)::double precision as auc_over_baseline,
    round((roc_auc - previous_champion_roc_auc)::numeric, 4)::double precision as auc_change,
    now() as built_at
from with_previous
