-- E-commerce (Saleor): raw GraphQL answers, the product catalogue with variants, and orders with
-- their lines, partitioned by the UTC day an order was created.

-- Every answer Saleor gave (errors included), stored before it is parsed. Email addresses in
-- bodies are replaced by customer keys before storage: no personal data lands here either.
CREATE TABLE raw.ecommerce_api_responses (
    response_id    bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    dataset        text NOT NULL CHECK (dataset IN ('products', 'orders')),
    partition_key  text NOT NULL,              -- '' for products, the order day for orders
    page           int NOT NULL,
    variables      jsonb NOT NULL,             -- the query's variables (cursor, filters)
    request        text NOT NULL,
    status         int NOT NULL,
    body           text NOT NULL,
    attempt        int NOT NULL,
    fetched_at     timestamptz NOT NULL DEFAULT now(),
    dagster_run_id text,
    PRIMARY KEY (tenant_id, response_id)
);
CREATE INDEX ecommerce_api_responses_partition_idx
    ON raw.ecommerce_api_responses (tenant_id, dataset, partition_key, fetched_at DESC);
SELECT core.enable_tenant_rls('raw.ecommerce_api_responses');

-- One row per product per tenant, with its channel price range and stock summary.
CREATE TABLE core.ecommerce_products (
    tenant_id          text NOT NULL REFERENCES core.tenants (tenant_id),
    product_id         text NOT NULL,           -- Saleor global id, e.g. UHJvZHVjdDo3Mg==
    name               text NOT NULL,
    slug               text NOT NULL,
    category           text,
    product_type       text,
    currency           text,
    price_min          numeric(18, 4),
    price_max          numeric(18, 4),
    variant_count      int NOT NULL,
    variants_in_stock  int NOT NULL,
    quantity_available bigint,
    in_stock           boolean NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    fetched_at         timestamptz NOT NULL,
    dagster_run_id     text,
    PRIMARY KEY (tenant_id, product_id)
);
CREATE INDEX ecommerce_products_name_idx ON core.ecommerce_products (tenant_id, name, product_id);
CREATE INDEX ecommerce_products_updated_idx ON core.ecommerce_products (tenant_id, updated_at);
SELECT core.enable_tenant_rls('core.ecommerce_products');
GRANT SELECT ON core.ecommerce_products TO bizosaas_serving;

CREATE TABLE core.ecommerce_product_variants (
    tenant_id          text NOT NULL REFERENCES core.tenants (tenant_id),
    variant_id         text NOT NULL,
    product_id         text NOT NULL,
    sku                text,
    name               text NOT NULL,
    price              numeric(18, 4),
    currency           text,
    quantity_available int,
    track_inventory    boolean NOT NULL,
    in_stock           boolean NOT NULL,
    fetched_at         timestamptz NOT NULL,
    dagster_run_id     text,
    PRIMARY KEY (tenant_id, variant_id),
    -- Deferred: the asset rewrites products and variants in one transaction, in either order.
    FOREIGN KEY (tenant_id, product_id) REFERENCES core.ecommerce_products (tenant_id, product_id)
        DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX ecommerce_product_variants_product_idx
    ON core.ecommerce_product_variants (tenant_id, product_id);
SELECT core.enable_tenant_rls('core.ecommerce_product_variants');
GRANT SELECT ON core.ecommerce_product_variants TO bizosaas_serving;

-- One row per order, in the partition of the UTC day it was created (order_date).
CREATE TABLE core.ecommerce_orders (
    tenant_id        text NOT NULL REFERENCES core.tenants (tenant_id),
    order_id         text NOT NULL,
    order_date       date NOT NULL,
    number           text NOT NULL,             -- Saleor sends the order number as a string
    status           text NOT NULL,
    charge_status    text,
    authorize_status text,
    channel          text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    currency         text NOT NULL,
    total_gross      numeric(18, 4) NOT NULL,
    total_net        numeric(18, 4),
    shipping_gross   numeric(18, 4) NOT NULL,
    lines_gross      numeric(18, 4) NOT NULL,   -- sum of the lines' totals as fetched
    line_count       int NOT NULL,
    units            int NOT NULL,
    customer_key     text,                      -- keyed hash of the buyer's email, never the email
    fetched_at       timestamptz NOT NULL,
    dagster_run_id   text,
    PRIMARY KEY (tenant_id, order_id)
);
CREATE INDEX ecommerce_orders_day_idx ON core.ecommerce_orders (tenant_id, order_date, updated_at);
CREATE INDEX ecommerce_orders_created_idx ON core.ecommerce_orders (tenant_id, created_at DESC, order_id);
SELECT core.enable_tenant_rls('core.ecommerce_orders');
GRANT SELECT ON core.ecommerce_orders TO bizosaas_serving;

CREATE TABLE core.ecommerce_order_lines (
    tenant_id        text NOT NULL REFERENCES core.tenants (tenant_id),
    line_id          text NOT NULL,
    order_id         text NOT NULL,
    order_date       date NOT NULL,             -- the order's partition, so a day is rewritten whole
    product_id       text,                      -- null once the product is deleted in Saleor
    variant_id       text,
    product_name     text NOT NULL,
    variant_name     text,
    sku              text,
    quantity         int NOT NULL,
    unit_price_gross numeric(18, 4) NOT NULL,
    total_gross      numeric(18, 4) NOT NULL,
    currency         text NOT NULL,
    fetched_at       timestamptz NOT NULL,
    dagster_run_id   text,
    PRIMARY KEY (tenant_id, line_id),
    FOREIGN KEY (tenant_id, order_id) REFERENCES core.ecommerce_orders (tenant_id, order_id)
        DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX ecommerce_order_lines_order_idx ON core.ecommerce_order_lines (tenant_id, order_id);
CREATE INDEX ecommerce_order_lines_day_idx ON core.ecommerce_order_lines (tenant_id, order_date);
SELECT core.enable_tenant_rls('core.ecommerce_order_lines');
GRANT SELECT ON core.ecommerce_order_lines TO bizosaas_serving;
