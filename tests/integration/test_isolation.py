"""Tenant isolation, proven as the serving role (and the writer role), never as a superuser
or table owner: those bypass RLS silently and would prove nothing."""

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from orchestration.settings import SERVING_ROLE, WRITER_ROLE
from orchestration.warehouse import set_tenant

MASTER, CLIENT_A, CLIENT_B = "bizoholic", "coreldove", "thrillring"
INJECTIONS = [
    "coreldove' OR '1'='1",
    "'; DROP TABLE core.tenants; --",
    "coreldove,thrillring",
    "{coreldove,thrillring}",
    "*",
    "%",
    " coreldove",
    "COREL DOVE",
    "coreldove\n",
    "coreldove\\",
]

TENANT_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname)
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE a.attname = 'tenant_id' AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_temp%'
 ORDER BY 1
"""


@pytest.fixture(scope="module")
def tenant_tables(platform, materialized):
    with platform.admin() as conn:
        tables = [r[0] for r in conn.execute(TENANT_TABLES)]
    assert "core.tenants" in tables and "core.tenant_profile" in tables
    return tables


def serving(platform):
    return psycopg.connect(platform.serving_url)


def visible(conn, table, tenant):
    """(row count, distinct tenant ids) visible to `tenant` in one transaction; a table the
    role may not read at all shows nothing."""
    try:
        with conn.transaction():
            if tenant is not None:
                set_tenant(conn, tenant)
            count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            ids = {r[0] for r in conn.execute(f"SELECT DISTINCT tenant_id FROM {table}")}
    except psycopg.errors.InsufficientPrivilege:
        return 0, set()
    return count, ids


def populated_tables(platform, tables):
    """Tables holding rows of every seeded tenant (as the admin sees them)."""
    with platform.admin() as conn:
        return [
            t
            for t in tables
            if {MASTER, CLIENT_A, CLIENT_B}
            <= {r[0] for r in conn.execute(f"SELECT DISTINCT tenant_id FROM {t}")}
        ]


def test_roles_cannot_bypass_rls_and_serving_owns_nothing(platform):
    with platform.admin() as conn:
        for role in (SERVING_ROLE, WRITER_ROLE):
            superuser, bypass = conn.execute(
                "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", (role,)
            ).fetchone()
            assert not superuser and not bypass, role
        owned = conn.execute(
            """SELECT count(*) FROM pg_class WHERE relowner = %(r)s::regrole
               UNION ALL SELECT count(*) FROM pg_namespace WHERE nspowner = %(r)s::regrole
               UNION ALL SELECT count(*) FROM pg_proc WHERE proowner = %(r)s::regrole""",
            {"r": SERVING_ROLE},
        ).fetchall()
        assert [r[0] for r in owned] == [0, 0, 0]


def test_every_tenant_table_has_forced_rls_and_tenant_policies(platform, tenant_tables):
    with platform.admin() as conn:
        for table in tenant_tables:
            kind, enabled, forced = conn.execute(
                "SELECT relkind, relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass",
                (table,),
            ).fetchone()
            if kind == "v":
                options = (
                    conn.execute(
                        "SELECT reloptions FROM pg_class WHERE oid = %s::regclass", (table,)
                    ).fetchone()[0]
                    or []
                )
                assert "security_invoker=true" in options, f"view {table} bypasses RLS"
                continue
            assert enabled and forced, f"{table}: RLS not enabled and forced"
            policies = conn.execute(
                """SELECT polname, polcmd, pg_get_expr(polqual, polrelid),
                          CASE WHEN polroles = '{0}' THEN ARRAY['public']
                               ELSE array(SELECT rolname FROM pg_roles WHERE oid = ANY(polroles)) END
                     FROM pg_policy WHERE polrelid = %s::regclass""",
                (table,),
            ).fetchall()
            read = [p for p in policies if p[1] in ("r", "*") and "public" in p[3]]
            assert read, f"{table}: no policy for reads"
            for name, _, qual, _roles in read:
                assert "current_tenant()" in qual or "readable_tenants()" in qual, (table, name)
            # Only two kinds of role-specific policy exist: dbt's read-only view of every
            # tenant, and the admin's management of the registry and API keys.
            for name, command, _, roles in policies:
                if "public" in roles:
                    continue
                if name == "transform_read":
                    assert roles == ["bizosaas_transform"] and command == "r", (table, name)
                else:
                    assert name == "registry_admin", (table, name)
                    assert table in ("core.tenants", "ops.api_keys", "core.business_cache"), (table, name)
                    # the cache's is read-only: the expiry function reads it as the migration role
                    assert table != "core.business_cache" or command == "r", (table, command)
                    assert "bizosaas_serving" not in roles and "bizosaas_writer" not in roles


def test_unique_and_foreign_keys_include_tenant_id(platform, tenant_tables):
    with platform.admin() as conn:
        rows = conn.execute(
            """SELECT conrelid::regclass::text, conname, contype,
                      array(SELECT attname FROM pg_attribute
                             WHERE attrelid = conrelid AND attnum = ANY(conkey))
                 FROM pg_constraint WHERE contype IN ('p', 'u', 'f')"""
        ).fetchall()
    for table, name, kind, columns in rows:
        if table in tenant_tables and table != "core.tenants":
            assert "tenant_id" in columns, f"{table}.{name} ({kind}) lets tenants probe each other"


@pytest.mark.parametrize("tenant", [None, "", "no_such_tenant", *INJECTIONS])
def test_no_tenant_unknown_tenant_or_injection_sees_nothing(platform, tenant_tables, tenant):
    with serving(platform) as conn:
        for table in tenant_tables:
            count, _ = visible(conn, table, tenant)
            assert count == 0, f"{table} leaked {count} rows to tenant {tenant!r}"
    with platform.admin() as conn:  # and the injection did nothing else
        assert conn.execute("SELECT count(*) FROM core.tenants").fetchone()[0] >= 5


def test_a_client_sees_only_itself_and_the_master_sees_its_clients(platform, tenant_tables):
    populated = populated_tables(platform, tenant_tables)
    with platform.admin() as conn:
        servable = {
            t
            for t in tenant_tables
            if conn.execute(
                "SELECT has_schema_privilege(%(r)s, split_part(%(t)s, '.', 1), 'USAGE') "
                "AND has_table_privilege(%(r)s, %(t)s, 'SELECT')",
                {"r": SERVING_ROLE, "t": t},
            ).fetchone()[0]
        }
    assert {"core.tenant_profile", "core.table_loads", "marts.tenant_overview"} <= set(populated)
    with serving(platform) as conn:
        for table in tenant_tables:
            assert visible(conn, table, CLIENT_A)[1] <= {CLIENT_A}, table
        for table in populated:
            if table not in servable:  # staging views, API keys: not the serving role's to read at all
                assert visible(conn, table, MASTER) == (0, set())
                continue
            _, ids = visible(conn, table, CLIENT_A)
            assert ids == {CLIENT_A}, (table, ids)
            _, ids = visible(conn, table, MASTER)
            assert {MASTER, CLIENT_A, CLIENT_B} <= ids, (table, ids)
        # the filter cannot be widened from the query side either
        with conn.transaction():
            set_tenant(conn, CLIENT_A)
            rows = conn.execute(
                "SELECT tenant_id FROM core.tenant_profile WHERE tenant_id = %s OR true", (CLIENT_B,)
            ).fetchall()
        assert rows == [(CLIENT_A,)]


def test_offboarded_tenant_sees_nothing_and_its_master_no_longer_sees_it(platform, materialized):
    with platform.admin() as conn:
        conn.execute("UPDATE core.tenants SET status = 'offboarded' WHERE tenant_id = %s", (CLIENT_B,))
    try:
        with serving(platform) as conn:
            assert visible(conn, "core.tenant_profile", CLIENT_B) == (0, set())
            assert CLIENT_B not in visible(conn, "core.tenant_profile", MASTER)[1]
    finally:
        with platform.admin() as conn:
            conn.execute("UPDATE core.tenants SET status = 'active' WHERE tenant_id = %s", (CLIENT_B,))


def test_serving_cannot_write_at_all(platform, tenant_tables):
    with platform.admin() as conn:
        before = conn.execute("SELECT count(*) FROM core.tenant_profile").fetchone()[0]
    statements = [
        "UPDATE core.tenant_profile SET tier = 'free' WHERE tenant_id = 'thrillring'",
        "DELETE FROM core.tenant_profile WHERE tenant_id = 'thrillring'",
        "DELETE FROM core.tenants",
        "INSERT INTO core.tenants (tenant_id, display_name, kind, tier) "
        "VALUES ('evil', 'E', 'master', 'free')",
        "TRUNCATE core.tenant_profile",
        "ALTER TABLE core.tenant_profile DISABLE ROW LEVEL SECURITY",
        "SELECT * FROM core.tenant_registry()",
        "SET ROLE bizosaas_writer",
    ]
    with serving(platform) as conn:
        for statement in statements:
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                set_tenant(conn, CLIENT_A)
                conn.execute(statement)
    with platform.admin() as conn:
        assert conn.execute("SELECT count(*) FROM core.tenant_profile").fetchone()[0] == before


def test_writer_cannot_touch_another_tenants_rows(platform, materialized):
    with platform.admin() as conn:
        snapshot = conn.execute("SELECT * FROM core.tenant_profile ORDER BY tenant_id").fetchall()
    with psycopg.connect(platform.writer_url) as conn:
        for me in (CLIENT_A, MASTER):  # the master reads its clients but may not write them
            with conn.transaction():
                set_tenant(conn, me)
                assert (
                    conn.execute(
                        "UPDATE core.tenant_profile SET tier = 'free' WHERE tenant_id = %s", (CLIENT_B,)
                    ).rowcount
                    == 0
                )
                assert (
                    conn.execute("DELETE FROM core.tenant_profile WHERE tenant_id = %s", (CLIENT_B,)).rowcount
                    == 0
                )
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                set_tenant(conn, me)
                conn.execute(
                    "UPDATE core.tenant_profile SET tenant_id = %s WHERE tenant_id = %s", (CLIENT_B, me)
                )
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                set_tenant(conn, me)
                conn.execute(
                    """INSERT INTO core.tenant_profile (tenant_id, display_name, kind, tier, domains,
                              readable_tenants, settings_keys, materialized_at, dagster_run_id)
                       VALUES (%s, 'forged', 'client', 'free', '{}', '{}', '{}', now(), 'x')""",
                    (CLIENT_B,),
                )
    with platform.admin() as conn:
        assert conn.execute("SELECT * FROM core.tenant_profile ORDER BY tenant_id").fetchall() == snapshot


def test_pooled_connection_does_not_carry_a_tenant_into_the_next_request(platform, materialized):
    with ConnectionPool(platform.serving_url, min_size=1, max_size=1, open=True) as pool:
        with pool.connection() as conn:
            pid = conn.info.backend_pid
            assert visible(conn, "core.tenant_profile", MASTER)[0] >= 5
        with pool.connection() as conn:
            assert conn.info.backend_pid == pid  # the same physical connection
            # the setting now exists in the session with value '' -- which must mean no tenant
            assert conn.execute("SELECT current_setting('app.current_tenant', true)").fetchone()[0] == ""
            assert visible(conn, "core.tenant_profile", None) == (0, set())
