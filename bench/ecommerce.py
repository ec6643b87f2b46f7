"""E-commerce (Saleor) benchmarks (issue 5), on the bench data folder (`.data/bench`).

    make bench-ecommerce      (or: python -m bench.ecommerce [--quick])

1. Replay-mode rows per second: a synthetic shop (a catalogue of products with three variants
   each, and one busy day of orders with their lines) written as replay recordings to a temporary
   folder and materialized through the real resource, parser and warehouse writes; measured as
   rows written per second of the asset step, for a full catalogue load, an incremental re-read
   (one changed product) and a day of orders. Rate spacing is off here (it measures the platform,
   not the API's policy); the wall-clock bound the 120 requests/minute sandbox policy sets on the
   same loads is reported next to it.
2. p95 latency of GET /api/brain/saleor/products at 10 and 100 concurrent clients (wrk), on the
   synthetic shop's catalogue and on CorelDove's, variants included in every row.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

from bench.api import ROOT, ensure_wrk, measure, prepare_platform, start_api
from orchestration.processes import free_port, stop
from orchestration.saleor import orders_body, products_body

BENCH_TENANT = "bench_ecommerce"
BENCH_URL = "https://bench-shop.saleor.cloud/graphql/"
CHANNEL = "default-channel"
DAY = date(2026, 11, 24)
PAGE = 100  # the largest page Saleor serves
VARIANTS = 3
POLICY_INTERVAL_S = 0.5  # Saleor Cloud sandbox: 120 requests per minute


def gid(kind: str, pk) -> str:
    return base64.b64encode(f"{kind}:{pk}".encode()).decode()


def money(amount: float) -> dict:
    return {"amount": round(amount, 2), "currency": "USD"}


def product_node(pk: int, updated: datetime, rng: random.Random, bump: float = 0.0) -> dict:
    prices = [round(rng.uniform(5, 200), 2) + bump for _ in range(VARIANTS)]
    return {
        "id": gid("Product", pk),
        "name": f"Bench product {pk}",
        "slug": f"bench-product-{pk}",
        "created": "2026-01-01T00:00:00+00:00",
        "updatedAt": updated.isoformat(),
        "productType": {"name": "Bench"},
        "category": {"name": f"Category {pk % 12}", "slug": f"category-{pk % 12}"},
        "pricing": {
            "priceRange": {"start": {"gross": money(min(prices))}, "stop": {"gross": money(max(prices))}}
        },
        "productVariants": {
            "pageInfo": {"hasNextPage": False},
            "edges": [
                {
                    "node": {
                        "id": gid("ProductVariant", pk * 10 + n),
                        "sku": f"BEN-{pk:06d}-{n}",
                        "name": f"Variant {n}",
                        "trackInventory": True,
                        "quantityAvailable": rng.choice([0, rng.randint(1, 300)]),
                        "pricing": {"price": {"gross": money(price)}},
                    }
                }
                for n, price in enumerate(prices)
            ],
        },
    }


def order_node(number: int, created: datetime, rng: random.Random) -> dict:
    lines = []
    for n in range(rng.randint(1, 4)):
        quantity, unit = rng.randint(1, 3), round(rng.uniform(5, 120), 2)
        pk = rng.randint(1, 1000)
        lines.append(
            {
                "id": gid("OrderLine", f"{number}-{n}"),
                "productName": f"Bench product {pk}",
                "variantName": "Variant 0",
                "productSku": f"BEN-{pk:06d}-0",
                "quantity": quantity,
                "variant": {"id": gid("ProductVariant", pk * 10), "product": {"id": gid("Product", pk)}},
                "unitPrice": {"gross": money(unit)},
                "totalPrice": {"gross": money(round(unit * quantity, 2))},
            }
        )
    shipping = 0.0 if sum(line["totalPrice"]["gross"]["amount"] for line in lines) >= 75 else 6.95
    total = round(sum(line["totalPrice"]["gross"]["amount"] for line in lines) + shipping, 2)
    return {
        "id": gid("Order", f"bench-{number}"),
        "number": str(number),
        "created": created.isoformat(),
        "updatedAt": (created + timedelta(minutes=5)).isoformat(),
        "status": rng.choice(["FULFILLED", "UNFULFILLED", "FULFILLED", "CANCELED"]),
        "chargeStatus": "FULL",
        "authorizeStatus": "FULL",
        "userEmail": f"buyer{rng.randint(1, 5000)}@example.com",
        "channel": {"slug": CHANNEL, "currencyCode": "USD"},
        "total": {"gross": money(total), "net": money(total / 1.0825)},
        "shippingPrice": {"gross": money(shipping)},
        "lines": lines,
    }


def _record(folder: Path, name: str, body: dict, answer: dict) -> None:
    doc = {
        "request": {"method": "POST", "url": BENCH_URL, "json": body},
        "responses": [{"status": 200, "json": answer}],
    }
    (folder / f"{name}.json").write_text(json.dumps(doc))


def _pages(folder: Path, prefix: str, connection: str, nodes: list[dict], make_body) -> int:
    after = None
    chunks = [nodes[i : i + PAGE] for i in range(0, len(nodes), PAGE)] or [[]]
    for number, chunk in enumerate(chunks, 1):
        end = base64.b64encode(f"{prefix}-{number}".encode()).decode()
        more = number < len(chunks)
        answer = {
            "data": {
                connection: {
                    "pageInfo": {"hasNextPage": more, "endCursor": end},
                    "edges": [{"cursor": end, "node": node} for node in chunk],
                }
            }
        }
        _record(folder, f"{prefix}_{number}", make_body(after), answer)
        after = end
    return len(chunks)


def write_recordings(folder: Path, products: int, orders: int) -> dict:
    rng = random.Random(5)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    catalogue = [product_node(pk, start + timedelta(seconds=pk), rng) for pk in range(1, products + 1)]

    def products_of(since):
        return lambda after: products_body(
            channel=CHANNEL, first=PAGE, variants=100, after=after, since=since
        )

    full_pages = _pages(folder, "products_full", "products", catalogue, products_of(None))
    watermark = catalogue[-1]["updatedAt"]
    changed = product_node(7, start + timedelta(days=30), random.Random(7), bump=1.0)
    _pages(folder, "products_since", "products", [catalogue[-1], changed], products_of(watermark))
    _pages(folder, "products_since_2", "products", [changed], products_of(changed["updatedAt"]))

    day_start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    day = [order_node(n, day_start + timedelta(seconds=86399 * n // orders), rng) for n in range(orders)]
    order_pages = _pages(
        folder,
        "orders_day",
        "orders",
        day,
        lambda after: orders_body(
            first=PAGE,
            after=after,
            created_gte=day_start.isoformat(),
            created_lte=(day_start + timedelta(days=1, microseconds=-1)).isoformat(),
            since=None,
        ),
    )
    return {"product_pages": full_pages, "order_pages": order_pages}


def ensure_tenant(admin_url: str, instance) -> None:
    from psycopg.types.json import Jsonb

    from orchestration import postgres
    from orchestration.partitions import tenant_partitions

    settings = {"ecommerce": {"saleor_url": BENCH_URL, "channel": CHANNEL, "currency": "USD"}}
    with postgres.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO core.tenants
                      (tenant_id, display_name, kind, parent_tenant_id, tier, domains, settings)
               VALUES (%s, 'Bench shop', 'client', 'bizoholic', 'starter', '{ecommerce}', %s)
               ON CONFLICT (tenant_id) DO UPDATE SET settings = EXCLUDED.settings, status = 'active'""",
            (BENCH_TENANT, Jsonb(settings)),
        )
        # A clean slate: the first load is a full one.
        for table in (
            "ecommerce_order_lines",
            "ecommerce_orders",
            "ecommerce_product_variants",
            "ecommerce_products",
        ):
            conn.execute(f"DELETE FROM core.{table} WHERE tenant_id = %s", (BENCH_TENANT,))
    instance.add_dynamic_partitions(tenant_partitions("ecommerce").name, [BENCH_TENANT])


def run(instance, env, fixtures: Path, assets, **kwargs) -> tuple[float, dict]:
    """One materialization; the asset step's seconds and the main asset's metadata."""
    from dagster import AssetKey, AssetRecordsFilter, materialize

    from orchestration.saleor import SaleorResource
    from orchestration.warehouse import WarehouseResource

    resources = {
        "warehouse": WarehouseResource(database_url=env["BIZOSAAS_WRITER_URL"]),
        "saleor": SaleorResource(
            mode="replay",
            fixtures_dir=str(fixtures),
            min_interval_s=0,
            products_page_size=PAGE,
            orders_page_size=PAGE,
        ),
    }
    result = materialize(assets, instance=instance, resources=resources, **kwargs)
    assert result.success
    [step] = [
        e.event_specific_data.duration_ms / 1000
        for e in result.all_events
        if e.event_type_value == "STEP_SUCCESS"
    ]
    record = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(assets[0].op.name), asset_partitions=[kwargs["partition_key"]]),
        limit=1,
    ).records[0]
    return step, {k: v.value for k, v in record.event_log_entry.asset_materialization.metadata.items()}


def bench_rows_per_second(instance, env, products: int, orders: int, repeat: int) -> dict:
    from dagster import MultiPartitionKey

    from assets import ecommerce
    from orchestration import postgres

    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        fixtures = Path(tmp)
        (fixtures / "saleor").mkdir()
        pages = write_recordings(fixtures / "saleor", products, orders)
        rows_full, rows_orders = [], []
        for _ in range(repeat):
            seconds, meta = run(
                instance, env, fixtures, [ecommerce.products], partition_key=BENCH_TENANT,
                run_config={"ops": {"products": {"config": {"full_refresh": True}}}},
            )  # fmt: skip
            rows = meta["dagster/row_count"] + meta["variants"]
            rows_full.append({"seconds": seconds, "rows": rows, "rows_per_s": rows / seconds})
        seconds, meta = run(instance, env, fixtures, [ecommerce.products], partition_key=BENCH_TENANT)
        assert meta["load"] == "incremental" and meta["products_changed"] == 1
        report["products_incremental"] = {
            "products_fetched": meta["products_fetched"],
            "api_calls": meta["api_calls"],
            "seconds": round(seconds, 2),
        }
        key = str(MultiPartitionKey({"tenant": BENCH_TENANT, "date": DAY.isoformat()}))
        for _ in range(repeat):
            with postgres.connect(admin_url(), autocommit=True) as c:  # every repeat a first load
                c.execute("DELETE FROM core.ecommerce_order_lines WHERE tenant_id = %s", (BENCH_TENANT,))
                c.execute("DELETE FROM core.ecommerce_orders WHERE tenant_id = %s", (BENCH_TENANT,))
            seconds, meta = run(instance, env, fixtures, [ecommerce.orders], partition_key=key)
            rows = meta["dagster/row_count"] + meta["lines"]
            rows_orders.append({"seconds": seconds, "rows": rows, "rows_per_s": rows / seconds})
    best = lambda runs: max(runs, key=lambda r: r["rows_per_s"])  # noqa: E731
    full, day = best(rows_full), best(rows_orders)
    report["products_full"] = {
        "products": products,
        "rows": full["rows"],
        "api_calls": pages["product_pages"],
        "seconds": round(full["seconds"], 2),
        "rows_per_s": round(full["rows_per_s"]),
        "policy_bound_s": round(math.ceil(products / PAGE) * POLICY_INTERVAL_S, 1),
    }
    report["orders_day"] = {
        "orders": orders,
        "rows": day["rows"],
        "api_calls": pages["order_pages"],
        "seconds": round(day["seconds"], 2),
        "rows_per_s": round(day["rows_per_s"]),
        "policy_bound_s": round(math.ceil(orders / PAGE) * POLICY_INTERVAL_S, 1),
    }
    return report


def admin_url() -> str:
    from orchestration import postgres
    from orchestration.settings import load_settings

    return postgres.admin_url(load_settings())


def bench_api(env, key_of: dict[str, str], duration: int, repeat: int) -> list[dict]:
    wrk = ensure_wrk()
    endpoints = {
        "products, first page of 50": "/api/brain/saleor/products?limit=50",
        "products, text query": "/api/brain/saleor/products?q=product%2012&limit=50",
    }
    results = []
    port = free_port()
    api = start_api(env, port, 2, "30")
    try:
        for tenant, key in key_of.items():
            for name, path in endpoints.items():
                if tenant == "coreldove" and "q=" in path:
                    path = "/api/brain/saleor/products?q=towel&limit=50"
                url = f"http://127.0.0.1:{port}{path}"
                answer = httpx.get(url, headers={"X-API-Key": key}, timeout=30)
                assert answer.status_code == 200, answer.text
                catalogue = answer.json()["page"]["total"]
                assert catalogue > 0 and answer.json()["data"][0]["variants"], f"{tenant} {name}: no rows"
                results += measure(
                    wrk, url, key, duration, repeat, tenant=tenant, endpoint=name, matches=catalogue
                )
    finally:
        stop(api)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller synthetic shop, shorter load runs")
    args = parser.parse_args()
    products, orders = (1_000, 2_000) if args.quick else (10_000, 20_000)
    duration, repeat = (3, 1) if args.quick else (8, 3)

    env, _ = prepare_platform()
    from dagster import DagsterInstance

    from orchestration import postgres
    from serving import keys

    started = time.perf_counter()
    report: dict = {
        "cores": os.cpu_count(),
        "quick": args.quick,
        "variants_per_product": VARIANTS,
        "page": PAGE,
    }
    with DagsterInstance.get() as instance:
        ensure_tenant(admin_url(), instance)
        report["replay"] = bench_rows_per_second(instance, env, products, orders, repeat)
        print(json.dumps(report["replay"]), flush=True)
    with postgres.connect(admin_url(), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE core.ecommerce_products")
        conn.execute("VACUUM ANALYZE core.ecommerce_product_variants")
        bench_key, _ = keys.create(conn, BENCH_TENANT, "reader", "bench ecommerce")
        coreldove_key, _ = keys.create(conn, "coreldove", "reader", "bench ecommerce")
    report["api"] = bench_api(env, {BENCH_TENANT: bench_key, "coreldove": coreldove_key}, duration, repeat)
    report["seconds"] = round(time.perf_counter() - started, 1)

    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / "ecommerce.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")
    print("\n| load | rows | API calls | seconds | rows/s | bound at 120 req/min |")
    print("|---|---|---|---|---|---|")
    for name in ("products_full", "orders_day"):
        r = report["replay"][name]
        print(
            f"| {name} | {r['rows']} | {r['api_calls']} | {r['seconds']} | {r['rows_per_s']} "
            f"| {r['policy_bound_s']} s |"
        )
    print("\n| tenant | endpoint | catalogue | clients | req/s | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in report["api"]:
        print(
            f"| {r['tenant']} | {r['endpoint']} | {r['matches']} | {r['connections']} | {r['rps']} | "
            f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['errors']} |"
        )


if __name__ == "__main__":
    main()
