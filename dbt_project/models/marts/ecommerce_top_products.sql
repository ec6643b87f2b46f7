-- What sells: per tenant, product and currency, the units, revenue and orders of every loaded
-- day's sales (DRAFT, CANCELED and EXPIRED orders left out), ranked within the tenant.
with sold as (
    select
        l.tenant_id,
        l.product_key,
        l.product_id,
        l.product_name,
        l.currency,
        l.quantity,
        l.total_gross,
        l.order_id,
        l.order_date
    from {{ ref('stg_ecommerce_order_lines') }} as l
    inner join {{ ref('stg_ecommerce_orders') }} as o
        on o.tenant_id = l.tenant_id and o.order_id = l.order_id
    where o.counts_as_revenue
),

per_product as (
    select
        tenant_id,
        product_key,
        currency,
        max(product_id) as product_id,
        max(product_name) as product_name,
        sum(quantity)::int as units,
        sum(total_gross) as revenue,
        count(distinct order_id)::int as orders,
        min(order_date) as first_sold_on,
        max(order_date) as last_sold_on
    from sold
    group by 1, 2, 3
)

select
    pp.tenant_id,
    pp.product_key,
    pp.product_id,
    coalesce(p.name, pp.product_name) as product_name,
    p.category,
    pp.currency,
    pp.units,
    pp.revenue,
    pp.orders,
    round(pp.revenue / nullif(sum(pp.revenue) over (partition by pp.tenant_id, pp.currency), 0), 4)
        as revenue_share,
    rank() over (partition by pp.tenant_id, pp.currency order by pp.revenue desc)::int as revenue_rank,
    rank() over (partition by pp.tenant_id, pp.currency order by pp.units desc)::int as units_rank,
    pp.first_sold_on,
    pp.last_sold_on,
    p.in_stock,
    now() as built_at
from per_product as pp
left join {{ ref('stg_ecommerce_products') }} as p
    on p.tenant_id = pp.tenant_id and p.product_id = pp.product_id
