-- Revenue per tenant, day (UTC, the orders' partition) and currency: orders, gross and net
-- revenue, shipping, average order value, units and customers of the orders that were sales
-- (DRAFT, CANCELED and EXPIRED left out), with every status counted alongside.
with orders as (
    select * from {{ ref('stg_ecommerce_orders') }}
),

by_status as (
    select
        tenant_id,
        order_date,
        currency,
        jsonb_object_agg(status, orders order by status) as orders_by_status
    from (
        select tenant_id, order_date, currency, status, count(*)::int as orders
        from orders
        group by 1, 2, 3, 4
    ) as counted
    group by 1, 2, 3
)

select
    o.tenant_id,
    o.order_date,
    o.currency,
    count(*) filter (where o.counts_as_revenue)::int as orders,
    coalesce(sum(o.total_gross) filter (where o.counts_as_revenue), 0) as revenue_gross,
    coalesce(sum(o.total_net) filter (where o.counts_as_revenue), 0) as revenue_net,
    coalesce(sum(o.shipping_gross) filter (where o.counts_as_revenue), 0) as shipping_gross,
    round(avg(o.total_gross) filter (where o.counts_as_revenue), 2) as avg_order_value,
    coalesce(sum(o.units) filter (where o.counts_as_revenue), 0)::int as units,
    count(distinct o.customer_key) filter (where o.counts_as_revenue)::int as customers,
    count(*)::int as all_orders,
    count(*) filter (where o.status = 'CANCELED')::int as canceled_orders,
    count(*) filter (where o.status in ('RETURNED', 'PARTIALLY_RETURNED'))::int as returned_orders,
    b.orders_by_status,
    max(o.updated_at) as last_order_update_at,
    now() as built_at
from orders as o
inner join by_status as b
    on b.tenant_id = o.tenant_id and b.order_date = o.order_date and b.currency = o.currency
group by o.tenant_id, o.order_date, o.currency, b.orders_by_status
