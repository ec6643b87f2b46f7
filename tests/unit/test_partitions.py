from datetime import UTC, datetime

import pytest
from dagster import AddDynamicPartitionsRequest, DeleteDynamicPartitionsRequest

from orchestration.partitions import (
    plan_partition_sync,
    tenant_daily_partitions,
    tenant_partitions,
)
from orchestration.warehouse import TenantRecord

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def tenant(tid, domains, status="active"):
    return TenantRecord(tid, "client", "bizoholic", "starter", tuple(domains), status, NOW)


def test_tenants_get_partitions_only_for_their_domains():
    plan = plan_partition_sync([tenant("alpha", ["gaming"]), tenant("beta", ["crm", "gaming"])], current={})
    assert plan.additions["tenant"] == ["alpha", "beta"]
    assert plan.additions["tenant_gaming"] == ["alpha", "beta"]
    assert plan.additions["tenant_crm"] == ["beta"]
    assert "tenant_directory" not in plan.additions
    assert not plan.deletions


def test_offboarded_tenant_and_dropped_domain_are_removed():
    current = {"tenant": ["alpha", "beta"], "tenant_gaming": ["alpha", "beta"], "tenant_crm": ["beta"]}
    plan = plan_partition_sync(
        [tenant("alpha", ["gaming"], status="offboarded"), tenant("beta", ["gaming"])], current
    )
    assert plan.deletions == {"tenant": ["alpha"], "tenant_gaming": ["alpha"], "tenant_crm": ["beta"]}
    assert not plan.additions
    kinds = {type(r) for r in plan.requests()}
    assert kinds == {DeleteDynamicPartitionsRequest}


def test_in_sync_registry_plans_nothing():
    registry = [tenant("alpha", ["trading"])]
    current = {"tenant": ["alpha"], "tenant_trading": ["alpha"]}
    plan = plan_partition_sync(registry, current)
    assert plan.empty and plan.summary() == "in sync"
    added = plan_partition_sync(registry, {}).requests()
    assert all(isinstance(r, AddDynamicPartitionsRequest) for r in added)


def test_partition_helpers_share_definitions_and_name_the_tenant_dimension():
    assert tenant_partitions("gaming") is tenant_partitions("gaming")
    assert tenant_partitions().name == "tenant"
    daily = tenant_daily_partitions("ecommerce", "2026-01-01")
    assert {d.name for d in daily.partitions_defs} == {"tenant", "date"}
    with pytest.raises(ValueError, match="unknown domain"):
        tenant_partitions("casino")


def test_replay_mode_ends_daily_partitions_at_the_replay_date(monkeypatch):
    monkeypatch.setenv("BIZOSAAS_SOURCE_MODE", "replay")
    monkeypatch.setenv("BIZOSAAS_REPLAY_DATE", "2026-03-10")
    tenant_daily_partitions.cache_clear()
    try:
        days = {d.name: d for d in tenant_daily_partitions("ecommerce", "2026-03-01").partitions_defs}
        keys = days["date"].partitions_def.get_partition_keys()
        assert keys[0] == "2026-03-01" and keys[-1] == "2026-03-09"
        monkeypatch.setenv("BIZOSAAS_SOURCE_MODE", "live")
        tenant_daily_partitions.cache_clear()
        days = {d.name: d for d in tenant_daily_partitions("ecommerce", "2026-03-01").partitions_defs}
        assert len(days["date"].partitions_def.get_partition_keys()) > 9
    finally:
        tenant_daily_partitions.cache_clear()
