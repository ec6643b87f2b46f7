{{ config(meta={'dagster': {'ref': {'name': 'crm_model_performance'}}}) }}
-- Model performance: every registry version appears once, at most one is the tenant's current
-- champion, and the metrics are probabilities. Returns the offending tenants and versions.
select coalesce(r.tenant_id, m.tenant_id) as tenant_id, coalesce(r.version, m.version) as version
from {{ source('crm', 'crm_model_registry') }} as r
full outer join {{ ref('crm_model_performance') }} as m
    on m.tenant_id = r.tenant_id and m.version = r.version
where r.version is null
   or m.version is null
   or m.roc_auc not between 0 and 1
   or m.pr_auc not between 0 and 1
   or m.brier not between 0 and 1
   or m.tenant_id in (
       select tenant_id from {{ ref('crm_model_performance') }} where is_current
       group by 1 having count(*) > 1
   )
