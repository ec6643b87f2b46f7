"""The partition budget: tenants x days per asset against Dagster's ~100k-per-asset guidance.

A tenant x day asset has (tenants subscribing to its domain) x (days since its history start)
partitions; past ~100k Dagster's partition pages, backfill dialogs and status queries slow down.
The platform acts before that: onboarding (the CLI and the tenant sensor) warns once an asset
passes the warn share (80 %) and refuses a tenant that would take any asset over the budget.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from orchestration.errors import PlatformError
from orchestration.settings import ENV_PARTITION_BUDGET, ENV_PARTITION_WARN_SHARE

DEFAULT_BUDGET = 100_000
DEFAULT_WARN_SHARE = 0.8
ALL_TENANTS = "tenant"  # orchestration.partitions.ALL_TENANTS (not imported: that pulls in Dagster)


class PartitionBudgetError(PlatformError):
    """Onboarding would take an asset over the partition budget."""


@dataclass(frozen=True)
class PartitionedAsset:
    asset: str
    partitions_def: str  # the tenant dimension's partitions (tenant, tenant_trading, ...)
    days: int  # days of its date dimension; 1 for a tenant-only asset


@dataclass(frozen=True)
class BudgetRow:
    asset: str
    partitions_def: str
    days: int
    tenants: int
    budget: int

    @property
    def partitions(self) -> int:
        return self.tenants * self.days

    @property
    def max_tenants(self) -> int:
        """The most tenants the asset can hold within the budget."""
        return self.budget // self.days

    @property
    def share(self) -> float:
        return self.partitions / self.budget


def budget_settings() -> tuple[int, float]:
    """(budget, warn share) from the environment, with the defaults."""
    raw_budget = os.environ.get(ENV_PARTITION_BUDGET) or str(DEFAULT_BUDGET)
    raw_share = os.environ.get(ENV_PARTITION_WARN_SHARE) or str(DEFAULT_WARN_SHARE)
    try:
        budget = int(raw_budget.replace("_", ""))
    except ValueError:
        budget = 0
    if budget < 1:
        raise PlatformError(
            f"{ENV_PARTITION_BUDGET} must be a whole number of at least 1, got {raw_budget!r}"
        )
    try:
        share = float(raw_share)
    except ValueError:
        share = -1.0
    if not 0 < share <= 1:
        raise PlatformError(f"{ENV_PARTITION_WARN_SHARE} must be a fraction in (0, 1], got {raw_share!r}")
    return budget, share


def partitions_def_name(domain: str | None) -> str:
    return ALL_TENANTS if domain is None else f"{ALL_TENANTS}_{domain}"


def tenant_counts(tenants: Iterable[tuple[str, Sequence[str]]]) -> dict[str, int]:
    """Active tenants per tenant partitions definition, from (tenant_id, domains) pairs."""
    counts: dict[str, int] = {}
    for _tenant_id, domains in tenants:
        for name in (ALL_TENANTS, *(partitions_def_name(d) for d in domains)):
            counts[name] = counts.get(name, 0) + 1
    return counts


def budget_rows(
    assets: Iterable[PartitionedAsset], counts: Mapping[str, int], budget: int
) -> list[BudgetRow]:
    """Per asset: tenants x days now, against the budget; fullest first."""
    rows = [
        BudgetRow(a.asset, a.partitions_def, a.days, counts.get(a.partitions_def, 0), budget) for a in assets
    ]
    return sorted(rows, key=lambda r: (-r.share, r.asset))


def what_to_do(row: BudgetRow) -> str:
    domain = row.partitions_def.removeprefix(f"{ALL_TENANTS}_")
    if row.days > 1:
        return (
            f"shorten the {domain} history start of {row.asset} ({row.days:,} days now; at most "
            f"{row.budget // max(row.tenants, 1):,} days for {max(row.tenants, 1)} tenants), or raise "
            f"{ENV_PARTITION_BUDGET} if the Dagster instance is sized for it"
        )
    return f"raise {ENV_PARTITION_BUDGET} if the Dagster instance is sized for more tenants"


def check_onboarding(
    assets: Sequence[PartitionedAsset],
    existing: Iterable[tuple[str, Sequence[str]]],
    new: Sequence[tuple[str, Sequence[str]]],
    budget: int,
    warn_share: float,
) -> list[str]:
    """Warnings for assets past `warn_share` of the budget once `new` tenants join `existing`
    (in order); a PartitionBudgetError naming the first tenant that would take an asset over."""
    tenants = list(existing)
    for tenant_id, domains in new:
        counts = tenant_counts([*tenants, (tenant_id, domains)])
        for row in budget_rows(assets, counts, budget):
            if row.partitions > budget and row.tenants > tenant_counts(tenants).get(row.partitions_def, 0):
                raise PartitionBudgetError(
                    f"tenant {tenant_id} would give {row.asset} {row.partitions:,} partitions "
                    f"({row.tenants} tenants x {row.days:,} days), over the budget of {budget:,} "
                    f"({row.max_tenants} tenants at most): {what_to_do(row)}; nothing was onboarded"
                )
        tenants.append((tenant_id, domains))
    return [
        f"{row.asset} is at {row.share:.0%} of the partition budget ({row.partitions:,} of {budget:,}: "
        f"{row.tenants} tenants x {row.days:,} days; {row.max_tenants} tenants at most)"
        for row in budget_rows(assets, tenant_counts(tenants), budget)
        if row.share >= warn_share
    ]


# --- the platform's assets (needs the Dagster definitions) -------------------------------------


def partitioned_assets(asset_graph) -> list[PartitionedAsset]:
    """Every asset partitioned by tenant, with the day count of its date dimension."""
    from dagster import DailyPartitionsDefinition, DynamicPartitionsDefinition, MultiPartitionsDefinition

    found = []
    for key in sorted(asset_graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        pdef = asset_graph.get(key).partitions_def
        if isinstance(pdef, DynamicPartitionsDefinition) and pdef.name:
            found.append(PartitionedAsset(key.to_user_string(), pdef.name, 1))
        elif isinstance(pdef, MultiPartitionsDefinition):
            dims = [d.partitions_def for d in pdef.partitions_defs]
            tenant = next((d for d in dims if isinstance(d, DynamicPartitionsDefinition)), None)
            daily = next((d for d in dims if isinstance(d, DailyPartitionsDefinition)), None)
            if tenant is not None and tenant.name and daily is not None:
                found.append(
                    PartitionedAsset(key.to_user_string(), tenant.name, len(daily.get_partition_keys()))
                )
    return found


def platform_assets() -> list[PartitionedAsset]:
    from orchestration.definitions import defs

    return partitioned_assets(defs.resolve_asset_graph())


def registry_tenants(conn) -> list[tuple[str, list[str]]]:
    """Active tenants and their domains (admin connection)."""
    return [
        (r[0], list(r[1]))
        for r in conn.execute(
            "SELECT tenant_id, domains FROM core.tenants WHERE status = 'active' ORDER BY 1"
        )
    ]


def guard_onboarding(conn, new, assets: Sequence[PartitionedAsset] | None = None) -> list[str]:
    """The budget check for TenantSpecs about to be onboarded: warnings, or PartitionBudgetError."""
    if not new:
        return []
    budget, share = budget_settings()
    assets = platform_assets() if assets is None else assets
    existing = [t for t in registry_tenants(conn) if t[0] not in {s.tenant_id for s in new}]
    return check_onboarding(assets, existing, [(s.tenant_id, s.domains) for s in new], budget, share)
