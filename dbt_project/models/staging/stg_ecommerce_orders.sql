-- Orders; `counts_as_revenue` leaves out those that never became a sale (the same statuses as
-- ml.ecommerce.saleor.NON_REVENUE_STATUSES).
select
    tenant_id,
    order_id,
    order_date,
    number,
    status,
    status not in ('DRAFT', 'CANCELED', 'EXPIRED') as counts_as_revenue,
    charge_status,
    channel,
    created_at,
    updated_at,
    currency,
    total_gross,
    total_net,
    shipping_gross,
    lines_gross,
    line_count,
    units,
    customer_key
from {{ source('ecommerce', 'ecommerce_orders') }}
