"""Keeps Dagster's tenant partitions in step with the tenant registry.

New tenant -> partitions added (in `tenant` and in each domain it subscribes to) and its
profile materialized; offboarded tenant or dropped domain -> partitions deleted, so no new
runs can target it. Registry edits (tier, settings, domains) re-materialize the profile.

A tick costs a fixed number of queries whatever the number of tenants (the registry, each
partitions definition, the profile's materialized partitions). Partitions are added in one go;
profile runs go out at most `max_run_requests()` per tick, the cursor remembering which
registry versions were requested, so 200 new tenants take a few ticks and none is requested
twice or forgotten. A tenant that would take a tenant x day asset over the partition budget
gets no partitions in that domain (an error in the tick's log says what to do).
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

from orchestration import partition_budget
from orchestration.partitions import PartitionSyncPlan, current_partitions, plan_partition_sync
from orchestration.warehouse import WarehouseResource
from sensors.limits import max_run_requests

TENANT_PROFILE = AssetKey("tenant_profile")


def withhold_over_budget(plan: PartitionSyncPlan, current: dict, assets, budget: int) -> list[str]:
    """Drop additions that would take an asset over the budget (tenants in id order keep their
    place); returns one message per asset refused."""
    refused = []
    for asset in assets:
        adding = plan.additions.get(asset.partitions_def)
        if not adding:
            continue
        have = len(current.get(asset.partitions_def, ())) - len(plan.deletions.get(asset.partitions_def, ()))
        room = max(budget // asset.days - have, 0)
        if len(adding) <= room:
            continue
        kept, dropped = adding[:room], adding[room:]
        if kept:
            plan.additions[asset.partitions_def] = kept
        else:
            del plan.additions[asset.partitions_def]
        named = ", ".join(dropped[:5]) + (", ..." if len(dropped) > 5 else "")
        refused.append(
            f"{len(dropped)} tenant(s) ({named}) get no "
            f"{asset.partitions_def} partitions: {asset.asset} would pass the partition budget of {budget:,} "
            f"({asset.days:,} days per tenant); shorten that history start or raise the budget"
        )
    return refused


@sensor(
    name="tenant_registry_sensor",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    asset_selection=[TENANT_PROFILE],
    description="Syncs tenant partitions with core.tenants and refreshes changed tenant profiles.",
)
def tenant_registry_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource):
    registry = warehouse.tenant_registry()
    current = current_partitions(context.instance)
    plan = plan_partition_sync(registry, current)
    refused: list[str] = []
    if context.repository_def is not None and plan.additions:
        budget, _ = partition_budget.budget_settings()
        assets = partition_budget.partitioned_assets(context.repository_def.asset_graph)
        refused = withhold_over_budget(plan, current, assets, budget)
        for message in refused:
            context.log.error(message)

    previous = json.loads(context.cursor) if context.cursor else None
    # Older cursors were the flat {tenant: updated_at} of every active tenant.
    seen: dict[str, str] = (previous.get("requested", previous) if previous else None) or {}
    materialized = context.instance.get_materialized_partitions(TENANT_PROFILE)
    active = {t.tenant_id: t.updated_at.isoformat() for t in registry if t.active}
    # A profile is (re)built for a registry version the sensor has not requested yet. A profile
    # already materialized counts as requested when the sensor first sees it (so starting the
    # daemon after `bizosaas materialize` does not redo the work).
    for tenant_id in materialized:
        if tenant_id in active and tenant_id not in seen:
            seen[tenant_id] = active[tenant_id]
    stale = sorted(tenant_id for tenant_id, version in active.items() if seen.get(tenant_id) != version)
    batch = stale[: max_run_requests()]
    run_requests = [
        RunRequest(
            run_key=f"tenant_profile:{tenant_id}:{active[tenant_id]}",
            partition_key=tenant_id,
            asset_selection=[TENANT_PROFILE],
        )
        for tenant_id in batch
    ]
    requested = {tenant_id: version for tenant_id, version in seen.items() if tenant_id in active}
    requested.update({tenant_id: active[tenant_id] for tenant_id in batch})
    cursor = json.dumps({"requested": requested}, sort_keys=True)
    if plan.empty and not run_requests and (previous or {}).get("requested") == requested:
        return SkipReason(
            f"{len(active)} active tenants, partitions in sync"
            + (f"; {'; '.join(refused)}" if refused else "")
        )
    waiting = len(stale) - len(batch)
    context.log.info(
        f"partitions: {plan.summary()}; profile runs: {len(run_requests)}"
        + (f" ({waiting} more on the next ticks)" if waiting else "")
    )
    return SensorResult(run_requests=run_requests, dynamic_partitions_requests=plan.requests(), cursor=cursor)
