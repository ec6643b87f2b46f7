"""Prepares the environment every platform process runs in.

One call (`prepare`) starts the embedded server if needed, migrates, and returns the
environment variables that Dagster, dbt and the API read; the CLI exports them to the
processes it starts, so nobody has to set them by hand.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestration import migrate
from orchestration.settings import (
    ENV_DAGSTER_PG_URL,
    ENV_SERVING_URL,
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


def prepare(settings: Settings) -> dict[str, str]:
    urls = migrate.bootstrap(settings)
    home = dagster_home(settings)
    return {
        ENV_WRITER_URL: urls.writer,
        ENV_SERVING_URL: urls.serving,
        ENV_DAGSTER_PG_URL: urls.dagster_storage,
        "DAGSTER_HOME": str(home),
        "BIZOSAAS_DAGSTER_STORAGE": str(home / "storage"),
        "BIZOSAAS_DAGSTER_LOGS": str(home / "logs"),
    }


def export(env: dict[str, str]) -> None:
    os.environ.update(env)
