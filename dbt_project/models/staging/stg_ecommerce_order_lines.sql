-- Order lines, reported under their Saleor product id, or their product name once the product
-- is gone from Saleor (a deleted product leaves its lines without an id).
select
    l.tenant_id,
    l.line_id,
    l.order_id,
    l.order_date,
    coalesce(l.product_id, 'name:' || l.product_name) as product_key,
    l.product_id,
    l.variant_id,
    l.product_name,
    l.variant_name,
    l.sku,
    l.quantity,
    l.unit_price_gross,
    l.total_gross,
    l.currency
from {{ source('ecommerce', 'ecommerce_order_lines') }} as l
