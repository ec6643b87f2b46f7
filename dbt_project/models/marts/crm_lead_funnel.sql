-- The lead funnel per tenant and source: how many leads came in, how many reached
-- qualification, how many were won or lost and how many are still open, with the rates and the
-- median time to a win. Qualification counts every lead that ever reached it (a won lead
-- qualified on the way, whether or not the CRM recorded that step).
with leads as (
    select * from {{ ref('stg_crm_leads') }}
),

reached as (
    select
        tenant_id,
        lead_id,
        bool_or(outcome in ('qualified', 'won')) as qualified,
        min(days_after_created) filter (where outcome = 'won') as days_to_win,
        sum(value) filter (where outcome = 'won') as won_value
    from {{ ref('stg_crm_lead_outcomes') }}
    group by 1, 2
)

select
    l.tenant_id,
    l.source,
    count(*)::int as leads,
    count(*) filter (where r.qualified)::int as qualified,
    count(*) filter (where l.status = 'won')::int as won,
    count(*) filter (where l.status = 'lost')::int as lost,
    count(*) filter (where not l.is_closed)::int as open,
    round(count(*) filter (where r.qualified)::numeric / count(*), 4)::double precision
        as qualification_rate,
    round(count(*) filter (where l.status = 'won')::numeric / count(*), 4)::double precision as win_rate,
    round(
        count(*) filter (where l.status = 'won')::numeric
        / nullif(count(*) filter (where l.is_closed), 0), 4
    )::double precision as closed_win_rate,
    round(
        (percentile_cont(0.5) within group (order by r.days_to_win)
            filter (where l.status = 'won' and r.days_to_win is not null))::numeric, 2
    )::double precision as median_days_to_win,
    coalesce(sum(r.won_value) filter (where l.status = 'won'), 0) as won_value,
    count(*) filter (where l.ai_score is not null)::int as scored,
    round(avg(l.ai_score) filter (where not l.is_closed), 1)::double precision as avg_open_score,
    min(l.created_at) as first_lead_at,
    max(l.created_at) as last_lead_at,
    now() as built_at
from leads as l
left join reached as r on r.tenant_id = l.tenant_id and r.lead_id = l.lead_id
group by l.tenant_id, l.source
