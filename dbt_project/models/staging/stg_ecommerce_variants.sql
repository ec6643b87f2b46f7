-- Variants with their product's name and category; a tracked variant with no stock left is a
-- stock-out (untracked ones, such as gift cards, never run out).
select
    v.tenant_id,
    v.variant_id,
    v.product_id,
    p.name as product_name,
    p.category,
    v.sku,
    v.name as variant_name,
    v.price,
    v.currency,
    v.quantity_available,
    v.track_inventory,
    v.in_stock,
    not v.in_stock as is_stock_out,
    p.updated_at as product_updated_at
from {{ source('ecommerce', 'ecommerce_product_variants') }} as v
inner join {{ ref('stg_ecommerce_products') }} as p
    on p.tenant_id = v.tenant_id and p.product_id = v.product_id
