"""Materialize assets for tenants on the configured Dagster instance, with progress.

Used by `bizosaas materialize` and `make demo`. Runs execute in this process but are recorded
in the instance's Postgres storage, so they show in the Dagster UI like any other run. Assets
are grouped by partitions definition and run in dependency order, one run per partition.
"""

from __future__ import annotations

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

from orchestration.errors import PlatformError
from orchestration.partitions import DATE_DIMENSION, TENANT_DIMENSION


@dataclass
class PlannedRun:
    assets: list[AssetKey]
    partition_key: str | None

    @property
    def label(self) -> str:
        names = ", ".join(k.to_user_string() for k in self.assets)
        return f"{names} @ {self.partition_key}" if self.partition_key else names


@dataclass
class RunOutcome:
    run: PlannedRun
    success: bool
    seconds: float
    run_id: str
    error: str | None = None


def _tenant_keys(
    partitions_def: PartitionsDefinition, instance: DagsterInstance, tenant: str | None
) -> list[str]:
    if isinstance(partitions_def, DynamicPartitionsDefinition):
        keys = instance.get_dynamic_partitions(partitions_def.name)
        return [k for k in keys if tenant is None or k == tenant]
    if isinstance(partitions_def, MultiPartitionsDefinition):
        dims = {d.name: d.partitions_def for d in partitions_def.partitions_defs}
        tenants = _tenant_keys(dims[TENANT_DIMENSION], instance, tenant)
        # The demo and a manual refresh build the latest complete day; backfills do history.
        days = dims[DATE_DIMENSION].get_partition_keys(dynamic_partitions_store=instance)
        if not days:
            return []
        return [MultiPartitionKey({TENANT_DIMENSION: t, DATE_DIMENSION: days[-1]}) for t in tenants]
    raise PlatformError(f"no tenant dimension in partitions definition {partitions_def}")


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
    defs: Definitions, instance: DagsterInstance, select: str | None, tenant: str | None
) -> list[PlannedRun]:
    graph = defs.resolve_asset_graph()
    selection = AssetSelection.from_string(select) if select else AssetSelection.all()
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
        runs += [PlannedRun(group_keys, key) for key in _tenant_keys(pdef, instance, tenant)]
    return runs


def execute(
    defs: Definitions,
    instance: DagsterInstance,
    runs: list[PlannedRun],
    progress: Callable[[str], None] = print,
) -> list[RunOutcome]:
    job = defs.resolve_implicit_global_asset_job_def()
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
            tags={"bizosaas/launched_by": "cli"},
        )
        seconds = time.perf_counter() - started
        error = None
        if not result.success:
            failures = [e for e in result.all_events if e.is_failure]
            error = failures[0].message if failures else "run failed"
        outcomes.append(RunOutcome(run, result.success, seconds, result.run_id, error))
        status = "ok" if result.success else f"FAILED: {error}"
        progress(f"[{i}/{len(runs)}] {run.label} ... {status} ({seconds:.1f}s)")
    return outcomes
