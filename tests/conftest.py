"""Session fixtures: one real Postgres (embedded, or the server of DATABASE_URL) per test run.

Tests use their own data folder (`.data/test`) and databases (`bizosaas_test*`), created
fresh each session, so `make test` never touches the demo's data.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from orchestration.settings import ENV_DATA_DIR, ENV_DB_NAME, PROJECT_ROOT

os.environ.setdefault(ENV_DATA_DIR, str(PROJECT_ROOT / ".data" / "test"))
os.environ[ENV_DB_NAME] = "bizosaas_test"
os.environ.setdefault("BIZOSAAS_SOURCE_MODE", "replay")

from orchestration import postgres, runtime, tenants  # noqa: E402
from orchestration.settings import Settings, load_settings  # noqa: E402


@dataclass(frozen=True)
class Platform:
    settings: Settings
    env: dict[str, str]

    @property
    def admin_url(self) -> str:
        return postgres.admin_url(self.settings)

    @property
    def writer_url(self) -> str:
        return self.env["BIZOSAAS_WRITER_URL"]

    @property
    def serving_url(self) -> str:
        return self.env["BIZOSAAS_SERVING_URL"]

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_url, autocommit=True)


@pytest.fixture(scope="session")
def platform() -> Iterator[Platform]:
    settings = load_settings()
    started_here = settings.embedded and not postgres.embedded_status(settings).running
    postgres.server_admin_url(settings)  # starts the embedded server when needed
    postgres.drop_database(settings, settings.db_name)
    postgres.drop_database(settings, settings.dagster_db_name)
    if settings.drops_dir.is_relative_to(settings.data_dir):
        shutil.rmtree(settings.drops_dir, ignore_errors=True)  # a fresh database, a fresh drop folder
    env = runtime.prepare(settings)
    runtime.export(env)
    with psycopg.connect(postgres.admin_url(settings), autocommit=True) as conn:
        tenants.seed(conn, tenants.load_seed(settings.tenants_file))
    yield Platform(settings, env)
    if started_here:
        postgres.stop_embedded(settings)


@pytest.fixture(scope="session")
def dagster_instance(platform):
    from dagster import DagsterInstance

    instance = DagsterInstance.get()
    yield instance
    instance.dispose()


@pytest.fixture(scope="session")
def materialized(platform, dagster_instance):
    """Every asset materialized for every seeded tenant, through the CLI's code path."""
    from orchestration.definitions import defs
    from orchestration.file_drops import seed_demo_drops
    from orchestration.materialize import execute, plan_runs
    from orchestration.partitions import current_partitions, plan_partition_sync
    from orchestration.warehouse import WarehouseResource

    seed_demo_drops(platform.settings)  # as `bizosaas demo` does
    registry = WarehouseResource(database_url=platform.writer_url).tenant_registry()
    plan_partition_sync(registry, current_partitions(dagster_instance)).apply(dagster_instance)
    outcomes = execute(
        defs, dagster_instance, plan_runs(defs, dagster_instance, None, None), progress=lambda _: None
    )
    assert outcomes and all(o.success for o in outcomes), [
        (o.run.label, o.error) for o in outcomes if not o.success
    ]
    return outcomes


@pytest.fixture(scope="session")
def embedder():
    """all-MiniLM-L6-v2, loaded once per test session (~10 s)."""
    from ml.knowledge.embedders import MiniLmEmbedder

    model = MiniLmEmbedder()
    model.load()
    return model


@pytest.fixture(scope="session")
def knowledge(materialized):
    """Vectors and graph of every seeded tenant: the real `embeddings` and `knowledge_graph`
    assets ran inside `materialized` over the bundled replay data."""
    return materialized
