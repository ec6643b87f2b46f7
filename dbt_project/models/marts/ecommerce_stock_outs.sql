-- Stock-outs: every variant with nothing left to sell, whether its whole product is sold out,
-- and how many units of it sold in the tenant's last 30 loaded days (what a restock is worth).
with variants as (
    select * from {{ ref('stg_ecommerce_variants') }}
),

products as (
    select
        tenant_id,
        product_id,
        count(*)::int as variants,
        count(*) filter (where is_stock_out)::int as variants_out
    from variants
    group by 1, 2
),

latest_day as (
    select tenant_id, max(order_date) as last_day
    from {{ ref('stg_ecommerce_orders') }}
    group by 1
),

recent_sales as (
    select l.tenant_id, l.variant_id, sum(l.quantity)::int as units
    from {{ ref('stg_ecommerce_order_lines') }} as l
    inner join {{ ref('stg_ecommerce_orders') }} as o
        on o.tenant_id = l.tenant_id and o.order_id = l.order_id
    inner join latest_day as d on d.tenant_id = l.tenant_id
    where o.counts_as_revenue and l.order_date > d.last_day - 30 and l.variant_id is not null
    group by 1, 2
)

select
    v.tenant_id,
    v.variant_id,
    v.product_id,
    v.product_name,
    v.category,
    v.sku,
    v.variant_name,
    v.price,
    v.currency,
    v.quantity_available,
    p.variants as product_variants,
    p.variants_out as product_variants_out,
    p.variants_out = p.variants as product_out_of_stock,
    coalesce(s.units, 0) as units_sold_last_30_days,
    v.product_updated_at,
    now() as built_at
from variants as v
inner join products as p on p.tenant_id = v.tenant_id and p.product_id = v.product_id
left join recent_sales as s on s.tenant_id = v.tenant_id and s.variant_id = v.variant_id
where v.is_stock_out
