"""Materialize assets for tenants on the configured Dagster instance, with progress.

Used by `bizosaas materialize` and `make demo`. Runs execute in this process but are recorded
in the instance's Postgres storage, so they show in the Dagster UI like any other run. Assets
are grouped by partitions definition and run in dependency order, one run per partition. Daily
assets build their latest day, or the last `days` days: as one run per tenant over the range
when every asset of the group accepts ranges (a single-run backfill policy), else one run per
tenant and day. An asset tagged `bizosaas/history: full` (with a single-run policy) builds every
day of its partitions instead, in one run per tenant: market data whose strategies need years of
bars, and whose source answers a whole history in one request per symbol.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    PartitionsDefinition,
)

# Dagster's run tags for a run over a range of partitions (what a single-run backfill launches).
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from orchestration.errors import PlatformError
from orchestration.partitions import DATE_DIMENSION, TENANT_DIMENSION, TENANT_TAG

# An asset's tag asking the planner for all its days whatever `days` says (value "full").
HISTORY_TAG = "bizosaas/history"


@dataclass
class PlannedRun:
    assets: list[AssetKey]
    partition_key: str | None
    # (first, last) partition key of a run over a range of partitions, instead of one key.
    partition_range: tuple[MultiPartitionKey, MultiPartitionKey] | None = None

    @property
    def label(self) -> str:
        names = ", ".join(k.to_user_string() for k in self.assets)
        if self.partition_range:
            first, last = (k.keys_by_dimension for k in self.partition_range)
            return f"{names} @ {first[TENANT_DIMENSION]}, {first[DATE_DIMENSION]}..{last[DATE_DIMENSION]}"
        return f"{names} @ {self.partition_key}" if self.partition_key else names

    @property
    def tags(self) -> dict[str, str]:
        if not self.partition_range:
            return {}
        first, last = self.partition_range
        return {
            ASSET_PARTITION_RANGE_START_TAG: str(first),
            ASSET_PARTITION_RANGE_END_TAG: str(last),
            # Not dagster/partition/tenant: Dagster reads that tag as (part of) a single partition key.
            TENANT_TAG: first.keys_by_dimension[TENANT_DIMENSION],
        }


@dataclass
class RunOutcome:
    run: PlannedRun
    success: bool
    seconds: float
    run_id: str
    error: str | None = None


def _tenant_keys(
    partitions_def: PartitionsDefinition, instance: DagsterInstance, tenant: str | None, days: int = 1
) -> list[str]:
    if isinstance(partitions_def, DynamicPartitionsDefinition):
        keys = instance.get_dynamic_partitions(partitions_def.name)
        return [k for k in keys if tenant is None or k == tenant]
    if isinstance(partitions_def, MultiPartitionsDefinition):
        dims = {d.name: d.partitions_def for d in partitions_def.partitions_defs}
        tenants = _tenant_keys(dims[TENANT_DIMENSION], instance, tenant)
        # The demo and a manual refresh build the latest complete day(s); backfills do history.
        window = _last_days(dims[DATE_DIMENSION], instance, days)
        return [MultiPartitionKey({TENANT_DIMENSION: t, DATE_DIMENSION: d}) for t in tenants for d in window]
    raise PlatformError(f"no tenant dimension in partitions definition {partitions_def}")


def _last_days(days_def: PartitionsDefinition, instance: DagsterInstance, days: int) -> list[str]:
    keys = days_def.get_partition_keys(dynamic_partitions_store=instance)
    return keys[-days:] if keys else []


def _accepts_ranges(graph, keys: list[AssetKey], days: int) -> bool:
    """Whether every asset in `keys` runs a range of `days` partitions in one run."""
    for key in keys:
        policy = graph.get(key).backfill_policy
        # A single-run policy has no maximum; a multi-run one takes at most that many per run.
        if policy is None or (
            policy.max_partitions_per_run is not None and policy.max_partitions_per_run < days
        ):
            return False
    return True


def _full_history(graph, key: AssetKey) -> bool:
    if graph.get(key).tags.get(HISTORY_TAG) != "full":
        return False
    policy = graph.get(key).backfill_policy
    if policy is None or policy.max_partitions_per_run is not None:
        raise PlatformError(
            f"{key.to_user_string()} asks for its full history ({HISTORY_TAG}=full) but does not "
            "run a range of days in one run: give it BackfillPolicy.single_run()"
        )
    return True


def _daily_runs(
    graph, pdef, keys: list[AssetKey], instance, tenant: str | None, days: int
) -> list[PlannedRun]:
    full = [k for k in keys if _full_history(graph, k)]
    rest = [k for k in keys if k not in full]
    runs = []
    if full:
        dims = {d.name: d.partitions_def for d in pdef.partitions_defs}
        every_day = len(dims[DATE_DIMENSION].get_partition_keys(dynamic_partitions_store=instance))
        runs += _window_runs(graph, pdef, full, instance, tenant, max(days, every_day, 1))
    if rest:
        runs += _window_runs(graph, pdef, rest, instance, tenant, days)
    return runs


def _window_runs(
    graph, pdef, keys: list[AssetKey], instance, tenant: str | None, days: int
) -> list[PlannedRun]:
    partition_keys = _tenant_keys(pdef, instance, tenant, days)
    if days <= 1 or not _accepts_ranges(graph, keys, days):
        return [PlannedRun(keys, key) for key in partition_keys]
    by_tenant: dict[str, list[MultiPartitionKey]] = {}
    for key in partition_keys:
        by_tenant.setdefault(key.keys_by_dimension[TENANT_DIMENSION], []).append(key)
    return [
        PlannedRun(keys, None, (tenant_keys[0], tenant_keys[-1]))
        if len(tenant_keys) > 1
        else PlannedRun(keys, tenant_keys[0])
        for tenant_keys in by_tenant.values()
    ]


def _ancestors(graph, key: AssetKey) -> set[AssetKey]:
    seen: set[AssetKey] = set()
    stack = list(graph.get(key).parent_keys)
    while stack:
        parent = stack.pop()
        if parent not in seen:
            seen.add(parent)
            stack.extend(graph.get(parent).parent_keys)
    return seen


def plan_runs(
    defs: Definitions, instance: DagsterInstance, select: str | None, tenant: str | None, days: int = 1
) -> list[PlannedRun]:
    if days < 1:
        raise PlatformError(f"--days must be at least 1 (got {days})")
    graph = defs.resolve_asset_graph()
    selection = AssetSelection.from_string(select) if select else AssetSelection.all()
    # Assets made by one op together (products with their variants) run together.
    selection = selection.required_multi_asset_neighbors()
    try:
        keys = selection.resolve(graph)
    except Exception as exc:  # Dagster raises several types for a bad selection string
        raise PlatformError(f"bad --select {select!r}: {exc}") from exc
    keys = {k for k in keys if graph.get(k).is_materializable}
    if not keys:
        raise PlatformError(f"--select {select!r} matches no asset")
    order = {key: i for i, key in enumerate(graph.toposorted_asset_keys)}

    groups: dict[str, tuple[PartitionsDefinition | None, list[AssetKey]]] = {}
    group_of: dict[AssetKey, str] = {}
    for key in sorted(keys, key=order.__getitem__):
        pdef = graph.get(key).partitions_def
        groups.setdefault(repr(pdef), (pdef, []))[1].append(key)
        group_of[key] = repr(pdef)
    # A group runs after every group holding one of its assets' ancestors (e.g. all tenant
    # partitions before the unpartitioned dbt marts that aggregate them).
    sorter: TopologicalSorter[str] = TopologicalSorter({name: set() for name in groups})
    for key, name in group_of.items():
        for ancestor in _ancestors(graph, key):
            if ancestor in group_of and group_of[ancestor] != name:
                sorter.add(name, group_of[ancestor])
    try:
        group_order = list(sorter.static_order())
    except CycleError as exc:
        raise PlatformError(
            "assets with different partitions depend on each other both ways; select them separately"
        ) from exc

    runs: list[PlannedRun] = []
    for pdef, group_keys in (groups[name] for name in group_order):
        if pdef is None:
            if tenant is None:
                runs.append(PlannedRun(group_keys, None))
            continue
        if isinstance(pdef, MultiPartitionsDefinition):
            runs += _daily_runs(graph, pdef, group_keys, instance, tenant, days)
        else:
            runs += [PlannedRun(group_keys, key) for key in _tenant_keys(pdef, instance, tenant)]
    return runs


def execute(
    defs: Definitions,
    instance: DagsterInstance,
    runs: list[PlannedRun],
    progress: Callable[[str], None] = print,
) -> list[RunOutcome]:
    job = defs.resolve_implicit_global_asset_job_def()
    # Dagster's Postgres storage opens a new connection per event by default (NullPool); a range
    # run writes an event per partition (QuantTrade's history: ~5,800 events), and the connections
    # were most of its time. Runs here are in this process, one at a time: hold a small pool.
    if not getattr(instance, "_bizosaas_pooled", False):  # once: each call makes new engines
        instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=4)
        instance._bizosaas_pooled = True
    outcomes = []
    for i, run in enumerate(runs, 1):
        started = time.perf_counter()
        result = job.execute_in_process(
            instance=instance,
            partition_key=run.partition_key,
            asset_selection=run.assets,
            raise_on_error=False,
            # The CLI prints one progress line per run; the full event log is in the UI.
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            tags={"bizosaas/launched_by": "cli", **run.tags},
        )
        seconds = time.perf_counter() - started
        error = None if result.success else failure_reason(result.all_events)
        outcomes.append(RunOutcome(run, result.success, seconds, result.run_id, error))
        status = "ok" if result.success else f"FAILED: {error}"
        progress(f"[{i}/{len(runs)}] {run.label} ... {status} ({seconds:.1f}s)")
    return outcomes


def failure_reason(events) -> str:
    """Why a run failed, as a person can act on it: the failing step and its own error (a
    Failure's description, a source's message), not Dagster's "Execution of step ... failed"."""
    failures = [e for e in events if e.is_failure]
    if not failures:
        return "run failed"
    event = next((e for e in failures if e.is_step_failure), failures[0])
    error = getattr(event.event_specific_data, "error", None)
    while error is not None and error.cause is not None:
        error = error.cause
    if error is None:
        return event.message or "run failed"
    line = next((ln.strip() for ln in error.message.splitlines() if ln.strip()), "")
    # "dagster._core.definitions.events.Failure: why" -> "why"; a bare class name stays.
    if error.cls_name:
        line = re.sub(rf"^[\w.]*\b{re.escape(error.cls_name)}: ", "", line)
    line = line or error.cls_name or "run failed"
    return f"{event.step_key}: {line}" if event.step_key else line
