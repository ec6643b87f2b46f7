-- Campaigns with their daily figures summed over their whole run.
with daily as (
    select
        tenant_id,
        campaign_id,
        sum(spend) as spend,
        -- A campaign is bought in one currency; max() names it (the currency test guards that).
        max(currency) as currency,
        count(distinct currency) as currencies,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        sum(conversions) as conversions,
        count(*) as active_days,
        min(day) as first_day,
        max(day) as last_day
    from {{ source('crm', 'crm_campaign_daily') }}
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
    d.currency,
    coalesce(d.currencies, 0) as currencies,
    coalesce(d.spend, 0) as spend,
    coalesce(d.impressions, 0) as impressions,
    coalesce(d.clicks, 0) as clicks,
    coalesce(d.conversions, 0) as conversions,
    coalesce(d.active_days, 0) as active_days,
    d.first_day,
    d.last_day
from {{ source('crm', 'crm_campaigns') }} as c
left join daily as d on d.tenant_id = c.tenant_id and d.campaign_id = c.campaign_id
