"""E-commerce (Saleor) end to end on the real Postgres and Dagster instance, replaying the recorded
GraphQL answers in fixtures/saleor through the real client. CorelDove is the seeded shop; the
edge-case shop is a tenant of this module's own, whose Saleor URL has its own recordings."""

import json
import os
import subprocess
import sys
import time
from datetime import date, datetime
from decimal import Decimal

import psycopg
import pytest
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    MultiPartitionKey,
    build_schedule_context,
    materialize,
)
from psycopg.types.json import Jsonb

from assets import ecommerce, ecommerce_checks
from orchestration import tenants
from orchestration.definitions import defs
from orchestration.materialize import execute, plan_runs
from orchestration.saleor import SaleorResource
from orchestration.settings import PROJECT_ROOT
from orchestration.warehouse import WarehouseResource, set_tenant

EDGE_TENANT = "ecommerce_edge"
EDGE_URL = "https://coreldove-edge.saleor.cloud/graphql/"
FIXTURES = PROJECT_ROOT / "fixtures" / "saleor"
PRODUCTS, ORDERS = AssetKey("products"), AssetKey("orders")
RAW_OF_RUN = "FROM raw.ecommerce_api_responses WHERE dagster_run_id = %s ORDER BY response_id"


def recorded_nodes(pattern: str, connection: str) -> list[dict]:
    """The nodes of the last answer of each recording matching `pattern`."""
    nodes = []
    for path in sorted(FIXTURES.glob(pattern)):
        answer = json.loads(path.read_text())["responses"][-1].get("json") or {}
        nodes += [e["node"] for e in ((answer.get("data") or {}).get(connection) or {}).get("edges", [])]
    return nodes


def day_key(tenant: str, day: str) -> str:
    return str(MultiPartitionKey({"tenant": tenant, "date": day}))


def _resources(platform, **saleor):
    return {
        "warehouse": WarehouseResource(database_url=platform.writer_url),
        "saleor": SaleorResource(**{"min_interval_s": 0, "backoff_s": 0.01, **saleor}),
    }


def run_products(platform, instance, tenant, *, config=None, **saleor):
    return materialize(
        [
            ecommerce.products,
            ecommerce_checks.products_catalogue_valid,
            ecommerce_checks.product_variants_valid,
        ],
        partition_key=tenant,
        instance=instance,
        resources=_resources(platform, **saleor),
        run_config={"ops": {"products": {"config": config}}} if config else None,
        raise_on_error=False,
    )


def run_orders(platform, instance, tenant, day, last_day=None, **saleor):
    selection = [ecommerce.orders, ecommerce_checks.orders_totals_valid, ecommerce_checks.order_lines_valid]
    if last_day is None:
        return materialize(
            selection,
            partition_key=day_key(tenant, day),
            instance=instance,
            resources=_resources(platform, **saleor),
            raise_on_error=False,
        )
    return materialize(
        selection,
        instance=instance,
        resources=_resources(platform, **saleor),
        tags={
            "dagster/asset_partition_range_start": day_key(tenant, day),
            "dagster/asset_partition_range_end": day_key(tenant, last_day),
        },
        raise_on_error=False,
    )


def query(platform, tenant, sql, params=()):
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, tenant)
        return conn.execute(sql, params).fetchall()


def metadata(instance, key, partition, run_id=None):
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=20
    ).records
    for record in records:
        if run_id is None or record.run_id == run_id:
            return {k: v.value for k, v in record.event_log_entry.asset_materialization.metadata.items()}
    raise AssertionError(f"no materialization of {key} @ {partition} (run {run_id})")


def failure_message(result) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.event_specific_data.error.message


def check_results(result) -> dict:
    return {
        e.event_specific_data.check_name: e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


@pytest.fixture(scope="module")
def edge_tenant(platform, dagster_instance: DagsterInstance, materialized):
    # After the session's materialization, which would otherwise ask the edge shop for days it
    # has no recordings of.
    settings = {"ecommerce": {"saleor_url": EDGE_URL, "channel": "default-channel", "currency": "USD"}}
    with platform.admin() as conn:
        conn.execute(
            """INSERT INTO core.tenants
                      (tenant_id, display_name, kind, parent_tenant_id, tier, domains, settings)
               VALUES (%s, 'E-commerce edge cases', 'client', 'bizoholic', 'starter', '{ecommerce}', %s)
               ON CONFLICT (tenant_id) DO UPDATE SET status = 'active', settings = EXCLUDED.settings""",
            (EDGE_TENANT, Jsonb(settings)),
        )
    dagster_instance.add_dynamic_partitions(ecommerce.ecommerce_partitions.name, [EDGE_TENANT])
    yield EDGE_TENANT
    with platform.admin() as conn:
        tenants.offboard(conn, EDGE_TENANT)
    dagster_instance.delete_dynamic_partition(ecommerce.ecommerce_partitions.name, EDGE_TENANT)


# --- CorelDove, as the platform's own materialization left it ---------------------------------------


def test_coreldove_has_its_catalogue_and_latest_day_of_orders(platform, dagster_instance, materialized):
    tenant = "coreldove"
    catalogue = recorded_nodes("coreldove/products_full_page_*.json", "products")
    products = query(
        platform, tenant, "SELECT product_id, price_min, price_max, in_stock FROM core.ecommerce_products"
    )
    assert sorted(r[0] for r in products) == sorted(n["id"] for n in catalogue)
    variants = query(
        platform, tenant, "SELECT count(*), count(DISTINCT sku) FROM core.ecommerce_product_variants"
    )
    assert variants[0][0] == variants[0][1] == sum(len(n["productVariants"]["edges"]) for n in catalogue)
    assert any(not r[3] for r in products) and all(r[1] <= r[2] for r in products)

    day = "2026-11-24"  # replay mode: the latest daily partition, whatever the calendar says
    recorded = recorded_nodes(f"coreldove/orders_{day}_full_page_*.json", "orders")
    orders = query(
        platform,
        tenant,
        "SELECT order_id, total_gross, lines_gross + shipping_gross, customer_key FROM core.ecommerce_orders"
        " WHERE order_date = %s",
        (date.fromisoformat(day),),
    )
    assert {r[0] for r in orders} == {n["id"] for n in recorded}
    assert all(r[1] == r[2] for r in orders)  # every total adds up to the cent
    assert all(r[3] is None or len(r[3]) == 32 for r in orders)
    lines = query(
        platform, tenant, "SELECT count(*) FROM core.ecommerce_order_lines WHERE order_date = %s", (day,)
    )
    assert lines[0][0] == sum(len(n["lines"]) for n in recorded)

    first = dagster_instance.fetch_materializations(
        AssetRecordsFilter(asset_key=PRODUCTS, asset_partitions=[tenant]), limit=1, ascending=True
    ).records[0]
    meta = {k: v.value for k, v in first.event_log_entry.asset_materialization.metadata.items()}
    pages = len(list(FIXTURES.glob("coreldove/products_full_page_*.json")))
    assert meta["load"] == "full" and meta["pages"] == pages >= 3 and meta["api_calls"] == pages
    assert meta["watermark_after"] == max(n["updatedAt"] for n in catalogue)


def test_no_email_address_reaches_the_warehouse(platform, materialized):
    with platform.admin() as conn:
        for table in ("raw.ecommerce_api_responses", "core.ecommerce_orders"):
            text = conn.execute(f"SELECT string_agg(t::text, '') FROM {table} t").fetchone()[0]
            assert text and "@example.com" not in text, table
        stored = conn.execute(
            "SELECT count(*) FROM raw.ecommerce_api_responses WHERE body LIKE '%customer:%'"
        ).fetchone()[0]
        assert stored > 0  # the raw answers keep the customer, as its key


# --- products: full, then incremental ----------------------------------------------------------


def test_products_load_in_full_then_only_what_changed_since_the_watermark(
    platform, dagster_instance, edge_tenant
):
    first = run_products(platform, dagster_instance, edge_tenant)
    assert first.success
    meta = metadata(dagster_instance, PRODUCTS, edge_tenant, first.run_id)
    assert meta["load"] == "full" and meta["dagster/row_count"] == 30 and meta["pages"] == 2
    assert meta["api_calls"] == 3  # the recorded 429 was retried
    raw = query(
        platform,
        edge_tenant,
        f"SELECT page, status, variables {RAW_OF_RUN}",
        (first.run_id,),
    )
    assert [(r[0], r[1]) for r in raw] == [(1, 429), (1, 200), (2, 200)]
    assert raw[0][2]["where"] == {} and raw[2][2]["after"]  # the second page follows the cursor
    watermark = meta["watermark_after"]
    price_before = query(
        platform, edge_tenant, "SELECT price_min FROM core.ecommerce_products WHERE slug = 'linen-tea-towels'"
    )[0][0]

    second = run_products(platform, dagster_instance, edge_tenant)
    assert second.success
    meta = metadata(dagster_instance, PRODUCTS, edge_tenant, second.run_id)
    assert meta["load"] == "incremental" and meta["watermark_before"] == watermark
    assert meta["products_added"] == 1 and meta["products_changed"] == 1 and meta["dagster/row_count"] == 31
    asked = query(
        platform,
        edge_tenant,
        "SELECT variables FROM raw.ecommerce_api_responses WHERE dagster_run_id = %s",
        (second.run_id,),
    )
    assert [r[0]["where"] for r in asked] == [{"updatedAt": {"range": {"gte": watermark}}}]
    rows = dict(query(platform, edge_tenant, "SELECT slug, price_min FROM core.ecommerce_products"))
    assert len(rows) == 31 and "organic-linen-apron" in rows
    assert rows["linen-tea-towels"] == price_before + Decimal("2.00")
    apron = query(
        platform,
        edge_tenant,
        "SELECT v.sku, v.in_stock FROM core.ecommerce_product_variants v JOIN core.ecommerce_products p"
        " USING (tenant_id, product_id) WHERE p.slug = 'organic-linen-apron' ORDER BY 1",
    )
    assert apron == [("CD-KIT-901-01", True), ("CD-KIT-901-02", False)]
    # the product at the watermark comes again (gte), the same version; untouched products keep
    # the run that fetched them
    assert meta["products_fetched"] == 3
    runs = dict(
        query(
            platform, edge_tenant, "SELECT dagster_run_id, count(*) FROM core.ecommerce_products GROUP BY 1"
        )
    )
    assert runs == {first.run_id: 28, second.run_id: 3}
    checks = check_results(second)
    assert checks["products_catalogue_valid"].passed and checks["product_variants_valid"].passed


def test_rate_slots_space_requests_by_the_configured_interval(platform, dagster_instance, edge_tenant):
    started = time.perf_counter()
    result = run_products(
        platform, dagster_instance, edge_tenant, config={"full_refresh": True}, min_interval_s=0.3
    )
    assert result.success
    meta = metadata(dagster_instance, PRODUCTS, edge_tenant, result.run_id)
    stamps = [
        r[0]
        for r in query(
            platform,
            edge_tenant,
            f"SELECT fetched_at {RAW_OF_RUN}",
            (result.run_id,),
        )
    ]
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)]
    assert len(stamps) == 3 and all(gap >= 0.25 for gap in gaps), gaps
    assert meta["rate_limit_wait_s"] > 0.3 and time.perf_counter() - started >= 0.6
    assert SaleorResource().min_interval_s == 0.5  # the live policy stays the default


# --- orders: a day, a re-run, and every failure ----------------------------------------------------


def test_orders_of_a_day_then_a_rerun_merges_a_status_change(platform, dagster_instance, edge_tenant):
    day = "2026-11-10"
    first = run_orders(platform, dagster_instance, edge_tenant, day)
    assert first.success, failure_message(first)
    meta = metadata(dagster_instance, ORDERS, day_key(edge_tenant, day), first.run_id)
    statuses = dict(
        query(
            platform,
            edge_tenant,
            "SELECT number, status FROM core.ecommerce_orders WHERE order_date = %s",
            (day,),
        )
    )
    assert len(statuses) == 3 and set(statuses.values()) == {"UNFULFILLED"}
    lines_before = query(
        platform,
        edge_tenant,
        "SELECT line_id FROM core.ecommerce_order_lines WHERE order_date = %s ORDER BY 1",
        (day,),
    )
    watermark = meta["watermark_after"]
    assert meta["watermark_before"].startswith("(none")

    second = run_orders(platform, dagster_instance, edge_tenant, day)
    assert second.success, failure_message(second)
    meta = metadata(dagster_instance, ORDERS, day_key(edge_tenant, day), second.run_id)
    assert meta["watermark_before"] == watermark and meta["orders_updated"] == 1
    asked = query(
        platform,
        edge_tenant,
        "SELECT variables FROM raw.ecommerce_api_responses WHERE dagster_run_id = %s",
        (second.run_id,),
    )
    assert asked[0][0]["where"]["updatedAt"] == {"gte": watermark}
    assert asked[0][0]["where"]["createdAt"] == {
        "gte": f"{day}T00:00:00+00:00",
        "lte": f"{day}T23:59:59.999999+00:00",
    }
    after = dict(
        query(
            platform,
            edge_tenant,
            "SELECT number, status FROM core.ecommerce_orders WHERE order_date = %s",
            (day,),
        )
    )
    assert sorted(after.values()) == ["CANCELED", "UNFULFILLED", "UNFULFILLED"] and set(after) == set(
        statuses
    )
    assert (
        query(
            platform,
            edge_tenant,
            "SELECT line_id FROM core.ecommerce_order_lines WHERE order_date = %s ORDER BY 1",
            (day,),
        )
        == lines_before
    )
    # a canceled order is no revenue any more
    assert (
        meta["revenue_of_the_day"]
        != metadata(dagster_instance, ORDERS, day_key(edge_tenant, day), first.run_id)["revenue_of_the_day"]
    )


def test_a_permission_error_in_a_200_keeps_the_day_and_stores_the_answer(
    platform, dagster_instance, edge_tenant
):
    day = "2026-11-11"
    assert run_orders(platform, dagster_instance, edge_tenant, day).success
    before = query(
        platform,
        edge_tenant,
        "SELECT order_id, status, updated_at FROM core.ecommerce_orders WHERE order_date = %s ORDER BY 1",
        (day,),
    )
    assert [r[0] for r in before] == sorted(
        n["id"] for n in recorded_nodes(f"edge/orders_{day}_full_*", "orders")
    )

    result = run_orders(platform, dagster_instance, edge_tenant, day)
    assert not result.success
    message = failure_message(result)
    assert "PermissionDenied" in message and "MANAGE_ORDERS" in message and "not zero orders" in message
    after = query(
        platform,
        edge_tenant,
        "SELECT order_id, status, updated_at FROM core.ecommerce_orders WHERE order_date = %s ORDER BY 1",
        (day,),
    )
    assert after == before  # nothing lost, nothing emptied
    raw = query(
        platform,
        edge_tenant,
        "SELECT status, body FROM raw.ecommerce_api_responses WHERE dagster_run_id = %s",
        (result.run_id,),
    )
    assert (
        len(raw) == 1
        and raw[0][0] == 200
        and '"orders": null' in raw[0][1]
        and "PermissionDenied" in raw[0][1]
    )


@pytest.mark.parametrize(
    ("day", "fragment", "attempts"),
    [
        ("2026-11-12", "The query exceeds the maximum cost of 50000. Actual cost is 61234", [400]),
        ("2026-11-13", "malformed response body from saleor (HTTP 200)", [200]),
        ("2026-11-16", 'Cannot query field \\"shippingPrice\\"', [400]),
        ("2026-11-17", "HTTP 503 (gave up after 4 attempts", [503] * 4),
    ],
)
def test_failed_answers_fail_the_day_clearly_and_are_kept(
    platform, dagster_instance, edge_tenant, day, fragment, attempts
):
    result = run_orders(platform, dagster_instance, edge_tenant, day)
    assert not result.success
    message = failure_message(result)
    assert fragment.replace("\\", "") in message and f"not refreshed from {day}" in message
    raw = query(
        platform,
        edge_tenant,
        "SELECT status FROM raw.ecommerce_api_responses WHERE dagster_run_id = %s ORDER BY response_id",
        (result.run_id,),
    )
    assert [r[0] for r in raw] == attempts
    assert (
        query(
            platform, edge_tenant, "SELECT count(*) FROM core.ecommerce_orders WHERE order_date = %s", (day,)
        )[0][0]
        == 0
    )


def test_a_429_on_orders_is_retried(platform, dagster_instance, edge_tenant):
    result = run_orders(platform, dagster_instance, edge_tenant, "2026-11-15")
    assert result.success
    meta = metadata(dagster_instance, ORDERS, day_key(edge_tenant, "2026-11-15"), result.run_id)
    assert meta["api_calls"] == 2 and meta["dagster/row_count"] == 3


def test_an_order_total_that_does_not_add_up_fails_the_blocking_check(
    platform, dagster_instance, edge_tenant
):
    day = "2026-11-14"
    try:
        result = run_orders(platform, dagster_instance, edge_tenant, day)
        checks = check_results(result)
        totals = checks["orders_totals_valid"]
        assert not totals.passed and checks["order_lines_valid"].passed
        failed = totals.metadata["failed_expectations"].value
        [name] = [n for n in failed if "total_minus_lines_and_shipping" in n]
        assert failed[name]["unexpected_count"] == 1 and failed[name]["sample"] == ["0.01"]
    finally:
        # Leave no inconsistent day behind for the dbt tests that read every tenant.
        with psycopg.connect(platform.writer_url) as conn, conn.transaction():
            set_tenant(conn, edge_tenant)
            conn.execute("DELETE FROM core.ecommerce_order_lines WHERE order_date = %s", (day,))
            conn.execute("DELETE FROM core.ecommerce_orders WHERE order_date = %s", (day,))


def test_a_window_of_days_is_one_run_and_stops_at_the_first_failing_day(
    platform, dagster_instance, edge_tenant
):
    # 11-15 is fine, 11-16 is rejected: 11-15 stays committed, 11-17 is never asked for.
    result = run_orders(platform, dagster_instance, edge_tenant, "2026-11-15", "2026-11-17")
    assert not result.success
    message = failure_message(result)
    assert "from 2026-11-16 on" in message and "committed: 2026-11-15" in message
    asked = query(
        platform,
        edge_tenant,
        "SELECT DISTINCT partition_key FROM raw.ecommerce_api_responses WHERE dagster_run_id = %s",
        (result.run_id,),
    )
    assert sorted(r[0] for r in asked) == ["2026-11-15", "2026-11-16"]


def test_live_mode_without_a_token_fails_before_any_request(platform, dagster_instance, edge_tenant):
    before = query(platform, edge_tenant, "SELECT count(*) FROM raw.ecommerce_api_responses")[0][0]
    result = run_products(platform, dagster_instance, edge_tenant, mode="live")
    assert not result.success and "SALEOR_APP_TOKEN is not set" in failure_message(result)
    assert query(platform, edge_tenant, "SELECT count(*) FROM raw.ecommerce_api_responses")[0][0] == before
    # and the next run with the setting fixed succeeds (leaving the checks' latest state green
    # for the tests that read it)
    assert run_products(platform, dagster_instance, edge_tenant).success


# --- the CLI's window of days, the schedules, isolation ---------------------------------------------


def test_materialize_runs_a_window_of_days_as_one_run_per_tenant(platform, dagster_instance, materialized):
    runs = [r for r in plan_runs(defs, dagster_instance, "key:orders", "coreldove", days=3)]
    assert len(runs) == 1 and runs[0].partition_range is not None
    assert "2026-11-22..2026-11-24" in runs[0].label
    [outcome] = execute(defs, dagster_instance, runs, progress=lambda _: None)
    assert outcome.success, outcome.error
    days = query(
        platform,
        "coreldove",
        "SELECT DISTINCT order_date FROM core.ecommerce_orders WHERE order_date >= '2026-11-22'",
    )
    assert sorted(str(r[0]) for r in days) == ["2026-11-22", "2026-11-23", "2026-11-24"]
    one_per_day = plan_runs(defs, dagster_instance, "key:tenant_profile", "coreldove", days=3)
    assert len(one_per_day) == 1  # a tenant-only asset has no days to spread over


def test_the_cli_builds_a_window_of_days_with_progress(platform, materialized):
    proc = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "materialize",
         "--tenant", "coreldove", "--select", "key:orders", "--days", "2"],
        capture_output=True, text=True, env=os.environ.copy(), cwd=PROJECT_ROOT, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[1/1] order_lines, orders @ coreldove, 2026-11-23..2026-11-24 ... ok" in proc.stdout
    assert "1 succeeded, 0 failed" in proc.stdout


def tick(instance, when: str):
    return build_schedule_context(instance=instance, scheduled_execution_time=datetime.fromisoformat(when))


def order_window(instance, when: str) -> dict[str, tuple[str, str]]:
    requests = ecommerce.ecommerce_orders_schedule(tick(instance, when))
    return {
        r.tags["bizosaas/tenant"]: tuple(
            k.split("|")[0] for k in (r.partition_key_range.start, r.partition_key_range.end)
        )
        for r in requests
    }


def test_schedules_ask_per_tenant_for_the_catalogue_and_a_window_of_order_days(
    platform, dagster_instance, edge_tenant
):
    products = ecommerce.ecommerce_products_schedule(tick(dagster_instance, "2026-11-25T04:15:00+00:00"))
    assert {r.partition_key for r in products} == {"coreldove", EDGE_TENANT}
    # yesterday and the three days before it, one run per tenant
    windows = order_window(dagster_instance, "2026-11-12T02:30:00+00:00")
    assert windows == {"coreldove": ("2026-11-08", "2026-11-11"), EDGE_TENANT: ("2026-11-08", "2026-11-11")}
    # replay mode: a calendar past the recordings refreshes the last recorded days
    assert order_window(dagster_instance, "2027-03-01T02:30:00+00:00")["coreldove"] == (
        "2026-11-21",
        "2026-11-24",
    )
    assert order_window(dagster_instance, "2026-11-26T02:30:00+00:00")["coreldove"] == (
        "2026-11-22",
        "2026-11-24",
    )

    [request] = [
        r
        for r in ecommerce.ecommerce_orders_schedule(tick(dagster_instance, "2026-11-25T02:30:00+00:00"))
        if r.tags["bizosaas/tenant"] == "coreldove"
    ]
    result = materialize(
        [ecommerce.orders, ecommerce_checks.orders_totals_valid, ecommerce_checks.order_lines_valid],
        instance=dagster_instance,
        resources=_resources(platform),
        tags={k: v for k, v in request.tags.items() if k.startswith("dagster/asset_partition")},
    )
    assert all(c.passed for c in check_results(result).values())
    assert result.success
    meta = metadata(dagster_instance, ORDERS, day_key("coreldove", "2026-11-24"), result.run_id)
    assert meta["days"] == 4 and sorted(meta["by_day"]) == [
        "2026-11-21",
        "2026-11-22",
        "2026-11-23",
        "2026-11-24",
    ]


def test_tenants_never_see_each_others_shop(platform, materialized, edge_tenant):
    tables = [
        "core.ecommerce_products",
        "core.ecommerce_product_variants",
        "core.ecommerce_orders",
        "core.ecommerce_order_lines",
    ]
    with psycopg.connect(platform.serving_url) as conn:
        for table in tables:
            with conn.transaction():
                set_tenant(conn, "thrillring")
                assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
            with conn.transaction():
                set_tenant(conn, "coreldove")
                assert {r[0] for r in conn.execute(f"SELECT DISTINCT tenant_id FROM {table}")} == {
                    "coreldove"
                }
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            set_tenant(conn, "coreldove")
            conn.execute("SELECT count(*) FROM raw.ecommerce_api_responses")
    # the writer, acting for one tenant, can neither change nor add another tenant's rows
    with psycopg.connect(platform.writer_url) as conn:
        with conn.transaction():
            set_tenant(conn, EDGE_TENANT)
            touched = conn.execute(
                "UPDATE core.ecommerce_products SET name = 'x' WHERE tenant_id = 'coreldove'"
            )
            assert touched.rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            set_tenant(conn, EDGE_TENANT)
            conn.execute(
                """INSERT INTO core.ecommerce_orders
                          (tenant_id, order_id, order_date, number, status, created_at, updated_at, currency,
                           total_gross, shipping_gross, lines_gross, line_count, units, fetched_at)
                   VALUES ('coreldove', 'x', '2026-11-01', '1', 'FULFILLED', now(), now(), 'USD',
                           1, 0, 1, 0, 0, now())"""
            )
