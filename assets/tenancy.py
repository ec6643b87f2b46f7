"""Platform-wide tenant assets: the tenant profile, materialized for every active tenant.

It is the smallest real path through the platform (registry -> sensor -> partition ->
materialization -> RLS-protected table), and the row the serving layer shows a tenant
about itself.
"""

from datetime import UTC, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from orchestration.metadata import preview_table
from orchestration.partitions import tenant_partitions
from orchestration.quality import skipped_check
from orchestration.warehouse import WarehouseResource

TENANT_PROFILE_TABLE = "core.tenant_profile"


@asset(
    partitions_def=tenant_partitions(),
    group_name="tenancy",
    kinds={"postgres"},
    description="One row per tenant: who it is, what it subscribes to, whose data it may read.",
    metadata={"table": TENANT_PROFILE_TABLE},
    deps=["tenant_registry"],
)
def tenant_profile(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    tenant_id = context.partition_key
    # Read through RLS as the tenant itself: what it can see is exactly what it may read.
    rows = warehouse.query(
        tenant_id,
        """SELECT t.tenant_id, t.display_name, t.kind, t.tier, t.parent_tenant_id, t.domains,
                  t.status, core.readable_tenants() AS readable_tenants,
                  ARRAY(SELECT jsonb_object_keys(t.settings) ORDER BY 1) AS settings_keys
             FROM core.tenants t WHERE t.tenant_id = %s""",
        (tenant_id,),
    )
    if not rows:
        raise Failure(f"tenant {tenant_id!r} is not in the registry; was it removed by hand?")
    tenant = rows[0]
    if tenant["status"] != "active":
        raise Failure(f"tenant {tenant_id!r} is offboarded; its partitions are being removed")
    profile = {
        "tenant_id": tenant_id,
        "display_name": tenant["display_name"],
        "kind": tenant["kind"],
        "tier": tenant["tier"],
        "parent_tenant_id": tenant["parent_tenant_id"],
        "domains": list(tenant["domains"]),
        "readable_tenants": sorted(tenant["readable_tenants"]),
        "settings_keys": list(tenant["settings_keys"]),
        "materialized_at": datetime.now(UTC),
        "dagster_run_id": context.run.run_id,
    }
    written = warehouse.replace_partition(
        tenant_id, TENANT_PROFILE_TABLE, [profile], run_id=context.run.run_id
    )
    return MaterializeResult(
        metadata={
            "dagster/row_count": MetadataValue.int(written),
            "domains": MetadataValue.text(", ".join(profile["domains"]) or "(none)"),
            "readable_tenants": MetadataValue.int(len(profile["readable_tenants"])),
            "preview": preview_table([profile]),
        }
    )


@asset_check(
    asset=tenant_profile,
    blocking=True,
    description="The profile row exists and its domains match the registry.",
)
def tenant_profile_matches_registry(context, warehouse: WarehouseResource) -> AssetCheckResult:
    tenant_id = context.partition_key if context.has_partition_key else None
    if tenant_id is None:
        return skipped_check()
    rows = warehouse.query(
        tenant_id,
        """SELECT p.domains AS profile_domains, t.domains AS registry_domains
             FROM core.tenants t LEFT JOIN core.tenant_profile p USING (tenant_id)
            WHERE t.tenant_id = %s""",
        (tenant_id,),
    )
    if not rows or rows[0]["profile_domains"] is None:
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=f"no profile row for {tenant_id}",
        )
    profile, registry = sorted(rows[0]["profile_domains"]), sorted(rows[0]["registry_domains"])
    return AssetCheckResult(
        passed=profile == registry,
        severity=AssetCheckSeverity.ERROR,
        metadata={"profile_domains": ", ".join(profile), "registry_domains": ", ".join(registry)},
    )
