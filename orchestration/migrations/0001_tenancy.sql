-- Schemas, the tenant registry, and the row-level security every tenant-scoped table uses.
--
-- raw   : landing data exactly as received (API responses, file drops), before parsing
-- core  : modelled tables written by the Dagster assets
-- marts : dbt output read by analysts and the serving API

CREATE EXTENSION IF NOT EXISTS vector;

CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS marts;

GRANT USAGE ON SCHEMA raw, core TO bizosaas_writer;
GRANT USAGE ON SCHEMA core, marts TO bizosaas_serving;
-- The pipelines write every table they land in raw and core; the serving role gets SELECT
-- table by table, on purpose, so nothing is exposed to the API by accident.
ALTER DEFAULT PRIVILEGES IN SCHEMA raw, core
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO bizosaas_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA raw, core
    GRANT USAGE, SELECT ON SEQUENCES TO bizosaas_writer;

-- The tenant of the current transaction. `current_setting(..., true)` returns '' (not NULL)
-- once the setting has existed in the session, so '' must mean "no tenant" too.
CREATE FUNCTION core.current_tenant() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('app.current_tenant', true), '') $$;

CREATE TABLE core.tenants (
    tenant_id        text PRIMARY KEY CHECK (tenant_id ~ '^[a-z][a-z0-9_]{1,62}$'),
    display_name     text NOT NULL CHECK (display_name <> ''),
    kind             text NOT NULL CHECK (kind IN ('master', 'client', 'internal')),
    parent_tenant_id text REFERENCES core.tenants (tenant_id),
    tier             text NOT NULL CHECK (tier IN ('free', 'starter', 'professional', 'enterprise', 'internal')),
    domains          text[] NOT NULL DEFAULT '{}'
                     CHECK (domains <@ ARRAY['directory', 'gaming', 'crm', 'ecommerce', 'trading']),
    settings         jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'offboarded')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    offboarded_at    timestamptz,
    -- A master has no parent; every other tenant hangs off one.
    CHECK ((kind = 'master') = (parent_tenant_id IS NULL))
);
CREATE INDEX tenants_parent_idx ON core.tenants (parent_tenant_id);

-- Tenants the current tenant may read: itself, and its clients when it is a master.
-- Runs as the caller, so the tenants table's own policy (below) already narrows it.
CREATE FUNCTION core.readable_tenants() RETURNS text[]
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT coalesce(array_agg(t.tenant_id), '{}')
      FROM core.tenants me
      JOIN core.tenants t
        ON t.tenant_id = me.tenant_id
        OR (me.kind = 'master' AND t.parent_tenant_id = me.tenant_id)
     WHERE me.tenant_id = core.current_tenant()
       AND me.status = 'active'
       AND t.status = 'active'
$$;

ALTER TABLE core.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE core.tenants FORCE ROW LEVEL SECURITY;
-- Not readable_tenants(): that function reads this table, and a policy calling it would recurse.
CREATE POLICY tenant_read ON core.tenants FOR SELECT
    USING (tenant_id = (SELECT core.current_tenant())
           OR parent_tenant_id = (SELECT core.current_tenant()));
-- The registry is managed by the role that runs migrations (the CLI's admin connection).
CREATE POLICY registry_admin ON core.tenants TO CURRENT_USER USING (true) WITH CHECK (true);
GRANT SELECT ON core.tenants TO bizosaas_writer, bizosaas_serving;
REVOKE INSERT, UPDATE, DELETE ON core.tenants FROM bizosaas_writer;

-- The pipelines need the whole registry (to keep partitions in sync) without being able to
-- read other tenants' data: this definer function exposes just the registry's routing facts.
CREATE FUNCTION core.tenant_registry()
    RETURNS TABLE (tenant_id text, kind text, parent_tenant_id text, tier text,
                   domains text[], status text, updated_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, core
    AS $$
    SELECT tenant_id, kind, parent_tenant_id, tier, domains, status, updated_at
      FROM core.tenants ORDER BY tenant_id
$$;
REVOKE ALL ON FUNCTION core.tenant_registry() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION core.tenant_registry() TO bizosaas_writer;

-- Applies the platform's tenant isolation to a table with a `tenant_id` column. Every
-- migration that creates a tenant-scoped table calls it, and dbt calls it after rebuilding
-- a mart (dbt's drop-and-recreate would otherwise silently drop the policies).
CREATE FUNCTION core.enable_tenant_rls(tbl regclass) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    -- Without FORCE the table's owner bypasses every policy.
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
    EXECUTE format('DROP POLICY IF EXISTS tenant_read ON %s', tbl);
    EXECUTE format('DROP POLICY IF EXISTS tenant_insert ON %s', tbl);
    EXECUTE format('DROP POLICY IF EXISTS tenant_update ON %s', tbl);
    EXECUTE format('DROP POLICY IF EXISTS tenant_delete ON %s', tbl);
    -- The sub-selects make Postgres evaluate the tenant functions once per statement
    -- (an InitPlan), not once per row.
    EXECUTE format('CREATE POLICY tenant_read ON %s FOR SELECT
                    USING (tenant_id = ANY ((SELECT core.readable_tenants())::text[]))', tbl);
    -- Writes are narrower than reads: a master reads its clients but writes only its own rows.
    EXECUTE format('CREATE POLICY tenant_insert ON %s FOR INSERT
                    WITH CHECK (tenant_id = (SELECT core.current_tenant()))', tbl);
    EXECUTE format('CREATE POLICY tenant_update ON %s FOR UPDATE
                    USING (tenant_id = (SELECT core.current_tenant()))
                    WITH CHECK (tenant_id = (SELECT core.current_tenant()))', tbl);
    EXECUTE format('CREATE POLICY tenant_delete ON %s FOR DELETE
                    USING (tenant_id = (SELECT core.current_tenant()))', tbl);
END
$$;
