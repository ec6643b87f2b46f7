"""The tenant registry sensor keeps Dagster's partitions in step with core.tenants."""

import pytest
from dagster import (
    AddDynamicPartitionsRequest,
    DeleteDynamicPartitionsRequest,
    SensorResult,
    SkipReason,
    build_sensor_context,
)

from orchestration import tenants
from orchestration.warehouse import WarehouseResource
from sensors.tenants import tenant_registry_sensor


def tick(platform, instance, cursor):
    context = build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"warehouse": WarehouseResource(database_url=platform.writer_url)},
    )
    result = tenant_registry_sensor(context)
    if isinstance(result, SensorResult):
        for request in result.dynamic_partitions_requests or []:
            if isinstance(request, AddDynamicPartitionsRequest):
                instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
            else:
                for key in request.partition_keys:
                    instance.delete_dynamic_partition(request.partitions_def_name, key)
        return result, result.cursor
    return result, cursor


def changes(result, kind):
    return {
        (r.partitions_def_name, key)
        for r in result.dynamic_partitions_requests or []
        if isinstance(r, kind)
        for key in r.partition_keys
    }


@pytest.fixture
def probe(platform):
    tenant_id = "sensor_probe"
    yield tenant_id
    with platform.admin() as conn:
        conn.execute("DELETE FROM core.tenant_profile WHERE tenant_id = %s", (tenant_id,))
        conn.execute("DELETE FROM core.tenants WHERE tenant_id = %s", (tenant_id,))


def test_sensor_adds_and_removes_partitions_as_tenants_come_and_go(
    platform, dagster_instance, materialized, probe
):
    _, cursor = tick(platform, dagster_instance, None)
    settled, cursor = tick(platform, dagster_instance, cursor)
    assert isinstance(settled, SkipReason), "a second tick with nothing changed must do nothing"

    with platform.admin() as conn:
        tenants.add(
            conn, tenants.TenantSpec(probe, "Sensor Probe", parent="bizoholic", domains=("gaming", "crm"))
        )
    added, cursor = tick(platform, dagster_instance, cursor)
    assert changes(added, AddDynamicPartitionsRequest) == {
        ("tenant", probe),
        ("tenant_gaming", probe),
        ("tenant_crm", probe),
    }
    assert [r.partition_key for r in added.run_requests] == [probe]
    assert probe in dagster_instance.get_dynamic_partitions("tenant_gaming")
    assert probe not in dagster_instance.get_dynamic_partitions("tenant_directory")

    with platform.admin() as conn:
        tenants.offboard(conn, probe)
    removed, cursor = tick(platform, dagster_instance, cursor)
    assert changes(removed, DeleteDynamicPartitionsRequest) == {
        ("tenant", probe),
        ("tenant_gaming", probe),
        ("tenant_crm", probe),
    }
    assert not removed.run_requests, "an offboarded tenant gets no new runs"
    assert probe not in dagster_instance.get_dynamic_partitions("tenant")


def test_registry_edit_requests_a_profile_refresh_once(platform, dagster_instance, materialized):
    _, cursor = tick(platform, dagster_instance, None)
    with platform.admin() as conn:
        conn.execute(
            "UPDATE core.tenants SET tier = 'enterprise', updated_at = now() WHERE tenant_id = 'thrillring'"
        )
    try:
        edited, cursor = tick(platform, dagster_instance, cursor)
        assert [r.partition_key for r in edited.run_requests] == ["thrillring"]
        again, _ = tick(platform, dagster_instance, cursor)
        assert isinstance(again, SkipReason)
    finally:
        with platform.admin() as conn:
            conn.execute("UPDATE core.tenants SET tier = 'starter' WHERE tenant_id = 'thrillring'")
