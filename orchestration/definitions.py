"""The Dagster code location: every domain's assets, checks, schedules, sensors and resources."""

from dagster import (
    Definitions,
    EnvVar,
    load_asset_checks_from_modules,
    load_assets_from_modules,
)
from dagster_dbt import DbtCliResource

from assets import analytics, tenancy
from orchestration.runtime import DBT_EXECUTABLE, DBT_PROJECT_DIR
from orchestration.settings import ENV_WRITER_URL
from orchestration.warehouse import WarehouseResource
from sensors.automation import automation_sensor
from sensors.tenants import tenant_registry_sensor

DOMAIN_MODULES = [tenancy, analytics]

defs = Definitions(
    assets=[
        *load_assets_from_modules(DOMAIN_MODULES),
        analytics.tenant_registry,
        analytics.table_loads,
    ],
    asset_checks=load_asset_checks_from_modules(DOMAIN_MODULES),
    schedules=[analytics.nightly_marts_schedule],
    sensors=[tenant_registry_sensor, automation_sensor],
    resources={
        "warehouse": WarehouseResource(database_url=EnvVar(ENV_WRITER_URL)),
        "dbt": DbtCliResource(
            project_dir=analytics.dbt_project,
            profiles_dir=str(DBT_PROJECT_DIR),
            dbt_executable=DBT_EXECUTABLE,
        ),
    },
)
