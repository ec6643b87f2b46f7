-- Business Directory: raw API responses, the per-tenant search cache, the businesses master
-- and its history; plus the platform-wide API rate and budget ledgers every source shares.

-- Every HTTP answer a directory source gave (errors included), stored before it is parsed, so
-- a parser fix can be replayed from here without calling the APIs again.
CREATE TABLE raw.directory_api_responses (
    response_id    bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    search_query   text NOT NULL,
    search_location text NOT NULL,
    source         text NOT NULL CHECK (source IN ('nominatim', 'locationiq', 'overpass')),
    request        text NOT NULL,
    status         int NOT NULL,
    body           text NOT NULL,
    attempt        int NOT NULL,
    fetched_at     timestamptz NOT NULL DEFAULT now(),
    dagster_run_id text,
    PRIMARY KEY (tenant_id, response_id)
);
CREATE INDEX directory_api_responses_search_idx
    ON raw.directory_api_responses (tenant_id, search_query, search_location, fetched_at DESC);
SELECT core.enable_tenant_rls('raw.directory_api_responses');

-- One entry per (tenant, query, location): the parsed listings of the last successful fetch.
-- Fresh entries are served from here; only expired or missing ones call the APIs.
CREATE TABLE core.business_cache (
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    search_query   text NOT NULL,
    search_location text NOT NULL,
    results        jsonb NOT NULL,
    result_count   int NOT NULL CHECK (result_count >= 0),
    api_sources    text[] NOT NULL,
    api_calls      jsonb NOT NULL,
    response_ids   bigint[] NOT NULL,
    attribution    text NOT NULL,
    fetched_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    dagster_run_id text,
    PRIMARY KEY (tenant_id, search_query, search_location)
);
CREATE INDEX business_cache_expiry_idx ON core.business_cache (expires_at);
SELECT core.enable_tenant_rls('core.business_cache');

-- One row per real business per tenant, merged across sources and searches.
CREATE TABLE core.businesses_master (
    tenant_id       text NOT NULL REFERENCES core.tenants (tenant_id),
    business_id     text NOT NULL,
    name            text NOT NULL,
    name_key        text NOT NULL,
    category        text NOT NULL,
    subcategory     text NOT NULL,
    cuisine         text[],
    lat             double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon             double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    street          text,
    housenumber     text,
    postcode        text,
    city            text,
    state           text,
    country_code    text,
    phone           text,
    website         text,
    email           text,
    opening_hours_raw text,
    opening_hours   jsonb,
    osm_refs        text[] NOT NULL,
    sources         text[] NOT NULL,
    searches        text[] NOT NULL,
    attribution     text NOT NULL,
    status          text NOT NULL CHECK (status IN ('active', 'missing')),
    content_hash    text NOT NULL,
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    verified_at     timestamptz,
    changed_at      timestamptz NOT NULL,
    dagster_run_id  text,
    PRIMARY KEY (tenant_id, business_id)
);
CREATE INDEX businesses_master_geo_idx ON core.businesses_master (tenant_id, lat, lon);
CREATE INDEX businesses_master_category_idx ON core.businesses_master (tenant_id, category, name_key);
SELECT core.enable_tenant_rls('core.businesses_master');
GRANT SELECT ON core.businesses_master TO bizosaas_serving;

-- Append-only: every appearance, change and disappearance of a master row, with the row as it
-- was after the event, so nothing a refresh overwrites is lost.
CREATE TABLE core.businesses_history (
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    business_id    text NOT NULL,
    event_id       bigint GENERATED ALWAYS AS IDENTITY,
    event          text NOT NULL CHECK (event IN ('appeared', 'changed', 'disappeared', 'reappeared')),
    changed_fields text[] NOT NULL DEFAULT '{}',
    snapshot       jsonb NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    dagster_run_id text,
    PRIMARY KEY (tenant_id, business_id, event_id)
);
SELECT core.enable_tenant_rls('core.businesses_history');

-- Platform-wide API ledgers (not tenant data): a usage policy such as Nominatim's 1 request/s
-- is per application, so the next free slot is reserved in one row every process shares.
CREATE SCHEMA IF NOT EXISTS ops;
CREATE TABLE ops.api_rate_slots (
    source        text PRIMARY KEY,
    next_slot_at  timestamptz NOT NULL DEFAULT '-infinity'
);
-- Daily request budgets (LocationIQ's free tier); a request is counted before it is sent.
CREATE TABLE ops.api_daily_usage (
    source   text NOT NULL,
    day      date NOT NULL,
    used     int NOT NULL CHECK (used >= 0),
    PRIMARY KEY (source, day)
);
GRANT USAGE ON SCHEMA ops TO bizosaas_writer;
GRANT SELECT, INSERT, UPDATE ON ops.api_rate_slots, ops.api_daily_usage TO bizosaas_writer;

-- What the cache-expiry sensor needs across tenants without reading their data: per active
-- directory tenant, how many of its configured searches are missing from the cache or expired,
-- since when the oldest has been due (NULL when only never-fetched ones are), and when the
-- next fresh one expires. Settings are trimmed, as the assets trim them.
CREATE FUNCTION core.directory_refresh_due()
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
REVOKE ALL ON FUNCTION core.directory_refresh_due() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION core.directory_refresh_due() TO bizosaas_writer;
-- The function reads the cache as its owner, the migration role. Row-level security is forced
-- on the cache, so without this policy an owner that is not a superuser (an external
-- DATABASE_URL) would see no entries and find every search due, every hour.
CREATE POLICY registry_admin ON core.business_cache FOR SELECT TO CURRENT_USER USING (true);
