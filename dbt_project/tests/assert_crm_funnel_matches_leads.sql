{{ config(meta={'dagster': {'ref': {'name': 'crm_lead_funnel'}}}) }}
-- The funnel accounts for every lead exactly once: per tenant, its leads, won and lost equal those
-- of the leads table itself (read from the source, not staging), every source row adds up
-- (leads = won + lost + open), and its rates stay within 0-1. Returns the offending tenants.
with leads as (
    select
        tenant_id,
        count(*) as leads,
        count(*) filter (where status = 'won') as won,
        count(*) filter (where status = 'lost') as lost
    from {{ source('crm', 'crm_leads') }}
    group by 1
),

mart as (
    select
        tenant_id,
        sum(leads) as leads,
        sum(won) as won,
        sum(lost) as lost,
        bool_and(
            leads = won + lost + open
            and qualification_rate between 0 and 1
            and win_rate between 0 and 1
            and coalesce(closed_win_rate, 0) between 0 and 1
        ) as rows_add_up
    from {{ ref('crm_lead_funnel') }}
    group by 1
)

select coalesce(l.tenant_id, m.tenant_id) as tenant_id, l.leads as table_leads, m.leads as mart_leads
from leads as l
full outer join mart as m on m.tenant_id = l.tenant_id
where l.leads is distinct from m.leads
   or l.won is distinct from m.won
   or l.lost is distinct from m.lost
   or not m.rows_add_up
