"""Prepares the environment every platform process runs in.

One call (`prepare`) starts the embedded server if needed, migrates, and returns the
environment variables that Dagster, dbt and the API read; the CLI exports them to the
processes it starts, so nobody has to set them by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from orchestration import migrate
from orchestration.errors import PlatformError
from orchestration.settings import (
    ENV_DAGSTER_PG_URL,
    ENV_SERVING_URL,
    ENV_TRANSFORM_URL,
    ENV_WRITER_URL,
    PROJECT_ROOT,
    Settings,
)


def dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME inside the data folder, with the repo's dagster.yaml linked in, so the
    instance config is versioned while runs, logs and history stay out of git."""
    home = settings.dagster_home
    (home / "storage").mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(parents=True, exist_ok=True)
    link = home / "dagster.yaml"
    source = PROJECT_ROOT / "dagster.yaml"
    if link.is_symlink() and link.resolve() == source.resolve():
        return home
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(source)
    return home


DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
# The dbt installed beside this interpreter, so a venv need not be activated (PATH unset).
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")


def dbt_env(url: str) -> dict[str, str]:
    """dbt-postgres wants host/port/user/... rather than a URL; a Unix socket is a host that
    is a folder."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return {
        "BIZOSAAS_DBT_HOST": query.get("host", [parts.hostname or "localhost"])[0],
        "BIZOSAAS_DBT_PORT": str(query.get("port", [parts.port or 5432])[0]),
        "BIZOSAAS_DBT_USER": unquote(parts.username or ""),
        "BIZOSAAS_DBT_PASSWORD": unquote(parts.password or ""),
        "BIZOSAAS_DBT_DBNAME": unquote(parts.path.lstrip("/")),
    }


def dbt_manifest_is_stale() -> bool:
    manifest = DBT_PROJECT_DIR / "target" / "manifest.json"
    if not manifest.exists():
        return True
    sources = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        sources += (DBT_PROJECT_DIR / folder).rglob("*")
    built = manifest.stat().st_mtime
    return any(path.stat().st_mtime > built for path in sources if path.is_file())


def parse_dbt_project(env: dict[str, str]) -> None:
    """Write dbt's manifest, which dagster-dbt reads to define the dbt assets. Parsing does not
    touch the database, and takes a few seconds, so it only runs when the project changed."""
    if not dbt_manifest_is_stale():
        return
    proc = subprocess.run(
        [
            DBT_EXECUTABLE,
            "parse",
            "--quiet",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
        ],
        env={**os.environ, **env},
        cwd=DBT_PROJECT_DIR,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        detail = " ".join((proc.stdout + proc.stderr).split())[-400:]
        raise PlatformError(f"dbt parse failed for {DBT_PROJECT_DIR}: {detail}")


def prepare(settings: Settings) -> dict[str, str]:
    urls = migrate.bootstrap(settings)
    home = dagster_home(settings)
    env = {
        ENV_WRITER_URL: urls.writer,
        ENV_SERVING_URL: urls.serving,
        ENV_TRANSFORM_URL: urls.transform,
        ENV_DAGSTER_PG_URL: urls.dagster_storage,
        "DAGSTER_HOME": str(home),
        "BIZOSAAS_DAGSTER_STORAGE": str(home / "storage"),
        "BIZOSAAS_DAGSTER_LOGS": str(home / "logs"),
        **dbt_env(urls.transform),
    }
    parse_dbt_project(env)
    return env


def export(env: dict[str, str]) -> None:
    os.environ.update(env)
