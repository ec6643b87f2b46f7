"""The run queue, with every run's tenant where the per-tenant limits can see it.

dagster.yaml limits runs per tenant by tag. Runs of one partition carry their tenant in
dagster/partition (or dagster/partition/tenant); `bizosaas materialize` tags its own range runs with
bizosaas/tenant. Runs the backfill daemon creates over a range of days carry only the range tags
(dagster/asset_partition_range_start/end), so without this class a two-year backfill of one tenant
would queue outside that tenant's limit. `submit_run` adds bizosaas/tenant when both ends of the
range name the same tenant, before the run enters the queue.
"""

from dagster import DagsterInstance
from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from orchestration.partitions import DATE_DIMENSION, TENANT_DIMENSION, TENANT_TAG

# A multi-partition key's string joins its dimensions' keys in the order of their sorted names.
_TENANT_POSITION = sorted((DATE_DIMENSION, TENANT_DIMENSION)).index(TENANT_DIMENSION)


def range_tenant(tags: dict[str, str]) -> str | None:
    """The one tenant a run over a tenant x day range covers, else None."""
    start, end = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if not start or not end:
        return None
    start_parts, end_parts = start.split("|"), end.split("|")
    if len(start_parts) != 2 or len(end_parts) != 2:
        return None
    tenant = start_parts[_TENANT_POSITION]
    return tenant if tenant == end_parts[_TENANT_POSITION] else None


class TenantTaggingRunCoordinator(QueuedRunCoordinator[DagsterInstance]):
    """QueuedRunCoordinator (same config, same daemon) that tags range runs with their tenant."""

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        tenant = range_tenant(run.tags)
        if tenant and TENANT_TAG not in run.tags:
            # Stored before the enqueue event: the daemon reads tags from storage when it dequeues.
            self._instance.add_run_tags(run.run_id, {TENANT_TAG: tenant})
            run = run.with_tags({**run.tags, TENANT_TAG: tenant})
            context = SubmitRunContext(run, context.workspace)
        return super().submit_run(context)
