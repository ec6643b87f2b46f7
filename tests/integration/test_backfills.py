"""Backfill policies: each daily asset's policy, and a price-snapshot run over a range of days."""

import psycopg
import pytest
from dagster import AssetKey, materialize

from assets import gaming
from orchestration.definitions import defs
from orchestration.warehouse import WarehouseResource, set_tenant

pytestmark = pytest.mark.integration

DAYS = ["2026-11-20", "2026-11-21", "2026-11-22"]


def test_every_daily_asset_runs_ranges_or_bounded_batches():
    graph = defs.resolve_asset_graph()
    policies = {
        key.to_user_string(): graph.get(key).backfill_policy
        for key in graph.materializable_asset_keys
        if "date" in getattr(graph.get(key).partitions_def, "partition_dimension_names", [])
    }
    assert set(policies) == {"orders", "order_lines", "game_price_snapshots", "market_prices"}
    for single_run in ("orders", "order_lines", "market_prices"):  # one run per tenant for any range
        assert policies[single_run] is not None and policies[single_run].max_partitions_per_run is None
    assert policies["game_price_snapshots"].max_partitions_per_run == gaming.PRICE_DAYS_PER_RUN


def test_a_price_snapshot_run_over_days_writes_each_day(platform, dagster_instance, materialized):
    result = materialize(
        [gaming.game_price_snapshots],
        instance=dagster_instance,
        resources={
            "warehouse": WarehouseResource(database_url=platform.writer_url),
            "steam": defs.resources["steam"],
        },
        tags={
            "dagster/asset_partition_range_start": f"{DAYS[0]}|thrillring",
            "dagster/asset_partition_range_end": f"{DAYS[-1]}|thrillring",
        },
    )
    assert result.success
    events = result.asset_materializations_for_node("game_price_snapshots")
    assert sorted(e.partition for e in events) == [f"{d}|thrillring" for d in DAYS]
    assert events[0].metadata["days_in_run"].value == len(DAYS)
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, "thrillring")
        per_day = conn.execute(
            """SELECT snapshot_date::text, count(*), count(DISTINCT dagster_run_id)
                 FROM core.gaming_price_snapshots WHERE snapshot_date = ANY(%s::date[])
                GROUP BY 1 ORDER BY 1""",
            (DAYS,),
        ).fetchall()
        raw = conn.execute(
            """SELECT count(DISTINCT partition_key) FROM raw.gaming_api_responses
                WHERE dagster_run_id = %s AND asset = 'game_price_snapshots'""",
            (result.run_id,),
        ).fetchone()[0]
    assert [d for d, *_ in per_day] == DAYS and all(n > 0 and runs == 1 for _, n, runs in per_day)
    assert raw == len(DAYS)  # one stored answer set per day, under that day's partition key
    assert dagster_instance.get_latest_materialization_event(AssetKey("game_price_snapshots"))
