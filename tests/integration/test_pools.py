"""Per-API pools: a rate-limited source is called by one step at a time across every tenant's runs,
enforced by the instance (dagster.yaml: concurrency.pools.default_limit 1) on the real Postgres
storage, whatever the run queue lets through."""

import threading
import time

import pytest
from dagster import AssetKey, DagsterInstance, StaticPartitionsDefinition, asset, materialize

from orchestration.definitions import defs

pytestmark = pytest.mark.integration

# The shared, rate-limited APIs and the assets that call them.
API_POOLS = {
    "business_cache": "nominatim",
    "game_catalogue": "igdb",
    "game_price_snapshots": "steam",
    "products": "saleor",
    "product_variants": "saleor",
    "orders": "saleor",
    "order_lines": "saleor",
    "market_prices": "market_data",
}


def _pool(name: str) -> str | None:
    return defs.resolve_asset_graph().get(AssetKey(name)).assets_def.op.pool


def test_every_asset_calling_a_shared_api_is_in_its_pool():
    assert {name: _pool(name) for name in API_POOLS} == API_POOLS


def test_a_pool_lets_one_step_call_its_api_at_a_time_across_tenants(platform, dagster_instance):
    pool = _pool("products")
    noisy, quiet = "coreldove", "thrillring"
    entered: dict[str, float] = {}
    left: dict[str, float] = {}
    release = threading.Event()
    succeeded: dict[str, bool] = {}

    @asset(name="pool_probe", pool=pool, partitions_def=StaticPartitionsDefinition([noisy, quiet]))
    def pool_probe(context):
        entered[context.partition_key] = time.monotonic()
        if context.partition_key == noisy:
            release.wait(60)  # a long call to the API, holding the pool's one slot
        left[context.partition_key] = time.monotonic()

    def run(tenant: str) -> None:
        with DagsterInstance.get() as instance:  # one instance per thread, as one per run process
            succeeded[tenant] = materialize([pool_probe], instance=instance, partition_key=tenant).success

    threads = {tenant: threading.Thread(target=run, args=(tenant,)) for tenant in (noisy, quiet)}
    threads[noisy].start()
    try:
        deadline = time.monotonic() + 60
        while noisy not in entered:
            assert time.monotonic() < deadline, "the first step never started"
            time.sleep(0.05)
        threads[quiet].start()
        # The quiet tenant's step asks for the slot and waits: it is pending, not running.
        deadline = time.monotonic() + 30
        while not (info := dagster_instance.event_log_storage.get_concurrency_info(pool)).pending_step_count:
            assert time.monotonic() < deadline, "the second step never asked for the pool's slot"
            time.sleep(0.1)
        assert info.slot_count == 1 and info.active_slot_count == 1
        time.sleep(1.5)
        assert quiet not in entered, "a second step called the API while the pool's one slot was taken"
    finally:
        release.set()
        for thread in threads.values():
            if thread.is_alive() or thread.ident:
                thread.join(120)
    assert succeeded == {noisy: True, quiet: True}
    assert entered[quiet] >= left[noisy]
    info = dagster_instance.event_log_storage.get_concurrency_info(pool)
    assert info.active_slot_count == 0 and info.pending_step_count == 0  # every slot given back
