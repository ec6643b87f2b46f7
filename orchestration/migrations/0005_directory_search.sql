-- Serving the businesses master fast under row-level security.
--
-- Under RLS, Postgres only uses an index for a query's own conditions when their operators are
-- leakproof; text search (@@), LIKE and array overlap are not, so they would scan every row of
-- the tenant. Plain text comparisons are leakproof: the words a business is found by live in
-- their own table, searched by b-tree prefix ranges (C collation, so a prefix range is exact).
CREATE TABLE core.business_words (
    tenant_id   text NOT NULL REFERENCES core.tenants (tenant_id),
    word        text COLLATE "C" NOT NULL,
    business_id text NOT NULL,
    PRIMARY KEY (tenant_id, word, business_id)
);
SELECT core.enable_tenant_rls('core.business_words');
GRANT SELECT ON core.business_words TO bizosaas_serving;

-- Exact list totals without counting every row per request: the master's row counts per
-- status, category and city, written in the same transaction as the master itself.
CREATE TABLE core.business_facets (
    tenant_id  text NOT NULL REFERENCES core.tenants (tenant_id),
    status     text NOT NULL,
    category   text NOT NULL,
    city_key   text NOT NULL,
    businesses int NOT NULL CHECK (businesses > 0),
    PRIMARY KEY (tenant_id, status, category, city_key)
);
SELECT core.enable_tenant_rls('core.business_facets');
GRANT SELECT ON core.business_facets TO bizosaas_serving;

-- A tenant's businesses already in name order (the API's default listing).
CREATE INDEX businesses_master_name_idx
    ON core.businesses_master (tenant_id, status, name, business_id);
