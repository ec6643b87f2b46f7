"""Keeps Dagster's tenant partitions in step with the tenant registry.

New tenant -> partitions added (in `tenant` and in each domain it subscribes to) and its
profile materialized; offboarded tenant or dropped domain -> partitions deleted, so no new
runs can target it. Registry edits (tier, settings, domains) re-materialize the profile.
"""

import json

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from orchestration.partitions import current_partitions, plan_partition_sync
from orchestration.warehouse import WarehouseResource

TENANT_PROFILE = AssetKey("tenant_profile")


@sensor(
    name="tenant_registry_sensor",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    asset_selection=[TENANT_PROFILE],
    description="Syncs tenant partitions with core.tenants and refreshes changed tenant profiles.",
)
def tenant_registry_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource):
    registry = warehouse.tenant_registry()
    plan = plan_partition_sync(registry, current_partitions(context.instance))

    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    materialized = context.instance.get_materialized_partitions(TENANT_PROFILE)
    active = {t.tenant_id: t.updated_at.isoformat() for t in registry if t.active}
    # A profile is (re)built when it was never materialized or its registry row changed since
    # the sensor last looked. On a first tick everything already materialized counts as seen,
    # so starting the daemon after `bizosaas materialize` does not redo the work.
    stale = sorted(
        tenant_id
        for tenant_id, updated_at in active.items()
        if tenant_id not in materialized or (tenant_id in seen and seen[tenant_id] != updated_at)
    )
    run_requests = [
        RunRequest(
            run_key=f"tenant_profile:{tenant_id}:{active[tenant_id]}",
            partition_key=tenant_id,
            asset_selection=[TENANT_PROFILE],
        )
        for tenant_id in stale
    ]
    if plan.empty and not run_requests and seen == active:
        return SkipReason(f"{len(active)} active tenants, partitions in sync")
    context.log.info(f"partitions: {plan.summary()}; profile runs: {len(run_requests)}")
    return SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=plan.requests(),
        cursor=json.dumps(active, sort_keys=True),
    )
