-- Campaign performance per tenant and campaign: what was spent and shown (the campaign's daily
-- figures), the leads it brought (leads whose campaign it is) and what they became, with
-- click-through rate, cost per lead and cost per win.
with campaigns as (
    select * from {{ ref('stg_crm_campaigns') }}
),

leads as (
    select
        l.tenant_id,
        l.campaign_id,
        count(*) as leads,
        count(*) filter (where l.status = 'won') as won,
        count(*) filter (where l.status = 'lost') as lost,
        count(*) filter (where not l.is_closed) as open
    from {{ ref('stg_crm_leads') }} as l
    where l.campaign_id is not null
    group by 1, 2
),

won_value as (
    select l.tenant_id, l.campaign_id, sum(o.value) as won_value
    from {{ ref('stg_crm_lead_outcomes') }} as o
    inner join {{ ref('stg_crm_leads') }} as l on l.tenant_id = o.tenant_id and l.lead_id = o.lead_id
    where o.outcome = 'won' and l.status = 'won' and l.campaign_id is not null
    group by 1, 2
)

select
    c.tenant_id,
    c.campaign_id,
    c.name,
    c.channel,
    c.segment,
    c.started_on,
    c.ended_on,
    c.active_days,
    c.currency,
    c.spend,
    c.impressions::bigint as impressions,
    c.clicks::bigint as clicks,
    c.conversions::bigint as conversions,
    coalesce(l.leads, 0)::int as leads,
    coalesce(l.won, 0)::int as won,
    coalesce(l.lost, 0)::int as lost,
    coalesce(l.open, 0)::int as open,
    round(c.clicks::numeric / nullif(c.impressions, 0), 5)::double precision as ctr,
    round(coalesce(l.won, 0)::numeric / nullif(l.leads, 0), 4)::double precision as win_rate,
    round(c.spend / nullif(l.leads, 0), 2) as cost_per_lead,
    round(c.spend / nullif(l.won, 0), 2) as cost_per_win,
    coalesce(w.won_value, 0) as won_value,
    round(coalesce(w.won_value, 0) / nullif(c.spend, 0), 2) as return_on_spend,
    now() as built_at
from campaigns as c
left join leads as l on l.tenant_id = c.tenant_id and l.campaign_id = c.campaign_id
left join won_value as w on w.tenant_id = c.tenant_id and w.campaign_id = c.campaign_id
