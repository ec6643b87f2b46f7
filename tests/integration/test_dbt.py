"""The dbt project against the real Postgres: builds, its tests catch a broken row, rebuilt
marts keep their row-level security, and marts follow their upstream assets."""

import json
import os
import subprocess

import psycopg
import pytest
from dagster import AssetKey, evaluate_automation_conditions

from orchestration.definitions import defs
from orchestration.materialize import execute, plan_runs
from orchestration.runtime import DBT_EXECUTABLE, DBT_PROJECT_DIR
from orchestration.warehouse import set_tenant

OVERVIEW = AssetKey(["marts", "tenant_overview"])


def dbt_build(target_path):
    proc = subprocess.run(
        [
            DBT_EXECUTABLE,
            "build",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target_path),
        ],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        cwd=DBT_PROJECT_DIR,
        timeout=600,
    )
    results = json.loads((target_path / "run_results.json").read_text())["results"]
    return proc.returncode, {r["unique_id"].split(".")[-1]: r["status"] for r in results}


def overview_oid(platform):
    with platform.admin() as conn:
        return conn.execute("SELECT 'marts.tenant_overview'::regclass::oid").fetchone()[0]


def test_dbt_models_and_tests_ran_as_dagster_assets_and_checks(platform, dagster_instance, materialized):
    dbt_runs = [o for o in materialized if OVERVIEW in o.run.assets]
    assert dbt_runs and dbt_runs[0].success
    keys = [k for k in defs.resolve_asset_graph().asset_check_keys if k.asset_key == OVERVIEW]
    names = {k.name for k in keys}
    assert {"assert_overview_row_counts_match_tables", "unique_tenant_overview_tenant_id"} <= names
    latest = dagster_instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    assert all(r.status.value == "SUCCEEDED" for r in latest.values())


def test_a_broken_row_fails_the_right_test_and_rebuilt_marts_stay_protected(platform, materialized, tmp_path):
    before = overview_oid(platform)
    with platform.admin() as conn:
        conn.execute(
            "UPDATE core.table_loads SET row_count = row_count + 6 "
            "WHERE tenant_id = 'coreldove' AND table_name = 'core.tenant_profile'"
        )
    try:
        code, statuses = dbt_build(tmp_path / "broken")
        assert code != 0
        failed = {name for name, status in statuses.items() if status in ("fail", "error")}
        assert failed == {"assert_overview_row_counts_match_tables"}
    finally:
        with platform.admin() as conn:
            conn.execute(
                "UPDATE core.table_loads SET row_count = row_count - 6 "
                "WHERE tenant_id = 'coreldove' AND table_name = 'core.tenant_profile'"
            )
    code, statuses = dbt_build(tmp_path / "fixed")
    assert code == 0 and set(statuses.values()) <= {"success", "pass"}

    assert overview_oid(platform) != before, "the mart was not rebuilt"
    with platform.admin() as conn:
        enabled, forced = conn.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
            "WHERE oid = 'marts.tenant_overview'::regclass"
        ).fetchone()
    assert enabled and forced
    with psycopg.connect(platform.serving_url) as conn:
        with conn.transaction():
            set_tenant(conn, "coreldove")
            assert conn.execute("SELECT tenant_id FROM marts.tenant_overview").fetchall() == [("coreldove",)]
        assert conn.execute("SELECT count(*) FROM marts.tenant_overview").fetchone()[0] == 0


@pytest.mark.parametrize(
    "view", ["staging.stg_tenants", "staging.stg_table_loads", "staging.stg_tenant_profile"]
)
def test_staging_views_run_with_the_callers_rights(platform, materialized, view):
    with platform.admin() as conn:
        options = conn.execute(
            "SELECT reloptions FROM pg_class WHERE oid = %s::regclass", (view,)
        ).fetchone()[0]
    assert "security_invoker=true" in options
    with psycopg.connect(platform.serving_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(f"SELECT * FROM {view}")


def test_marts_follow_their_upstream_assets(platform, dagster_instance, materialized):
    first = evaluate_automation_conditions(defs=defs, instance=dagster_instance)
    outcomes = execute(
        defs,
        dagster_instance,
        plan_runs(defs, dagster_instance, "key:tenant_profile", "thrillring"),
        progress=lambda _: None,
    )
    assert [o.success for o in outcomes] == [True]
    second = evaluate_automation_conditions(defs=defs, instance=dagster_instance, cursor=first.cursor)
    assert second.get_num_requested(OVERVIEW) == 1
    assert second.get_num_requested(AssetKey("tenant_profile")) == 0


def test_nightly_schedule_targets_every_dbt_model():
    schedule = defs.get_schedule_def("nightly_marts")
    assert schedule.cron_schedule == "0 3 * * *"
    keys = defs.resolve_job_def(schedule.job_name).asset_layer.selected_asset_keys
    assert OVERVIEW in keys and AssetKey(["staging", "stg_tenants"]) in keys
