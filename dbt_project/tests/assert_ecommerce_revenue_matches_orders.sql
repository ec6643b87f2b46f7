{{ config(meta={'dagster': {'ref': {'name': 'ecommerce_revenue_by_day'}}}) }}
-- The revenue mart accounts for every sale exactly once: per tenant and currency, its orders and
-- gross revenue equal those of the orders table itself (read from the source, not staging).
-- Returns the tenants and currencies where they differ.
with orders as (
    select tenant_id, currency, count(*) as orders, sum(total_gross) as revenue
    from {{ source('ecommerce', 'ecommerce_orders') }}
    where status not in ('DRAFT', 'CANCELED', 'EXPIRED')
    group by 1, 2
),

mart as (
    select tenant_id, currency, sum(orders) as orders, sum(revenue_gross) as revenue
    from {{ ref('ecommerce_revenue_by_day') }}
    where orders > 0
    group by 1, 2
)

select coalesce(o.tenant_id, m.tenant_id) as tenant_id, coalesce(o.currency, m.currency) as currency,
       o.revenue as orders_revenue, m.revenue as mart_revenue
from orders as o
full outer join mart as m on m.tenant_id = o.tenant_id and m.currency = o.currency
where o.revenue is distinct from m.revenue or o.orders is distinct from m.orders
