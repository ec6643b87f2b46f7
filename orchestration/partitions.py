"""Tenant partitions: how every domain declares them, and how they follow the registry.

Each domain gets its own dynamic partitions definition (`tenant_directory`, `tenant_gaming`,
...) holding only the active tenants that subscribe to it, so a tenant never sees partitions
(or runs, or backfill rows) for domains it does not buy. Platform-wide assets use `tenant`,
which holds every active tenant. Time-based data adds a daily dimension; the tenant dimension
is always named `tenant`, which makes Dagster tag runs with `dagster/partition/tenant` and
lets the run queue limit concurrency per tenant.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache

from dagster import (
    AddDynamicPartitionsRequest,
    DailyPartitionsDefinition,
    DeleteDynamicPartitionsRequest,
    DynamicPartitionsDefinition,
    MultiPartitionsDefinition,
)

from orchestration.settings import replay_date
from orchestration.tenants import DOMAINS
from orchestration.warehouse import TenantRecord

ALL_TENANTS = "tenant"
TENANT_DIMENSION = "tenant"
DATE_DIMENSION = "date"
# The run tag naming a run's one tenant where no partition tag does (runs over a range of days).
TENANT_TAG = "bizosaas/tenant"


def partitions_def_name(domain: str | None) -> str:
    if domain is None:
        return ALL_TENANTS
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; choose from {', '.join(DOMAINS)}")
    return f"{ALL_TENANTS}_{domain}"


@cache
def tenant_partitions(domain: str | None = None) -> DynamicPartitionsDefinition:
    """Tenants as partitions: all active tenants, or those subscribing to `domain`."""
    return DynamicPartitionsDefinition(name=partitions_def_name(domain))


@cache
def tenant_daily_partitions(domain: str, start_date: str) -> MultiPartitionsDefinition:
    """Tenant x day, for data that arrives per day (orders, prices, campaign stats).

    In replay mode the days end at the replay date, so the latest day is one the fixtures
    cover (see `settings.replay_date`)."""
    days = DailyPartitionsDefinition(start_date=start_date, end_date=replay_date(), timezone="UTC")
    return MultiPartitionsDefinition({TENANT_DIMENSION: tenant_partitions(domain), DATE_DIMENSION: days})


def run_partitions(context) -> dict[str, list[date]]:
    """The (tenant -> days) of a run over tenant x day partitions: one partition, or a range (one
    run for many days); {} for a run without partitions."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return {}
    by_tenant: dict[str, list[date]] = defaultdict(list)
    for key in context.partition_keys:
        dims = key.keys_by_dimension
        by_tenant[dims[TENANT_DIMENSION]].append(date.fromisoformat(dims[DATE_DIMENSION]))
    return {tenant: sorted(days) for tenant, days in sorted(by_tenant.items())}


def all_partitions_def_names() -> list[str]:
    return [partitions_def_name(None), *(partitions_def_name(d) for d in DOMAINS)]


def desired_partitions(registry: Iterable[TenantRecord]) -> dict[str, set[str]]:
    desired: dict[str, set[str]] = {name: set() for name in all_partitions_def_names()}
    for tenant in registry:
        if not tenant.active:
            continue
        desired[ALL_TENANTS].add(tenant.tenant_id)
        for domain in tenant.domains:
            desired[partitions_def_name(domain)].add(tenant.tenant_id)
    return desired


@dataclass
class PartitionSyncPlan:
    additions: dict[str, list[str]] = field(default_factory=dict)
    deletions: dict[str, list[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.additions and not self.deletions

    def requests(self) -> list[AddDynamicPartitionsRequest | DeleteDynamicPartitionsRequest]:
        return [
            *(AddDynamicPartitionsRequest(name, keys) for name, keys in self.additions.items()),
            *(DeleteDynamicPartitionsRequest(name, keys) for name, keys in self.deletions.items()),
        ]

    def apply(self, instance) -> None:
        """Apply directly to a Dagster instance (the CLI's path; sensors return requests)."""
        for name, keys in self.additions.items():
            instance.add_dynamic_partitions(name, keys)
        for name, keys in self.deletions.items():
            for key in keys:
                instance.delete_dynamic_partition(name, key)

    def summary(self) -> str:
        parts = [f"+{len(k)} {n}" for n, k in self.additions.items()]
        parts += [f"-{len(k)} {n}" for n, k in self.deletions.items()]
        return ", ".join(parts) or "in sync"


def plan_partition_sync(
    registry: Iterable[TenantRecord], current: Mapping[str, Sequence[str]]
) -> PartitionSyncPlan:
    """What to add and delete so each partitions definition holds exactly its tenants."""
    plan = PartitionSyncPlan()
    for name, wanted in desired_partitions(registry).items():
        have = set(current.get(name, ()))
        if add := sorted(wanted - have):
            plan.additions[name] = add
        if remove := sorted(have - wanted):
            plan.deletions[name] = remove
    return plan


def current_partitions(instance) -> dict[str, list[str]]:
    return {name: instance.get_dynamic_partitions(name) for name in all_partitions_def_names()}
