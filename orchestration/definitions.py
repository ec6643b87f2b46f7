"""The Dagster code location: every domain's assets, checks, sensors and resources."""

from __future__ import annotations

from dagster import (
    Definitions,
    EnvVar,
    load_asset_checks_from_modules,
    load_assets_from_modules,
)

from assets import tenancy
from orchestration.settings import ENV_WRITER_URL
from orchestration.warehouse import WarehouseResource
from sensors.tenants import tenant_registry_sensor

DOMAIN_MODULES = [tenancy]

defs = Definitions(
    assets=load_assets_from_modules(DOMAIN_MODULES),
    asset_checks=load_asset_checks_from_modules(DOMAIN_MODULES),
    sensors=[tenant_registry_sensor],
    resources={"warehouse": WarehouseResource(database_url=EnvVar(ENV_WRITER_URL))},
)
