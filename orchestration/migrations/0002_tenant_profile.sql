-- The first asset-written table: one profile row per tenant, derived from the registry.
CREATE TABLE core.tenant_profile (
    tenant_id        text PRIMARY KEY REFERENCES core.tenants (tenant_id),
    display_name     text NOT NULL,
    kind             text NOT NULL,
    tier             text NOT NULL,
    parent_tenant_id text,
    domains          text[] NOT NULL,
    readable_tenants text[] NOT NULL,
    settings_keys    text[] NOT NULL,
    materialized_at  timestamptz NOT NULL,
    dagster_run_id   text NOT NULL
);
SELECT core.enable_tenant_rls('core.tenant_profile');
GRANT SELECT ON core.tenant_profile TO bizosaas_serving;
