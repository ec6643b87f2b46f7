"""Versioned, idempotent migrations and the one-call bootstrap every entry point uses.

Migrations are the numbered `.sql` files beside this module. Each is applied once, in its own
transaction, and recorded in `ops.schema_migrations` with a checksum, so a second run changes
nothing and an edited, already-applied migration is refused rather than silently skipped.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from orchestration import postgres
from orchestration.errors import PlatformError
from orchestration.settings import LOGIN_ROLES, SERVING_ROLE, TRANSFORM_ROLE, WRITER_ROLE, Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same in every process that migrates.
_MIGRATION_LOCK_KEY = 0x62697A6F


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql_text(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class RuntimeUrls:
    """Connection URLs handed to Dagster, dbt and the API (as environment variables)."""

    admin: str
    writer: str
    serving: str
    transform: str
    dagster_storage: str


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise PlatformError(f"migration file {path.name} is not named NNNN_name.sql")
        migrations.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise PlatformError("two migration files share a version number")
    return migrations


def ensure_roles(conn: psycopg.Connection, passwords: dict[str, str]) -> None:
    """Create the login roles, and re-assert their attributes on every run: none may bypass
    RLS, whatever someone did to them by hand."""
    for role in LOGIN_ROLES:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(
                "{} ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD {}"
            ).format(sql.SQL(verb), sql.Identifier(role), sql.Literal(passwords[role]))
        )


def apply_migrations(conn: psycopg.Connection, migrations: list[Migration] | None = None) -> list[int]:
    """Apply pending migrations; returns the versions applied by this call."""
    migrations = discover_migrations() if migrations is None else migrations
    conn.autocommit = True
    # Several processes (CLI, webserver, API) may start at once: one migrates, the others wait.
    conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
    try:
        conn.execute("CREATE SCHEMA IF NOT EXISTS ops")
        conn.execute(
            """CREATE TABLE IF NOT EXISTS ops.schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = {
            version: (name, checksum)
            for version, name, checksum in conn.execute(
                "SELECT version, name, checksum FROM ops.schema_migrations"
            )
        }
        done = []
        for migration in migrations:
            if migration.version in applied:
                if applied[migration.version][1] != migration.checksum:
                    raise PlatformError(
                        f"migration {migration.path.name} changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            with conn.transaction():
                conn.execute(migration.sql_text)
                conn.execute(
                    "INSERT INTO ops.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            done.append(migration.version)
        return done
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_KEY,))


def bootstrap(settings: Settings) -> RuntimeUrls:
    """Start the server if embedded, create the databases and roles, migrate; idempotent."""
    postgres.ensure_database(settings, settings.db_name)
    postgres.ensure_database(settings, settings.dagster_db_name)
    passwords = postgres.role_passwords(settings)
    admin = postgres.admin_url(settings)
    with postgres.connect(admin, autocommit=True) as conn:
        postgres.ensure_pgvector(conn)
        ensure_roles(conn, passwords)
        apply_migrations(conn)
    return RuntimeUrls(
        admin=admin,
        writer=postgres.role_url(settings, WRITER_ROLE),
        serving=postgres.role_url(settings, SERVING_ROLE),
        transform=postgres.role_url(settings, TRANSFORM_ROLE),
        dagster_storage=postgres.dagster_storage_url(settings),
    )
