"""Business Directory end to end on the real Postgres and Dagster instance, replaying the
recorded API answers in fixtures/ through the real clients."""

import json
from datetime import timedelta

import psycopg
import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, build_sensor_context, materialize
from psycopg.types.json import Jsonb

from assets import directory
from orchestration import tenants
from orchestration.api_limits import ApiLedger
from orchestration.directory_sources import LocationIQResource, NominatimResource, OverpassResource
from orchestration.warehouse import WarehouseResource, set_tenant
from sensors.directory import directory_cache_expiry_sensor

CACHE, MASTER = AssetKey("business_cache"), AssetKey("businesses_master")
EDGE_TENANT = "directory_edge"


def _resources(platform, **overrides):
    fast = {"backoff_s": 0.01}
    return {
        "warehouse": WarehouseResource(database_url=platform.writer_url),
        "nominatim": overrides.get("nominatim") or NominatimResource(min_interval_s=0, **fast),
        "locationiq": overrides.get("locationiq") or LocationIQResource(min_interval_s=0, **fast),
        "overpass": overrides.get("overpass") or OverpassResource(**fast),
    }


def _run(platform, instance, tenant, *, config=None, raise_on_error=False, **overrides):
    return materialize(
        [
            directory.business_cache,
            directory.businesses_master,
            directory.business_cache_listings_valid,
            directory.businesses_master_valid,
        ],
        partition_key=tenant,
        instance=instance,
        resources=_resources(platform, **overrides),
        run_config={"ops": {"business_cache": {"config": config}}} if config else None,
        raise_on_error=raise_on_error,
    )


def _set_searches(platform, tenant, searches, **extra):
    with platform.admin() as conn:
        conn.execute(
            """UPDATE core.tenants SET settings = jsonb_set(settings, '{directory}', %s, true)
                WHERE tenant_id = %s""",
            (Jsonb({"searches": [{"query": q, "location": loc} for q, loc in searches], **extra}), tenant),
        )


@pytest.fixture(scope="module")
def edge_tenant(platform, dagster_instance: DagsterInstance):
    with platform.admin() as conn:
        conn.execute(
            """INSERT INTO core.tenants (tenant_id, display_name, kind, parent_tenant_id, tier, domains)
               VALUES (%s, 'Directory edge cases', 'client', 'bizoholic', 'starter', '{directory}')
               ON CONFLICT (tenant_id) DO NOTHING""",
            (EDGE_TENANT,),
        )
    _set_searches(platform, EDGE_TENANT, [("tacos", "San Antonio, TX")])
    dagster_instance.add_dynamic_partitions(directory.directory_partitions.name, [EDGE_TENANT])
    yield EDGE_TENANT
    # Leave the registry as the seed made it, for the tests that compare against it.
    with platform.admin() as conn:
        tenants.offboard(conn, EDGE_TENANT)
    dagster_instance.delete_dynamic_partition(directory.directory_partitions.name, EDGE_TENANT)


def _query(platform, tenant, sql, params=()):
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, tenant)
        return conn.execute(sql, params).fetchall()


def _metadata(instance, key, tenant, first=False):
    """The latest (or, with `first`, the earliest) materialization's metadata."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[tenant]), limit=1, ascending=first
    ).records
    return {k: v.value for k, v in records[0].event_log_entry.asset_materialization.metadata.items()}


def test_demo_tenant_gets_a_merged_master_from_three_apis(platform, dagster_instance, materialized):
    tenant = "business_directory"
    cache = _query(
        platform,
        tenant,
        """SELECT search_query, result_count, api_sources, api_calls, attribution, expires_at - fetched_at
             FROM core.business_cache ORDER BY 1""",
    )
    by_query = {row[0]: row for row in cache}
    assert set(by_query) == {"coffee", "dentist", "restaurants"}
    # coffee: Nominatim found 2 (< 10), so LocationIQ was asked; restaurants/dentist did not need it
    assert by_query["coffee"][2] == ["locationiq", "nominatim", "overpass"]
    assert by_query["restaurants"][2] == ["nominatim", "overpass"]
    assert by_query["coffee"][1] == 8 and by_query["restaurants"][1] == 14 and by_query["dentist"][1] == 11
    # the recorded 429s and the 504 were retried: two attempts each
    assert by_query["coffee"][3] == {"nominatim": 2, "locationiq": 2, "overpass": 2}
    assert "Search by LocationIQ.com" in by_query["coffee"][4]
    assert by_query["dentist"][5] == timedelta(hours=168)

    # the session's first refresh of the tenant (the demo test may have refreshed it since)
    meta = _metadata(dagster_instance, CACHE, tenant, first=True)
    assert meta["cache_misses"] == 3 and meta["api_calls_overpass"] >= 3

    master = _query(
        platform,
        tenant,
        """SELECT name, osm_refs, sources, phone, website, opening_hours, category, status, attribution
             FROM core.businesses_master""",
    )
    names = [row[0] for row in master]
    # 14 + 8 + 11 objects, two planted duplicates merged (Torchy's node/building, Hyde Park Roasters)
    assert len(master) == 31
    torchys = [row for row in master if "node/4982270153" in row[1]]
    assert len(torchys) == 1 and "way/402117863" in torchys[0][1]
    hyde = [row for row in master if row[0] == "Hyde Park Roasters"]
    assert len(hyde) == 1 and set(hyde[0][2]) >= {"nominatim", "locationiq"}
    assert hyde[0][3] == "+15124583721"
    assert {"Café No Sé", "Güero's Taco Bar"} <= set(names)
    assert all(row[3] is None or row[3].startswith("+1") for row in master)
    assert all(row[4] is None or row[4].startswith("http") for row in master)
    assert all(row[7] == "active" and "OpenStreetMap contributors" in row[8] for row in master)
    assert {row[6] for row in master} >= {"food_and_drink", "health"}
    parsed = [row[5] for row in master if row[5]]
    assert parsed and any(hours["always_open"] for hours in parsed)

    history = _query(platform, tenant, "SELECT event, count(*) FROM core.businesses_history GROUP BY 1")
    assert dict(history) == {"appeared": 31}
    raw = _query(platform, tenant, "SELECT source, status FROM raw.directory_api_responses")
    assert ("nominatim", 429) in raw and ("overpass", 504) in raw and ("overpass", 429) in raw


def test_a_second_refresh_is_served_from_the_cache(platform, dagster_instance, materialized):
    tenant = "business_directory"
    before = _query(platform, tenant, "SELECT count(*) FROM raw.directory_api_responses")[0][0]
    result = _run(platform, dagster_instance, tenant)
    assert result.success
    meta = _metadata(dagster_instance, CACHE, tenant)
    assert meta["cache_hits"] == 3 and meta["cache_misses"] == 0 and meta["api_calls_total"] == 0
    assert meta["cache_hit_rate"] == 1.0
    after = _query(platform, tenant, "SELECT count(*) FROM raw.directory_api_responses")[0][0]
    assert after == before
    history = _query(platform, tenant, "SELECT count(*) FROM core.businesses_history")[0][0]
    assert history == 31  # nothing changed, so nothing new in the history
    master_meta = _metadata(dagster_instance, MASTER, tenant)
    assert master_meta["businesses_active"] == 31 and master_meta["duplicates_merged"] == 2


def test_failures_are_recorded_clearly_and_lose_nothing(platform, dagster_instance, edge_tenant):
    assert _run(platform, dagster_instance, edge_tenant).success
    master_before = _query(
        platform, edge_tenant, "SELECT business_id, content_hash FROM core.businesses_master"
    )
    assert len(master_before) == 12

    _set_searches(
        platform,
        edge_tenant,
        [
            ("tacos", "San Antonio, TX"),
            ("bakery", "Reykjavík, Iceland"),
            ("pharmacy", "Austin, TX"),
            ("florist", "Austin, TX"),
            ("bar", "Austin, TX"),
        ],
    )
    result = _run(platform, dagster_instance, edge_tenant)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.error.message
    assert "3 of 4 searches could not be refreshed" in message
    assert "pharmacy in Austin, TX: overpass: Overpass runtime error: Query timed out" in message
    assert "florist in Austin, TX: nominatim: malformed response body from nominatim" in message
    assert "bar in Austin, TX: nominatim: HTTP 429 (gave up after 4 attempts" in message

    cache = dict(_query(platform, edge_tenant, "SELECT search_query, result_count FROM core.business_cache"))
    # the empty answer is a valid, cached result; the failed searches left no entry behind
    assert cache == {"tacos": 12, "bakery": 0}
    raw = _query(
        platform,
        edge_tenant,
        "SELECT search_query, source, status, count(*) FROM raw.directory_api_responses GROUP BY 1, 2, 3",
    )
    counts = {(q, s, st): n for q, s, st, n in raw}
    assert counts[("bar", "nominatim", 429)] == 4
    assert counts[("pharmacy", "overpass", 200)] == 4  # every remark answer kept as evidence
    assert counts[("bakery", "locationiq", 404)] == 1
    # the master was not rebuilt from a half-refreshed cache, and keeps its rows
    master_after = _query(
        platform, edge_tenant, "SELECT business_id, content_hash FROM core.businesses_master"
    )
    assert sorted(master_after) == sorted(master_before)


def test_businesses_that_vanish_are_kept_as_missing_and_can_reappear(platform, dagster_instance, edge_tenant):
    _set_searches(platform, edge_tenant, [("tacos", "San Antonio, TX"), ("bakery", "Reykjavík, Iceland")])
    assert _run(platform, dagster_instance, edge_tenant).success
    _set_searches(platform, edge_tenant, [("bakery", "Reykjavík, Iceland")])
    assert _run(platform, dagster_instance, edge_tenant).success
    status = _query(platform, edge_tenant, "SELECT status, count(*) FROM core.businesses_master GROUP BY 1")
    assert dict(status) == {"missing": 12}
    _set_searches(platform, edge_tenant, [("tacos", "San Antonio, TX")])
    assert _run(platform, dagster_instance, edge_tenant).success
    # the tacos entry was still fresh: added back, it is served from the cache
    assert _metadata(dagster_instance, CACHE, edge_tenant)["cache_hits"] == 1
    events = dict(
        _query(platform, edge_tenant, "SELECT event, count(*) FROM core.businesses_history GROUP BY 1")
    )
    assert events == {"appeared": 12, "disappeared": 12, "reappeared": 12}
    first_seen = _query(
        platform, edge_tenant, "SELECT count(DISTINCT first_seen) FROM core.businesses_master"
    )
    assert first_seen[0][0] == 1  # first_seen survives the gap


def test_reparse_rebuilds_entries_from_raw_answers_without_api_calls(platform, dagster_instance, edge_tenant):
    _set_searches(platform, edge_tenant, [("tacos", "San Antonio, TX")])
    assert _run(platform, dagster_instance, edge_tenant).success
    tacos = "FROM core.business_cache WHERE search_query = 'tacos'"
    good = _query(platform, edge_tenant, f"SELECT results, fetched_at {tacos}")[0]
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, edge_tenant)  # what an old, buggy parser might have left behind
        conn.execute(
            "UPDATE core.business_cache SET results = '[]', result_count = 0 WHERE search_query = 'tacos'"
        )
    raw_before = _query(platform, edge_tenant, "SELECT count(*) FROM raw.directory_api_responses")[0][0]
    assert _run(platform, dagster_instance, edge_tenant, config={"reparse": True}).success
    rebuilt = _query(platform, edge_tenant, f"SELECT results, fetched_at, result_count {tacos}")[0]
    assert rebuilt[0] == good[0] and rebuilt[1] == good[1] and rebuilt[2] == 12
    assert (
        _query(platform, edge_tenant, "SELECT count(*) FROM raw.directory_api_responses")[0][0] == raw_before
    )


def test_blocking_check_keeps_bad_listings_out_of_the_master(platform, dagster_instance, edge_tenant):
    _set_searches(platform, edge_tenant, [("tacos", "San Antonio, TX")])
    assert _run(platform, dagster_instance, edge_tenant).success
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, edge_tenant)
        tacos = "FROM core.business_cache WHERE search_query = 'tacos'"
        results = conn.execute(f"SELECT results {tacos}").fetchone()[0]
        results[0]["lat"] = 123.4
        results[1]["name"] = ""
        conn.execute(
            "UPDATE core.business_cache SET results = %s WHERE search_query = 'tacos'", (Jsonb(results),)
        )
    master_before = _query(platform, edge_tenant, "SELECT business_id, lat FROM core.businesses_master")
    result = _run(platform, dagster_instance, edge_tenant)
    assert not result.success
    checks = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    cache_check = next(
        e for e in checks if e.event_specific_data.check_name == "business_cache_listings_valid"
    )
    assert not cache_check.event_specific_data.passed
    failed = cache_check.event_specific_data.metadata["failed_expectations"].value
    assert any("lat" in name for name in failed) and any("name" in name for name in failed)
    assert sorted(
        _query(platform, edge_tenant, "SELECT business_id, lat FROM core.businesses_master")
    ) == sorted(master_before)
    # a fresh fetch repairs the cache
    assert _run(platform, dagster_instance, edge_tenant, config={"force_refresh": True}).success


def test_locationiq_budget_is_never_exceeded(platform, dagster_instance, edge_tenant):
    ledger = ApiLedger(WarehouseResource(database_url=platform.writer_url))
    used = ledger.used_today("locationiq")
    _set_searches(platform, edge_tenant, [("bakery", "Reykjavík, Iceland")])
    spent = LocationIQResource(min_interval_s=0, daily_limit=used, backoff_s=0.01)
    result = _run(platform, dagster_instance, edge_tenant, config={"force_refresh": True}, locationiq=spent)
    assert result.success
    meta = _metadata(dagster_instance, CACHE, edge_tenant)
    assert "daily budget of" in meta["fallback_skipped"] and meta["api_calls_locationiq"] == 0
    assert ledger.used_today("locationiq") == used


def test_expiry_sensor_requests_only_tenants_with_due_entries(platform, dagster_instance, edge_tenant):
    _set_searches(platform, edge_tenant, [("tacos", "San Antonio, TX")])
    assert _run(platform, dagster_instance, edge_tenant).success
    warehouse = WarehouseResource(database_url=platform.writer_url)

    def evaluate():
        context = build_sensor_context(instance=dagster_instance, resources={"warehouse": warehouse})
        result = directory_cache_expiry_sensor(context)
        return {r.partition_key for r in getattr(result, "run_requests", None) or []}

    assert EDGE_TENANT not in evaluate()
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, edge_tenant)
        conn.execute("UPDATE core.business_cache SET expires_at = now() - interval '1 minute'")
    assert EDGE_TENANT in evaluate()
    _set_searches(platform, edge_tenant, [("tacos", "San Antonio, TX")])


def test_tenants_never_see_each_others_cache(platform, materialized, edge_tenant):
    rows = _query(platform, edge_tenant, "SELECT DISTINCT tenant_id FROM core.business_cache")
    assert rows in ([], [(EDGE_TENANT,)])
    with psycopg.connect(platform.serving_url) as conn, conn.transaction():
        set_tenant(conn, "thrillring")
        assert conn.execute("SELECT count(*) FROM core.businesses_master").fetchone()[0] == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM core.business_cache")


def test_snapshots_are_json(platform, materialized):
    rows = _query(platform, "business_directory", "SELECT snapshot FROM core.businesses_history LIMIT 1")
    assert json.dumps(rows[0][0]) and rows[0][0]["status"] == "active"
