"""Refreshes directory tenants whose cached searches have expired (or were never fetched).

The daily schedule refreshes everyone; this sensor reacts within minutes to an entry expiring
or a search being added to a tenant's settings, so listings never stay stale for long. A
tenant is requested at most once an hour while it stays due (for example while an API is
down), and the cache asset itself only calls the APIs for the due entries.
"""

import json
from datetime import UTC, datetime

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from assets.directory import directory_partitions, directory_refresh_job
from orchestration.warehouse import WarehouseResource
from sensors.limits import max_run_requests


@sensor(
    name="directory_cache_expiry_sensor",
    job=directory_refresh_job,
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.RUNNING,
    description="Requests a directory refresh for tenants with expired or missing cache entries.",
)
def directory_cache_expiry_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource):
    partitions = set(context.instance.get_dynamic_partitions(directory_partitions.name))
    with warehouse.connect() as conn:
        due = conn.execute(
            "SELECT tenant_id, searches, due, oldest_due FROM core.directory_refresh_due() WHERE due > 0"
        ).fetchall()
    hour = datetime.now(UTC).strftime("%Y-%m-%dT%H")
    # Tenants requested this hour stay due until their run finishes: they are skipped, so a tick
    # capped at max_run_requests() moves on to the next ones instead of re-asking the same.
    previous = json.loads(context.cursor) if context.cursor else {}
    requested = set(previous.get("requested", ())) if previous.get("hour") == hour else set()
    candidates = sorted(
        # Only tenants the registry sensor has given partitions to (it runs every 30 s).
        (row for row in due if row[0] in partitions and row[0] not in requested),
        key=lambda row: (row[3] is not None, row[3] or datetime.min.replace(tzinfo=UTC), row[0]),
    )
    limit = max_run_requests()
    run_requests = [
        RunRequest(
            run_key=f"{tenant_id}:{oldest_due.isoformat() if oldest_due else 'new'}:{count}:{hour}",
            partition_key=tenant_id,
            tags={"bizosaas/trigger": "cache_expiry", "bizosaas/due_searches": str(count)},
        )
        for tenant_id, _searches, count, oldest_due in candidates[:limit]
    ]
    if not run_requests:
        return SkipReason("no directory tenant has expired or missing cache entries")
    requested |= {r.partition_key for r in run_requests}
    context.log.info(
        ", ".join(f"{r.partition_key}: {r.tags['bizosaas/due_searches']} due" for r in run_requests)
        + (f"; {len(candidates) - limit} more on the next ticks" if len(candidates) > limit else "")
    )
    return SensorResult(
        run_requests=run_requests, cursor=json.dumps({"hour": hour, "requested": sorted(requested)})
    )
