"""Retention: old runs and raw answers go; what the UI's partition status, the marts, the core
tables and a parser replay need stays."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from dagster import AssetKey, DagsterRun, DagsterRunStatus
from sqlalchemy import text

from assets import tenancy
from orchestration.definitions import defs
from orchestration.errors import PlatformError
from orchestration.retention import RAW_TABLES, protected_run_ids, prune_raw, prune_runs, raw_tables_size
from orchestration.warehouse import WarehouseResource

pytestmark = pytest.mark.integration

PROFILE = AssetKey("tenant_profile")


def _run(instance, assets, partition, config=None):
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance,
        partition_key=partition,
        asset_selection=assets,
        run_config={"ops": config} if config else None,
        raise_on_error=False,
    )
    assert result.success
    return result


def _age_runs(instance, run_ids, days):
    with instance.run_storage.connect() as conn:
        conn.execute(
            text("UPDATE runs SET create_timestamp = :t, update_timestamp = :t WHERE run_id = ANY(:ids)"),
            {"t": datetime.now(UTC).replace(tzinfo=None) - timedelta(days=days), "ids": list(run_ids)},
        )


def _status(instance):
    pdef = tenancy.tenant_profile.partitions_def
    keys = pdef.get_partition_keys(dynamic_partitions_store=instance)
    return instance.get_status_by_partition(PROFILE, keys, pdef), instance.get_materialized_partitions(
        PROFILE
    )


def test_old_runs_go_except_those_holding_latest_partition_events(dagster_instance, materialized):
    instance = dagster_instance
    runs = [_run(instance, [PROFILE], "coreldove").run_id for _ in range(3)]
    running = DagsterRun(job_name="__ASSET_JOB", status=DagsterRunStatus.STARTED)  # still in progress
    instance.add_run(running)
    _age_runs(instance, [*runs, running.run_id], days=40)
    status_before = _status(instance)
    fresh = instance.get_run_ids(limit=5)

    dry = prune_runs(instance, 30, dry_run=True)
    assert dry.candidates == 3 and dry.kept == [runs[-1]] and not dry.deleted
    assert all(instance.get_run_by_id(r) for r in runs)

    result = prune_runs(instance, 30)
    assert sorted(result.deleted) == sorted(runs[:2]) and result.kept == [runs[-1]]
    for gone in runs[:2]:
        assert instance.get_run_by_id(gone) is None and not instance.all_logs(gone)
    assert instance.get_run_by_id(runs[-1]) and instance.all_logs(runs[-1])
    assert instance.get_run_by_id(running.run_id).status == DagsterRunStatus.STARTED
    assert all(instance.get_run_by_id(r) for r in fresh if r not in runs)  # younger than the cutoff
    assert _status(instance) == status_before
    latest = instance.get_latest_materialization_event(PROFILE)
    assert latest is not None and instance.get_run_by_id(latest.run_id)
    instance.delete_run(running.run_id)


def test_every_latest_check_evaluation_holds_its_run(dagster_instance, materialized):
    protected = protected_run_ids(dagster_instance)
    with dagster_instance.event_log_storage.index_connection() as conn:
        latest = conn.execute(
            text(
                """SELECT DISTINCT ON (asset_key, check_name, partition) run_id FROM asset_check_executions
                    ORDER BY asset_key, check_name, partition, id DESC"""
            )
        ).fetchall()
    assert latest and {r[0] for r in latest} <= protected


def test_retention_days_are_checked(dagster_instance, platform):
    with pytest.raises(PlatformError, match="at least 1 day"):
        prune_runs(dagster_instance, 0)
    with pytest.raises(PlatformError, match="at least 1 day"):
        prune_raw(WarehouseResource(database_url=platform.writer_url), 0)


def _fingerprints(conn) -> dict[str, str]:
    """A content hash of every core table and mart (what analysts and the API read)."""
    tables = conn.execute(
        """SELECT schemaname || '.' || relname FROM pg_stat_user_tables
            WHERE schemaname IN ('core', 'marts') ORDER BY 1"""
    ).fetchall()
    return {
        name: conn.execute(
            f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {name} t"
        ).fetchone()[0]
        for (name,) in tables
    }


def _of_tenants(status: str) -> str:
    return f"tenant_id IN (SELECT tenant_id FROM core.tenants WHERE status = '{status}')"


def _counts(conn, status: str = "active") -> dict[str, int]:
    """Raw answers per table of the tenants with this status."""
    return {
        t.name: conn.execute(f"SELECT count(*) FROM {t.name} WHERE {_of_tenants(status)}").fetchone()[0]
        for t in RAW_TABLES
    }


def _vacuum_full(conn) -> None:
    for table in RAW_TABLES:
        conn.execute(f"VACUUM FULL {table.name}")


def _copy_aged(conn, table: str, days: int) -> None:
    """Older answers to the same requests, from a run that no longer wrote anything current."""
    cols = [
        r[0]
        for r in conn.execute(
            """SELECT column_name FROM information_schema.columns
                WHERE table_schema || '.' || table_name = %s
                  AND column_name NOT IN ('response_id', 'fetched_at', 'dagster_run_id')
                ORDER BY ordinal_position""",
            (table,),
        )
    ]
    names = ", ".join(cols)
    conn.execute(
        f"""INSERT INTO {table} ({names}, fetched_at, dagster_run_id)
            SELECT {names}, fetched_at - make_interval(days => %s), 'pruned-' || dagster_run_id
              FROM {table}""",
        (days,),
    )


def test_raw_answers_pruned_but_marts_core_and_reparse_intact(platform, dagster_instance, materialized):
    warehouse = WarehouseResource(database_url=platform.writer_url)
    with psycopg.connect(platform.admin_url, autocommit=True) as conn:
        originals = _counts(conn)
        for table in RAW_TABLES:
            _copy_aged(conn, table.name, 200)
        before = _fingerprints(conn)
        # Tenants offboarded by earlier tests (the edge-case tenants) keep their data, raw included.
        offboarded = _counts(conn, "offboarded")
        _vacuum_full(conn)
        size_before = raw_tables_size(conn)

    # 1. Old copies go; every answer younger than the cutoff stays.
    dry = prune_raw(warehouse, 90, dry_run=True)
    assert dry.deleted == originals
    result = prune_raw(warehouse, 90)
    assert result.deleted == originals
    with psycopg.connect(platform.admin_url, autocommit=True) as conn:
        assert _counts(conn) == originals
        # 2. Everything is old now: only each request's newest success and reparse inputs stay.
        for table in RAW_TABLES:
            conn.execute(f"UPDATE {table.name} SET fetched_at = fetched_at - interval '120 days'")
    prune_raw(warehouse, 90)
    with psycopg.connect(platform.admin_url, autocommit=True) as conn:
        assert _fingerprints(conn) == before
        assert _counts(conn, "offboarded") == offboarded
        _vacuum_full(conn)  # a DELETE leaves the space for new rows; VACUUM FULL returns it
        size_after = raw_tables_size(conn)
        print(f"raw tables: {size_before} -> {size_after} bytes; rows {originals} -> {_counts(conn)}")
        for table in RAW_TABLES:
            key = ", ".join(table.request_key)
            kept = f"FROM {table.name} WHERE status = 200 AND {_of_tenants('active')}"
            requests = conn.execute(f"SELECT count(*) FROM (SELECT DISTINCT tenant_id, {key} {kept}) k")
            assert requests.fetchone()[0] == conn.execute(f"SELECT count(*) {kept}").fetchone()[0]
        cache = "SELECT search_query, results, fetched_at, result_count FROM core.business_cache ORDER BY 1"
        catalogue = """SELECT igdb_id, content_hash, final_price, review_score, critic_score, first_seen
                         FROM core.gaming_catalogue WHERE tenant_id = 'thrillring' ORDER BY 1"""
        good = conn.execute(cache).fetchall(), conn.execute(catalogue).fetchall()
    assert size_after < size_before

    # 3. A parser replay still finds every answer it reads.
    _run(dagster_instance, [AssetKey("business_cache")], "business_directory",
         {"business_cache": {"config": {"reparse": True}}})  # fmt: skip
    replay = _run(dagster_instance, [AssetKey("game_catalogue")], "thrillring",
                  {"game_catalogue": {"config": {"reparse": True}}})  # fmt: skip
    meta = replay.asset_materializations_for_node("game_catalogue")[0].metadata
    assert meta["api_calls_total"].value == 0
    with psycopg.connect(platform.admin_url, autocommit=True) as conn:
        assert (conn.execute(cache).fetchall(), conn.execute(catalogue).fetchall()) == good
