-- The load log behind data freshness, and API keys for the serving layer.

-- One row per (tenant, table, partition): the last successful replace, written by the
-- warehouse resource in the same transaction as the data, so it can never disagree with it.
CREATE TABLE core.table_loads (
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    table_name     text NOT NULL,
    partition_key  text NOT NULL DEFAULT '',
    row_count      bigint NOT NULL CHECK (row_count >= 0),
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    dagster_run_id text,
    PRIMARY KEY (tenant_id, table_name, partition_key)
);
SELECT core.enable_tenant_rls('core.table_loads');
GRANT SELECT ON core.table_loads TO bizosaas_serving;

-- API keys: only a hash of the secret is stored. The key's public id is random and unique in
-- practice, but the primary key still leads with tenant_id like every tenant table.
CREATE TABLE ops.api_keys (
    tenant_id    text NOT NULL REFERENCES core.tenants (tenant_id),
    key_id       text NOT NULL CHECK (key_id ~ '^[A-Za-z0-9]{12}$'),
    secret_hash  text NOT NULL,
    role         text NOT NULL CHECK (role IN ('reader', 'admin', 'approver')),
    label        text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    PRIMARY KEY (tenant_id, key_id)
);
CREATE INDEX api_keys_key_id_idx ON ops.api_keys (key_id);
SELECT core.enable_tenant_rls('ops.api_keys');
-- Keys are managed through the CLI's admin connection.
CREATE POLICY registry_admin ON ops.api_keys TO CURRENT_USER USING (true) WITH CHECK (true);

-- The serving role resolves a key before it knows the tenant, so the lookup is a definer
-- function that returns the key's tenant and role and nothing else.
CREATE FUNCTION core.authenticate_api_key(p_key_id text, p_secret_hash text)
    RETURNS TABLE (tenant_id text, role text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, core, ops
    AS $$
    SELECT k.tenant_id, k.role
      FROM ops.api_keys k JOIN core.tenants t ON t.tenant_id = k.tenant_id
     WHERE k.key_id = p_key_id AND k.secret_hash = p_secret_hash
       AND k.revoked_at IS NULL AND t.status = 'active'
$$;
REVOKE ALL ON FUNCTION core.authenticate_api_key(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION core.authenticate_api_key(text, text) TO bizosaas_serving;
