"""The Postgres server behind the platform: the embedded one from `pgserver`, or `DATABASE_URL`.

The embedded server lives in `<data dir>/pg`, listens only on a Unix socket, and keeps running
between commands (pgserver's cleanup is disabled) so that the CLI, Dagster and the API share it.
`stop_embedded` shuts it down cleanly.
"""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from orchestration.errors import PlatformError
from orchestration.settings import LOGIN_ROLES, Settings

# pgserver logs every step at INFO; the CLI's own progress lines are enough.
logging.getLogger("pgserver").setLevel(logging.WARNING)
# pgserver keeps a lock file in the XDG runtime dir and warns when that is unset (root, CI).
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


@dataclass(frozen=True)
class EmbeddedStatus:
    running: bool
    pid: int | None
    url: str | None
    pgdata: Path


def _postmaster_info(pgdata: Path):
    from pgserver.utils import PostmasterInfo

    if not (pgdata / "PG_VERSION").exists():
        return None
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running() or not _is_postgres(info.process):
        return None
    return info


def _is_postgres(process) -> bool:
    # After a reboot postmaster.pid outlives the server and its pid may belong to another
    # program; trusting it would skip the start and leave every connection refused.
    try:
        return "postgres" in process.name()
    except Exception:  # the process ended meanwhile, or its name is unreadable
        return False


def embedded_status(settings: Settings) -> EmbeddedStatus:
    info = _postmaster_info(settings.pgdata)
    if info is None:
        return EmbeddedStatus(False, None, None, settings.pgdata)
    return EmbeddedStatus(True, info.pid, info.get_uri(database="postgres"), settings.pgdata)


def start_embedded(settings: Settings) -> str:
    """Start (or reuse) the embedded server and return its admin URL for the `postgres` db."""
    info = _postmaster_info(settings.pgdata)
    if info is not None:
        return info.get_uri(database="postgres")
    import pgserver

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        server = pgserver.get_server(settings.pgdata, cleanup_mode=None)
        # get_server caches one handle per folder; after a stop in this process it is stale.
        if _postmaster_info(settings.pgdata) is None:
            with server._lock:
                server.ensure_postgres_running()
    except subprocess.CalledProcessError as exc:
        raise PlatformError(f"the embedded Postgres did not start; see {settings.pgdata / 'log'}") from exc
    return server.get_uri(database="postgres")


def stop_embedded(settings: Settings) -> bool:
    """Stop the embedded server cleanly (fast shutdown: open transactions roll back,
    committed data is flushed). Returns False when it was not running."""
    info = _postmaster_info(settings.pgdata)
    if info is None:
        return False
    from pgserver._commands import pg_ctl

    # pgserver runs postgres as a dedicated system user when we are root.
    user = "pgserver" if _is_root() else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=settings.pgdata, user=user)
    return True


def _is_root() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0


def server_admin_url(settings: Settings) -> str:
    """Admin URL on the maintenance database (used to create the platform's databases)."""
    if settings.database_url:
        return with_database(settings.database_url, "postgres")
    return start_embedded(settings)


def admin_url(settings: Settings, database: str | None = None) -> str:
    return with_database(server_admin_url(settings), database or settings.db_name)


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(database)))


def with_credentials(url: str, user: str, password: str | None) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit(parts._replace(netloc=f"{auth}@{host}"))


def with_driver(url: str, driver: str) -> str:
    """`postgresql://` -> `postgresql+<driver>://` (SQLAlchemy dialect selection)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=f"postgresql+{driver}"))


def role_passwords(settings: Settings) -> dict[str, str]:
    """Passwords of the platform's login roles, generated once and kept in the data folder.

    The embedded server trusts its Unix socket, so these matter for external servers; they
    are generated rather than fixed so that no two installations share them.
    """
    path = settings.credentials_file
    stored = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for role in LOGIN_ROLES:
        if role not in stored:
            stored[role] = secrets.token_urlsafe(24)
            changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.write_text(json.dumps(stored, indent=2))
    return stored


def role_url(settings: Settings, role: str) -> str:
    return with_credentials(admin_url(settings), role, role_passwords(settings)[role])


def dagster_storage_url(settings: Settings) -> str:
    # SQLAlchemy 2.1 maps bare postgresql:// to psycopg 3, on which dagster-postgres fails at
    # its first NOTIFY; psycopg2 (shipped with dbt-postgres) is what it is tested with.
    return with_driver(admin_url(settings, settings.dagster_db_name), "psycopg2")


def connect(url: str, **kwargs) -> psycopg.Connection:
    try:
        return psycopg.connect(url, **kwargs)
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise PlatformError(
            f"cannot connect to Postgres ({first_line}); run `bizosaas db start`, or check DATABASE_URL"
        ) from exc


def ensure_database(settings: Settings, name: str) -> bool:
    """Create database `name` if missing. Returns True when it was created."""
    with connect(server_admin_url(settings), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def drop_database(settings: Settings, name: str) -> None:
    with connect(server_admin_url(settings), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def ensure_pgvector(conn: psycopg.Connection) -> str:
    row = conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    if row is None:
        raise PlatformError(
            "the Postgres server has no pgvector extension; install pgvector on it "
            "(https://github.com/pgvector/pgvector) or unset DATABASE_URL to use the embedded server"
        )
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
