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

-- The cache-expiry function (0004) reads the cache as its owner, the migration role. Row-level
-- security is forced on the cache, so without this policy an owner that is not a superuser
-- (an external DATABASE_URL) would see no entries and find every search due, every hour.
CREATE POLICY registry_admin ON core.business_cache FOR SELECT TO CURRENT_USER USING (true);

-- Settings are trimmed by the assets; the function must compare the same values.
CREATE OR REPLACE FUNCTION core.directory_refresh_due()
    RETURNS TABLE (tenant_id text, searches int, due int, oldest_due timestamptz,
                   next_expiry timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, core
    AS $$
    WITH wanted AS (
        SELECT DISTINCT t.tenant_id, btrim(s->>'query') AS search_query,
               btrim(s->>'location') AS search_location
          FROM core.tenants t
          CROSS JOIN LATERAL jsonb_array_elements(
              CASE WHEN jsonb_typeof(t.settings #> '{directory,searches}') = 'array'
                   THEN t.settings #> '{directory,searches}' ELSE '[]'::jsonb END) AS s
         WHERE t.status = 'active' AND 'directory' = ANY (t.domains)
    )
    SELECT w.tenant_id, count(*)::int,
           count(*) FILTER (WHERE c.expires_at IS NULL OR c.expires_at <= now())::int,
           min(c.expires_at) FILTER (WHERE c.expires_at <= now()),
           min(c.expires_at) FILTER (WHERE c.expires_at > now())
      FROM wanted w
      LEFT JOIN core.business_cache c USING (tenant_id, search_query, search_location)
     GROUP BY w.tenant_id ORDER BY w.tenant_id
$$;
