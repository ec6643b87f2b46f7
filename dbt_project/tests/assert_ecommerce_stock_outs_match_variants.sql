{{ config(meta={'dagster': {'ref': {'name': 'ecommerce_stock_outs'}}}) }}
-- Every variant the catalogue holds as not in stock is in the stock-outs mart, and nothing else.
with catalogue as (
    select tenant_id, count(*) as out_of_stock
    from {{ source('ecommerce', 'ecommerce_product_variants') }}
    where not in_stock
    group by 1
),

mart as (
    select tenant_id, count(*) as out_of_stock
    from {{ ref('ecommerce_stock_outs') }}
    group by 1
)

select coalesce(c.tenant_id, m.tenant_id) as tenant_id, c.out_of_stock, m.out_of_stock
from catalogue as c
full outer join mart as m on m.tenant_id = c.tenant_id
where c.out_of_stock is distinct from m.out_of_stock
