{{ config(meta={'dagster': {'ref': {'name': 'crm_campaign_performance'}}}) }}
-- Every campaign appears once with the spend of its daily rows and the leads that name it, read
-- from the sources (not staging); rates and costs are consistent. Returns the offending campaigns.
with spend as (
    select tenant_id, campaign_id, sum(spend) as spend
    from {{ source('crm', 'crm_campaign_daily') }}
    group by 1, 2
),

leads as (
    select tenant_id, campaign_id, count(*) as leads
    from {{ source('crm', 'crm_leads') }}
    where campaign_id is not null
    group by 1, 2
),

expected as (
    select c.tenant_id, c.campaign_id, coalesce(s.spend, 0) as spend, coalesce(l.leads, 0) as leads
    from {{ source('crm', 'crm_campaigns') }} as c
    left join spend as s on s.tenant_id = c.tenant_id and s.campaign_id = c.campaign_id
    left join leads as l on l.tenant_id = c.tenant_id and l.campaign_id = c.campaign_id
)

select coalesce(e.tenant_id, m.tenant_id) as tenant_id, coalesce(e.campaign_id, m.campaign_id) as campaign_id
from expected as e
full outer join {{ ref('crm_campaign_performance') }} as m
    on m.tenant_id = e.tenant_id and m.campaign_id = e.campaign_id
where e.spend is distinct from m.spend
   or e.leads is distinct from m.leads
   or m.won + m.lost + m.open <> m.leads
   or m.ctr not between 0 and 1
   or (m.leads > 0 and m.cost_per_lead is distinct from round(m.spend / m.leads, 2))
