"""Retention: old Dagster runs (with their event logs) and old raw API answers, pruned so the
instance and the warehouse do not grow without bound, never what the UI or a mart still shows.

Runs: OSS Dagster keeps every run forever. A finished run older than the cutoff is deleted with
its events, except a run holding the latest event of some asset partition (materialization,
observation, planned or failed materialization, check evaluation): deleting it would blank or
change that partition's status in the UI. Queued and in-progress runs are never touched.

Raw answers (raw.*_api_responses, raw.gaming_feed_responses): an answer older than the cutoff is
deleted unless it is, per tenant and request, the newest successful answer, or an answer a
`reparse` replays to rebuild current core data (see RAW_TABLES). dbt reads only core tables, so
marts never read raw answers. Offboarded tenants are left alone: offboarding keeps a tenant's data,
raw answers included, until it is purged deliberately (and row-level security hides it from the
writer role anyway).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from orchestration.errors import PlatformError
from orchestration.settings import ENV_PRUNE_RAW_DAYS, ENV_PRUNE_RUNS_DAYS

DEFAULT_RUNS_DAYS = 30
DEFAULT_RAW_DAYS = 90


def retention_days(env_name: str, default: int) -> int:
    value = os.environ.get(env_name, "").strip()
    if not value:
        return default
    try:
        days = int(value)
    except ValueError:
        raise PlatformError(f"{env_name} must be a whole number of days, got {value!r}") from None
    if days < 1:
        raise PlatformError(f"{env_name} must be at least 1 day, got {days}")
    return days


def runs_retention_days() -> int:
    return retention_days(ENV_PRUNE_RUNS_DAYS, DEFAULT_RUNS_DAYS)


def raw_retention_days() -> int:
    return retention_days(ENV_PRUNE_RAW_DAYS, DEFAULT_RAW_DAYS)


# --- Dagster runs --------------------------------------------------------------------------------

# The events whose latest per asset partition the UI's partition status is made of.
STATUS_EVENTS = (
    "ASSET_MATERIALIZATION",
    "ASSET_OBSERVATION",
    "ASSET_MATERIALIZATION_PLANNED",
    "ASSET_FAILED_TO_MATERIALIZE",
)


@dataclass
class RunPruneResult:
    candidates: int  # finished runs older than the cutoff
    kept: list[str]  # of those, the runs holding an asset partition's latest event
    deleted: list[str] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        count = self.candidates - len(self.kept) if self.dry_run else len(self.deleted)
        return (
            f"runs: {verb} {count} of {self.candidates} finished run(s) past the cutoff; "
            f"kept {len(self.kept)} holding an asset partition's latest event"
        )


def protected_run_ids(instance) -> set[str]:
    """Runs holding the latest status event of some (asset, partition) or the latest evaluation
    of some (asset check, partition)."""
    types = ", ".join(f"'{t}'" for t in STATUS_EVENTS)
    with instance.event_log_storage.index_connection() as conn:
        events = conn.execute(
            text(
                f"""SELECT DISTINCT run_id FROM (
                      SELECT DISTINCT ON (asset_key, dagster_event_type, partition) run_id
                        FROM event_logs
                       WHERE asset_key IS NOT NULL AND dagster_event_type IN ({types})
                       ORDER BY asset_key, dagster_event_type, partition, id DESC) latest"""
            )
        ).fetchall()
        checks = conn.execute(
            text(
                """SELECT DISTINCT run_id FROM (
                      SELECT DISTINCT ON (asset_key, check_name, partition) run_id
                        FROM asset_check_executions
                       ORDER BY asset_key, check_name, partition, id DESC) latest"""
            )
        ).fetchall()
    return {r[0] for r in [*events, *checks] if r[0]}


def prune_runs(
    instance, older_than_days: int, *, dry_run: bool = False, now: datetime | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> RunPruneResult:  # fmt: skip
    from dagster import DagsterRunStatus, RunsFilter

    if older_than_days < 1:
        raise PlatformError(f"--older-than must be at least 1 day (got {older_than_days})")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
    finished = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
    candidates = instance.get_run_ids(RunsFilter(statuses=finished, updated_before=cutoff))
    # Computed after listing the candidates: a run finishing in between holds no older partition.
    protected = protected_run_ids(instance)
    kept = [r for r in candidates if r in protected]
    result = RunPruneResult(len(candidates), kept, dry_run=dry_run)
    if dry_run:
        return result
    doomed = [r for r in candidates if r not in protected]
    for i, run_id in enumerate(doomed, 1):
        instance.delete_run(run_id)
        _delete_compute_logs(instance, run_id)
        result.deleted.append(run_id)
        if i % 100 == 0 or i == len(doomed):
            progress(f"deleted {i}/{len(doomed)} runs")
    return result


def _delete_compute_logs(instance, run_id: str) -> None:
    manager = instance.compute_log_manager
    if hasattr(manager, "delete_logs"):
        # The run and its events are gone; a stray stdout file left behind is harmless.
        with contextlib.suppress(NotImplementedError, OSError):
            manager.delete_logs(prefix=[run_id])


# --- raw API answers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RawTable:
    name: str
    # Columns naming one request (per tenant): its newest successful answer is always kept.
    request_key: tuple[str, ...]
    # Rows a parser replay (`reparse`) reads to rebuild current core data: kept at any age.
    # An SQL condition on the table's row `r`, with the tenant as the %(tenant)s parameter.
    replayed: str | None = None
    success: str = "status = 200"


RAW_TABLES = (
    # Directory `reparse` reads the answers each current cache entry lists.
    RawTable(
        "raw.directory_api_responses",
        ("search_query", "search_location", "source", "request"),
        replayed="r.response_id IN (SELECT unnest(c.response_ids) FROM core.business_cache c "
        "WHERE c.tenant_id = %(tenant)s)",
    ),
    # Catalogue `reparse` reads every answer of the run that wrote the current catalogue.
    RawTable(
        "raw.gaming_api_responses",
        ("asset", "partition_key", "source", "request"),
        replayed="r.dagster_run_id IN (SELECT g.answers_run_id FROM core.gaming_catalogue g "
        "WHERE g.tenant_id = %(tenant)s)",
    ),
    # News `reparse` re-reads the kept feed answers; items already in core.gaming_news_items stay
    # there (the table accumulates), so an older answer adds nothing a rebuild needs.
    RawTable("raw.gaming_feed_responses", ("feed_url", "request")),
    RawTable("raw.ecommerce_api_responses", ("dataset", "partition_key", "page", "variables", "request")),
    RawTable("raw.crm_api_responses", ("endpoint", "params")),
    RawTable("raw.trading_api_responses", ("source", "symbol", "request")),
)


def _keep_condition(table: RawTable) -> str:
    key = ", ".join(table.request_key)
    newest = (
        f"r.response_id IN (SELECT DISTINCT ON ({key}) response_id FROM {table.name} "
        f"WHERE tenant_id = %(tenant)s AND {table.success} "
        f"ORDER BY {key}, fetched_at DESC, response_id DESC)"
    )
    return f"({newest} OR {table.replayed})" if table.replayed else newest


def raw_prune_sql(table: RawTable, *, count_only: bool) -> str:
    where = f"r.tenant_id = %(tenant)s AND r.fetched_at < %(cutoff)s AND NOT {_keep_condition(table)}"
    if count_only:
        return f"SELECT count(*) FROM {table.name} r WHERE {where}"
    return f"DELETE FROM {table.name} r WHERE {where}"


@dataclass
class RawPruneResult:
    deleted: dict[str, int]
    dry_run: bool = False

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        per_table = ", ".join(f"{n.removeprefix('raw.')} {c}" for n, c in self.deleted.items() if c)
        return f"raw answers: {verb} {self.total}" + (f" ({per_table})" if per_table else "")


def prune_raw(
    warehouse, older_than_days: int, *, dry_run: bool = False, now: datetime | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> RawPruneResult:  # fmt: skip
    """Per active tenant, one transaction under its row-level security, as every pipeline write is."""
    if older_than_days < 1:
        raise PlatformError(f"--older-than must be at least 1 day (got {older_than_days})")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
    deleted = {t.name: 0 for t in RAW_TABLES}
    tenants = [t.tenant_id for t in warehouse.tenant_registry() if t.active]
    for i, tenant_id in enumerate(tenants, 1):
        with warehouse.tenant_transaction(tenant_id) as conn:
            for table in RAW_TABLES:
                params = {"tenant": tenant_id, "cutoff": cutoff}
                if dry_run:
                    deleted[table.name] += conn.execute(
                        raw_prune_sql(table, count_only=True), params
                    ).fetchone()[0]
                else:
                    deleted[table.name] += conn.execute(
                        raw_prune_sql(table, count_only=False), params
                    ).rowcount
        if i % 50 == 0 or i == len(tenants):
            progress(f"{i}/{len(tenants)} tenants")
    return RawPruneResult(deleted, dry_run)


def raw_tables_size(conn) -> int:
    """Bytes on disk of the raw answer tables (indexes and TOAST included)."""
    names = [t.name for t in RAW_TABLES]
    return conn.execute(
        "SELECT coalesce(sum(pg_total_relation_size(n::regclass)), 0)::bigint FROM unnest(%s::text[]) n",
        (names,),
    ).fetchone()[0]
