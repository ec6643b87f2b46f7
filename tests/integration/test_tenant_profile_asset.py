"""The tenant profile asset, materialized through the real Dagster instance and Postgres."""

import psycopg
from dagster import AssetKey

from orchestration.definitions import defs
from orchestration.materialize import execute, plan_runs
from orchestration.warehouse import set_tenant

PROFILE = AssetKey("tenant_profile")


def test_every_tenant_gets_a_profile_with_metadata(platform, dagster_instance, materialized):
    assert {o.run.partition_key for o in materialized} >= {
        "bizoholic",
        "coreldove",
        "business_directory",
        "thrillring",
        "quanttrade",
    }
    event = dagster_instance.get_latest_materialization_event(PROFILE)
    metadata = event.asset_materialization.metadata
    assert metadata["dagster/row_count"].value == 1
    assert "| tenant_id |" in metadata["preview"].value
    check_keys = list(defs.resolve_asset_graph().asset_check_keys)
    latest = dagster_instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
    assert check_keys and set(latest) == set(check_keys)
    failed = {
        key.to_user_string(): r.status.value for key, r in latest.items() if r.status.value != "SUCCEEDED"
    }
    assert not failed, failed

    with psycopg.connect(platform.serving_url) as conn, conn.transaction():
        set_tenant(conn, "bizoholic")
        master = conn.execute(
            "SELECT readable_tenants, domains FROM core.tenant_profile WHERE tenant_id = 'bizoholic'"
        ).fetchone()
    assert set(master[0]) == {"bizoholic", "coreldove", "business_directory", "thrillring", "quanttrade"}
    assert master[1] == ["crm"]


def test_rematerializing_a_tenant_replaces_its_row(platform, dagster_instance, materialized):
    with platform.admin() as conn:
        before = conn.execute("SELECT count(*), max(materialized_at) FROM core.tenant_profile").fetchone()
    outcomes = execute(
        defs,
        dagster_instance,
        plan_runs(defs, dagster_instance, "key:tenant_profile", "coreldove"),
        progress=lambda _: None,
    )
    assert [o.success for o in outcomes] == [True]
    with platform.admin() as conn:
        after = conn.execute("SELECT count(*), max(materialized_at) FROM core.tenant_profile").fetchone()
        run_id = conn.execute(
            "SELECT dagster_run_id FROM core.tenant_profile WHERE tenant_id = 'coreldove'"
        ).fetchone()[0]
    assert after[0] == before[0] and after[1] > before[1]
    assert run_id == outcomes[0].run_id
    assert dagster_instance.get_run_by_id(run_id).tags["dagster/partition"] == "coreldove"
