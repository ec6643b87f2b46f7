import shutil

import psycopg
import pytest

from orchestration import postgres
from orchestration.errors import PlatformError
from orchestration.migrate import MIGRATIONS_DIR, apply_migrations, discover_migrations

SCHEMA_SNAPSHOT = """
SELECT n.nspname, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity,
       (SELECT array_agg(p.polname ORDER BY p.polname) FROM pg_policy p WHERE p.polrelid = c.oid),
       (SELECT array_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('raw', 'core', 'marts', 'ops')
 ORDER BY 1, 2
"""


@pytest.fixture
def scratch_db(platform):
    name = "bizosaas_test_migrations"
    postgres.drop_database(platform.settings, name)
    postgres.ensure_database(platform.settings, name)
    url = postgres.admin_url(platform.settings, name)
    yield url
    postgres.drop_database(platform.settings, name)


def test_migrations_apply_once_and_a_second_run_changes_nothing(scratch_db):
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        applied = apply_migrations(conn)
        assert applied == [m.version for m in discover_migrations()]
        before = conn.execute(SCHEMA_SNAPSHOT).fetchall()
        assert apply_migrations(conn) == []
        assert conn.execute(SCHEMA_SNAPSHOT).fetchall() == before
        versions = [r[0] for r in conn.execute("SELECT version FROM ops.schema_migrations ORDER BY 1")]
        assert versions == applied
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}
        assert {"raw", "core", "marts"} <= schemas


def test_an_edited_applied_migration_is_refused(scratch_db, tmp_path):
    for path in MIGRATIONS_DIR.glob("*.sql"):
        shutil.copy(path, tmp_path / path.name)
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        apply_migrations(conn, discover_migrations(tmp_path))
        first = sorted(tmp_path.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited\n")
        with pytest.raises(PlatformError, match="changed after it was applied"):
            apply_migrations(conn, discover_migrations(tmp_path))


def test_a_failing_migration_leaves_nothing_half_applied(scratch_db, tmp_path):
    for path in MIGRATIONS_DIR.glob("*.sql"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "9999_broken.sql").write_text(
        "CREATE TABLE core.half_done (tenant_id text);\nSELECT no_such_function();\n"
    )
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedFunction):
            apply_migrations(conn, discover_migrations(tmp_path))
        assert conn.execute("SELECT to_regclass('core.half_done')").fetchone()[0] is None
        assert conn.execute("SELECT max(version) FROM ops.schema_migrations").fetchone()[0] < 9999


def test_missing_pgvector_is_a_clear_error(platform, monkeypatch):
    class NoVector:
        def execute(self, *_):
            class Result:
                def fetchone(self):
                    return None

            return Result()

    with pytest.raises(PlatformError, match="no pgvector extension"):
        postgres.ensure_pgvector(NoVector())


def test_pgvector_is_installed_in_the_warehouse(platform):
    with platform.admin() as conn:
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname='vector'").fetchone()
        assert version is not None
        assert conn.execute("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector").fetchone()[0] == 1.0
