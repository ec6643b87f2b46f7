"""Daily maintenance: prune old Dagster runs and old raw API answers (orchestration/retention.py
holds the policy; `bizosaas prune` runs the same code by hand)."""

from dagster import (
    Config,
    DefaultScheduleStatus,
    OpExecutionContext,
    Output,
    ScheduleDefinition,
    job,
    op,
)
from pydantic import Field

from orchestration.retention import prune_raw, prune_runs, raw_retention_days, runs_retention_days
from orchestration.warehouse import WarehouseResource


class PruneConfig(Config):
    runs_older_than_days: int | None = Field(
        default=None,
        ge=1,
        description="Finished runs older than this go (default BIZOSAAS_PRUNE_RUNS_DAYS or 30).",
    )
    raw_older_than_days: int | None = Field(
        default=None,
        ge=1,
        description="Raw API answers older than this go (default BIZOSAAS_PRUNE_RAW_DAYS or 90).",
    )
    dry_run: bool = Field(default=False, description="Count what would go; delete nothing.")


@op(description="Delete finished runs past retention, except runs holding an asset partition's latest event.")
def prune_dagster_runs(context: OpExecutionContext, config: PruneConfig):
    days = config.runs_older_than_days or runs_retention_days()
    result = prune_runs(context.instance, days, dry_run=config.dry_run, progress=context.log.info)
    context.log.info(result.summary())
    counts = {
        "candidates": result.candidates,
        "kept_latest": len(result.kept),
        "deleted": len(result.deleted),
    }
    yield Output(None, metadata={"older_than_days": days, "dry_run": config.dry_run, **counts})


@op(description="Delete raw API answers past retention, except each request's newest and reparse inputs.")
def prune_raw_answers(context: OpExecutionContext, config: PruneConfig, warehouse: WarehouseResource):
    days = config.raw_older_than_days or raw_retention_days()
    result = prune_raw(warehouse, days, dry_run=config.dry_run, progress=context.log.info)
    context.log.info(result.summary())
    per_table = {n.removeprefix("raw."): c for n, c in result.deleted.items()}
    yield Output(
        None,
        metadata={"older_than_days": days, "dry_run": config.dry_run, "deleted": result.total, **per_table},
    )


@job(description="Retention: prune old Dagster runs (with their event logs) and old raw API answers.")
def retention_job():
    prune_dagster_runs()
    prune_raw_answers()


retention_daily = ScheduleDefinition(
    job=retention_job,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Prune runs and raw answers past retention, daily 03:30 UTC (before the morning refreshes).",
)
