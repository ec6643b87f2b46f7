"""Synthetic tenants end to end: onboarding, a replay materialization per domain, removal that
leaves real tenants alone, and the tenant sensor's chunked profile runs for 200 tenants."""

from datetime import date, timedelta

import pytest
from dagster import AddDynamicPartitionsRequest, SensorResult, SkipReason, build_sensor_context

from orchestration import synthetic_tenants as st
from orchestration import tenants
from orchestration.warehouse import WarehouseResource
from sensors.tenants import tenant_registry_sensor

SYNTH = r"synth\_%"
# One tenant per domain, each with only its source assets (the cheap part of each domain).
PER_DOMAIN = {
    "ecommerce": ("synth_0002", "key:products or key:orders", "core.ecommerce_orders"),
    "crm": ("synth_0003", "key:crm_leads", "core.crm_leads"),  # the CRM API at its own host
    "gaming": ("synth_0003", "key:esports_news", "core.gaming_news_items"),
    "directory": ("synth_0005", "key:business_cache", "core.business_cache"),
}


@pytest.fixture(scope="module")
def synthetic(platform, dagster_instance):
    try:
        yield st.onboard_synthetic(5, instance=dagster_instance)
    finally:
        st.remove_synthetic(instance=dagster_instance)


def _count(platform, sql, params=()):
    with platform.admin() as conn:
        return conn.execute(sql, params).fetchone()[0]


def test_onboarding_registers_tenants_with_replay_data_and_partitions(platform, dagster_instance, synthetic):
    assert synthetic == [f"synth_000{n}" for n in range(1, 6)]
    with platform.admin() as conn:
        rows = conn.execute(
            "SELECT tenant_id, kind, parent_tenant_id, status, domains FROM core.tenants "
            "WHERE tenant_id LIKE %s ORDER BY 1",
            (SYNTH,),
        ).fetchall()
    assert [r[0] for r in rows] == synthetic
    assert {(r[1], r[2], r[3]) for r in rows} == {("client", "bizoholic", "active")}
    for tenant_id, *_, domains in rows:
        for domain in domains:
            assert tenant_id in dagster_instance.get_dynamic_partitions(f"tenant_{domain}")
    root = st.synthetic_dir(platform.settings)
    assert sorted(p.name for p in (root / "fixtures" / "saleor").iterdir()) == [
        "synth-0002.saleor.cloud",
        "synth-0005.saleor.cloud",
    ]
    assert (platform.settings.drops_dir / "synth_0001" / "leads").is_dir()  # a drops-only CRM tenant
    # The shops differ: own SKUs, own prices.
    shop2 = (root / "fixtures/saleor/synth-0002.saleor.cloud/products_full_page_1.json").read_text()
    shop5 = (root / "fixtures/saleor/synth-0005.saleor.cloud/products_full_page_1.json").read_text()
    assert "S0002-" in shop2 and "S0005-" in shop5 and "CD-" not in shop2
    # Idempotent: a second call adds nothing and keeps the ids.
    assert st.onboard_synthetic(5, instance=dagster_instance) == synthetic
    assert _count(platform, "SELECT count(*) FROM core.tenants WHERE tenant_id LIKE %s", (SYNTH,)) == 5


@pytest.mark.parametrize("domain", list(PER_DOMAIN))
def test_one_synthetic_tenant_per_domain_materializes_in_replay(
    platform, dagster_instance, synthetic, domain
):
    from orchestration.definitions import defs
    from orchestration.materialize import execute, plan_runs

    tenant_id, select, table = PER_DOMAIN[domain]
    outcomes = execute(
        defs, dagster_instance, plan_runs(defs, dagster_instance, select, tenant_id), lambda _: None
    )
    assert outcomes and all(o.success for o in outcomes), [(o.run.label, o.error) for o in outcomes]
    assert _count(platform, f"SELECT count(*) FROM {table} WHERE tenant_id = %s", (tenant_id,)) > 0


def test_a_synthetic_trading_tenant_materializes_a_day_of_prices(platform, dagster_instance, synthetic):
    """Through the CLI's planner a new trading tenant loads its whole history (minutes): one day
    is enough to show its universe replays."""
    from dagster import MultiPartitionKey, materialize

    import assets.trading_market as tm
    from orchestration.definitions import defs
    from orchestration.settings import replay_date

    day = date.fromisoformat(replay_date()) - timedelta(days=1)  # the latest replayed day
    key = MultiPartitionKey({"tenant": "synth_0004", "date": day.isoformat()})
    result = materialize(
        [tm.market_prices, *tm.source_apis],
        selection=[tm.market_prices.key],
        instance=dagster_instance,
        resources=defs.resources,
        partition_key=key,
    )
    assert result.success
    symbols = {
        r[0]
        for r in _rows(
            platform, "SELECT DISTINCT symbol FROM core.market_prices WHERE tenant_id = %s", ("synth_0004",)
        )
    }
    assert symbols == set(st.synthetic_spec(4).settings["trading"]["universe"])


def _rows(platform, sql, params=()):
    with platform.admin() as conn:
        return conn.execute(sql, params).fetchall()


def test_remove_takes_everything_synthetic_and_nothing_else(platform, dagster_instance, synthetic):
    from serving import keys

    with platform.admin() as conn:
        keys.create(conn, "synth_0001", "reader", "synthetic")
        _, real_key = keys.create(conn, "coreldove", "reader", "real")
        tables = st._tenant_tables(conn)
        before = {
            t: conn.execute(f"SELECT count(*) FROM {t} WHERE tenant_id NOT LIKE %s", (SYNTH,)).fetchone()[0]
            for t in tables
        }
        synth_rows = sum(
            conn.execute(f"SELECT count(*) FROM {t} WHERE tenant_id LIKE %s", (SYNTH,)).fetchone()[0]
            for t in tables
        )
    assert synth_rows > 5  # registry rows and what the materializations wrote

    removed = st.remove_synthetic(instance=dagster_instance)

    assert removed == synthetic
    with platform.admin() as conn:
        after = {
            t: conn.execute(f"SELECT count(*) FROM {t} WHERE tenant_id NOT LIKE %s", (SYNTH,)).fetchone()[0]
            for t in tables
        }
        left = {
            t: n
            for t in tables
            if (
                n := conn.execute(f"SELECT count(*) FROM {t} WHERE tenant_id LIKE %s", (SYNTH,)).fetchone()[0]
            )
        }
        assert conn.execute("SELECT 1 FROM ops.api_keys WHERE key_id = %s", (real_key,)).fetchone()
    assert after == before and left == {}
    for name in ("tenant", "tenant_crm", "tenant_ecommerce", "tenant_trading"):
        assert not [k for k in dagster_instance.get_dynamic_partitions(name) if k.startswith("synth_")]
    assert not st.synthetic_dir(platform.settings).exists()
    assert not list(platform.settings.drops_dir.glob("synth_*"))


def _tick(platform, instance, cursor):
    context = build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"warehouse": WarehouseResource(database_url=platform.writer_url)},
    )
    result = tenant_registry_sensor(context)
    if isinstance(result, SkipReason):
        return result, cursor
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
    return result, result.cursor


def test_sensor_requests_200_new_profiles_in_chunks_each_exactly_once(platform, dagster_instance):
    result, cursor = _tick(platform, dagster_instance, None)
    while isinstance(result, SensorResult):  # settle whatever the session holds already
        result, cursor = _tick(platform, dagster_instance, cursor)
    specs = st.synthetic_specs(200)
    try:
        with platform.admin() as conn:
            tenants.seed(conn, specs)
        chunks, added = [], set()
        while isinstance(result := _tick(platform, dagster_instance, cursor)[0], SensorResult):
            cursor = result.cursor
            chunks.append([r.partition_key for r in result.run_requests])
            added |= {
                key
                for r in result.dynamic_partitions_requests or []
                if r.partitions_def_name == "tenant"
                for key in r.partition_keys
            }
            assert len(chunks) < 10, "the sensor never settles"
        requested = [key for chunk in chunks for key in chunk]
        assert [len(c) for c in chunks] == [50, 50, 50, 50]
        assert sorted(requested) == [s.tenant_id for s in specs]  # every tenant, none twice
        assert added == {s.tenant_id for s in specs}  # all partitions on the first tick
    finally:
        st.remove_synthetic(instance=dagster_instance)


def test_cli_refuses_a_bad_count_in_one_line():
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "tenants", "synthetic", "add", "--count", "0"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].endswith("must be at least 1, got 0")
