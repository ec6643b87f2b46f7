"""`bizosaas materialize --days N`: how a window of days is planned, on an ephemeral instance with
toy assets (no database). A daily asset that accepts ranges runs once per tenant over the window;
one that does not runs once per tenant and day; tenant-only assets are untouched by --days."""

import pytest
from dagster import (
    AssetKey,
    BackfillPolicy,
    DagsterInstance,
    Definitions,
    MaterializeResult,
    asset,
)

from orchestration.cli import build_parser
from orchestration.errors import PlatformError
from orchestration.materialize import HISTORY_TAG, plan_runs
from orchestration.partitions import tenant_daily_partitions, tenant_partitions

DAILY = tenant_daily_partitions("trading", "2026-11-01")


@asset(partitions_def=DAILY, backfill_policy=BackfillPolicy.single_run())
def ranged(context) -> MaterializeResult:
    return MaterializeResult()


@asset(partitions_def=DAILY, backfill_policy=BackfillPolicy.single_run(), tags={HISTORY_TAG: "full"})
def full_history(context) -> MaterializeResult:
    return MaterializeResult()


@asset(partitions_def=DAILY, tags={HISTORY_TAG: "full"})
def full_history_day_by_day(context) -> MaterializeResult:
    return MaterializeResult()


@asset(partitions_def=DAILY)
def one_day_at_a_time(context) -> MaterializeResult:
    return MaterializeResult()


@asset(
    partitions_def=tenant_daily_partitions("trading", "2026-11-01"),
    backfill_policy=BackfillPolicy.multi_run(2),
)
def two_days_per_run(context) -> MaterializeResult:
    return MaterializeResult()


@asset(partitions_def=tenant_partitions("trading"))
def per_tenant(context) -> MaterializeResult:
    return MaterializeResult()


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("tenant_trading", ["alpha", "beta"])
        yield instance


def plan(instance, select, days, tenant=None, extra=(full_history,)):
    defs = Definitions(assets=[ranged, one_day_at_a_time, two_days_per_run, per_tenant, *extra])
    return plan_runs(defs, instance, select, tenant, days)


def test_a_ranged_asset_runs_once_per_tenant_over_the_window(instance):
    runs = plan(instance, "key:ranged", 3)
    assert [r.label for r in runs] == [
        "ranged @ alpha, 2026-11-22..2026-11-24",
        "ranged @ beta, 2026-11-22..2026-11-24",
    ]
    tags = runs[0].tags
    assert tags["dagster/asset_partition_range_start"] == "2026-11-22|alpha"
    assert tags["dagster/asset_partition_range_end"] == "2026-11-24|alpha"
    assert all(r.partition_key is None for r in runs)


def test_other_daily_assets_run_once_per_tenant_and_day(instance):
    runs = plan(instance, "key:one_day_at_a_time", 2, tenant="beta")
    assert [r.partition_key for r in runs] == ["2026-11-23|beta", "2026-11-24|beta"]
    assert all(r.partition_range is None and r.tags == {} for r in runs)
    # a multi-run policy takes ranges only up to its maximum
    assert len(plan(instance, "key:two_days_per_run", 2, tenant="beta")) == 1
    assert len(plan(instance, "key:two_days_per_run", 3, tenant="beta")) == 3


def test_one_day_is_the_default_and_tenant_assets_ignore_days(instance):
    [latest] = plan(instance, "key:ranged", 1, tenant="alpha")
    assert latest.partition_key == "2026-11-24|alpha" and latest.partition_range is None  # replay's last day
    assert [r.partition_key for r in plan(instance, "key:per_tenant", 5)] == ["alpha", "beta"]
    window = plan(instance, "key:ranged", 400, tenant="alpha")  # longer than the partitions: all of them
    assert window[0].label == "ranged @ alpha, 2026-11-01..2026-11-24"
    with pytest.raises(PlatformError, match="at least 1"):
        plan(instance, "key:ranged", 0)
    assert {k for r in plan(instance, None, 2) for k in r.assets} >= {
        AssetKey("ranged"),
        AssetKey("per_tenant"),
    }


@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_days_must_be_a_positive_number(value, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["materialize", "--days", value])
    assert exited.value.code == 2 and "--days" in capsys.readouterr().err
    assert build_parser().parse_args(["materialize", "--days", "7"]).days == 7
    assert build_parser().parse_args(["materialize"]).days == 1
    assert build_parser().parse_args(["demo"]).days >= 7


def test_an_asset_tagged_for_its_full_history_builds_every_day_in_one_run_per_tenant(instance):
    runs = plan(instance, "key:full_history or key:ranged", 2)
    labels = sorted(r.label for r in runs)
    assert labels == [
        "full_history @ alpha, 2026-11-01..2026-11-24",
        "full_history @ beta, 2026-11-01..2026-11-24",
        "ranged @ alpha, 2026-11-23..2026-11-24",  # the same partitions, untagged: the window only
        "ranged @ beta, 2026-11-23..2026-11-24",
    ]
    # the default window (one day: the test fixture's, a manual materialize) too
    assert [r.label for r in plan(instance, "key:full_history", 1, tenant="beta")] == [
        "full_history @ beta, 2026-11-01..2026-11-24"
    ]
    # a full history one day at a time would be hundreds of runs: refused with the fix named
    with pytest.raises(PlatformError, match="single_run"):
        plan(instance, "key:full_history_day_by_day", 1, extra=(full_history_day_by_day,))
