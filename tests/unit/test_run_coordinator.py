"""Backfill runs over a range of days get their tenant's tag before they enter the queue."""

import pytest
from dagster import DagsterInstance, MultiPartitionKey
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.run_coordinator import SubmitRunContext
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

from orchestration.partitions import DATE_DIMENSION, TENANT_DIMENSION, TENANT_TAG
from orchestration.run_coordinator import TenantTaggingRunCoordinator, range_tenant

START, END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
# Queued runs must name where their job lives; nothing here loads it.
ORIGIN = RemoteJobOrigin(
    RemoteRepositoryOrigin(GrpcServerCodeLocationOrigin(host="localhost", port=3030), "__repository__"),
    "__ASSET_JOB",
)


def key(tenant: str, day: str) -> str:
    return str(MultiPartitionKey({TENANT_DIMENSION: tenant, DATE_DIMENSION: day}))


@pytest.mark.parametrize(
    ("tags", "tenant"),
    [
        ({START: key("coreldove", "2024-11-26"), END: key("coreldove", "2026-11-25")}, "coreldove"),
        # A range across tenants has no one tenant to limit it by.
        ({START: key("coreldove", "2024-11-26"), END: key("thrillring", "2026-11-25")}, None),
        ({START: "coreldove", END: "thrillring"}, None),  # a range of tenant-only partitions
        ({START: key("coreldove", "2024-11-26")}, None),
        ({}, None),
    ],
)
def test_range_tenant(tags, tenant):
    assert range_tenant(tags) == tenant


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        yield instance


def submit(instance, tags: dict[str, str]) -> DagsterRun:
    coordinator = TenantTaggingRunCoordinator()
    coordinator.register_instance(instance)
    run = instance.add_run(
        DagsterRun(
            job_name="__ASSET_JOB", tags=tags, status=DagsterRunStatus.NOT_STARTED, remote_job_origin=ORIGIN
        )
    )
    returned = coordinator.submit_run(SubmitRunContext(run, workspace=None))
    stored = instance.get_run_by_id(run.run_id)
    assert stored.status == DagsterRunStatus.QUEUED
    assert returned.tags == stored.tags
    return stored


def test_a_one_tenant_range_run_is_queued_with_its_tenant(instance):
    tags = {START: key("coreldove", "2024-11-26"), END: key("coreldove", "2026-11-25")}
    assert submit(instance, tags).tags == {**tags, TENANT_TAG: "coreldove"}


def test_other_runs_are_queued_with_their_tags_untouched(instance):
    single = {"dagster/partition": "thrillring"}
    assert submit(instance, single).tags == single
    tagged = {START: key("coreldove", "2024-11-26"), END: key("coreldove", "2026-11-25"), TENANT_TAG: "x"}
    assert submit(instance, tagged).tags == tagged
