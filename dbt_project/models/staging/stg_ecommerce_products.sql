-- The Saleor catalogue: one row per product per tenant.
select
    tenant_id,
    product_id,
    name,
    slug,
    coalesce(category, '(uncategorised)') as category,
    product_type,
    currency,
    price_min,
    price_max,
    variant_count,
    variants_in_stock,
    quantity_available,
    in_stock,
    created_at,
    updated_at,
    fetched_at
from {{ source('ecommerce', 'ecommerce_products') }}
