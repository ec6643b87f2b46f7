"""E-commerce routes over real HTTP, on CorelDove's replayed Saleor data, isolated by RLS. Expected
answers are read from the warehouse as the admin sees it, so the tests hold whichever days have
been loaded (the session's latest day, or the demo's whole window)."""

from decimal import Decimal

import pytest

from tests.e2e.test_api import assert_error, get

PRODUCTS = "/api/brain/saleor/products"
ORDERS = "/api/brain/saleor/orders"
REVENUE = "/api/brain/analytics/ecommerce"
TOP = "/api/brain/analytics/ecommerce/top-products"
STOCK_OUTS = "/api/brain/analytics/ecommerce/stock-outs"


def admin_rows(platform, sql, params=()):
    with platform.admin() as conn:
        return conn.execute(sql, params or None).fetchall()


def everything(api, path, key="coreldove", **params):
    """Every row of a list route, page by page."""
    rows, offset = [], 0
    while True:
        body = get(api, path, key, limit=200, offset=offset, **params).json()
        rows += body["data"]
        if body["page"]["next_offset"] is None:
            return rows, body["page"]["total"]
        offset = body["page"]["next_offset"]


def test_coreldove_lists_its_catalogue_with_variants(api, platform):
    expected = dict(
        admin_rows(
            platform,
            "SELECT product_id, variant_count FROM core.ecommerce_products WHERE tenant_id = 'coreldove'",
        )
    )
    rows, total = everything(api, PRODUCTS)
    assert total == len(rows) == len(expected) >= 40
    assert {r["product_id"]: len(r["variants"]) for r in rows} == expected
    assert all(r["tenant_id"] == "coreldove" for r in rows)
    assert [r["name"] for r in rows] == sorted(r["name"] for r in rows)  # default sort: name
    variant = rows[0]["variants"][0]
    assert set(variant) == {
        "variant_id",
        "sku",
        "name",
        "price",
        "currency",
        "quantity_available",
        "track_inventory",
        "in_stock",
    }
    assert all(r["price_min"] <= r["price_max"] for r in rows)


def test_product_filters(api, platform):
    towels = get(api, PRODUCTS, "coreldove", q="TOWEL").json()["data"]
    assert towels and all("towel" in r["name"].lower() for r in towels)
    expected = admin_rows(
        platform,
        "SELECT count(*) FROM core.ecommerce_products WHERE tenant_id = 'coreldove' AND name ILIKE '%towel%'",
    )[0][0]
    assert len(towels) == expected
    by_sku = get(api, PRODUCTS, "coreldove", q="cd-app-", limit=200).json()["data"]  # a SKU prefix
    assert by_sku and {r["category"] for r in by_sku} == {"Apparel"}
    apparel = get(api, PRODUCTS, "coreldove", category="apparel", limit=200).json()
    assert apparel["page"]["total"] == len(by_sku)
    sold_out = get(api, PRODUCTS, "coreldove", in_stock="false", limit=200).json()["data"]
    assert {"Cast Iron Skillet", "Rain Barrel"} <= {r["name"] for r in sold_out}
    assert all(not r["in_stock"] and not any(v["in_stock"] for v in r["variants"]) for r in sold_out)
    window = get(api, PRODUCTS, "coreldove", min_price=30, max_price=40, limit=200).json()["data"]
    assert window and all(r["price_max"] >= 30 and r["price_min"] <= 40 for r in window)
    priciest = get(api, PRODUCTS, "coreldove", sort="-price_max,name", limit=3).json()["data"]
    assert [r["price_max"] for r in priciest] == sorted((r["price_max"] for r in priciest), reverse=True)
    assert (
        get(api, PRODUCTS, "coreldove", q="100%_cotton").json()["page"]["total"] == 0
    )  # LIKE wildcards are text


def test_product_paging_does_not_repeat_or_skip(api):
    first = get(api, PRODUCTS, "coreldove", limit=20, sort="-updated_at").json()
    second = get(api, PRODUCTS, "coreldove", limit=20, offset=20, sort="-updated_at").json()
    assert first["page"]["next_offset"] == 20 and len(second["data"]) == 20
    assert not {r["product_id"] for r in first["data"]} & {r["product_id"] for r in second["data"]}
    past = get(api, PRODUCTS, "coreldove", offset=5000).json()
    assert past["data"] == [] and past["page"]["total"] == first["page"]["total"]


def test_coreldove_lists_its_orders_with_lines_that_add_up(api, platform):
    expected = admin_rows(
        platform,
        "SELECT count(*), min(order_date), max(order_date) FROM core.ecommerce_orders"
        " WHERE tenant_id = 'coreldove'",
    )
    count, first_day, last_day = expected[0]
    rows, total = everything(api, ORDERS)
    assert total == len(rows) == count > 0
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)
    for order in rows:
        lines = sum(Decimal(str(line["total_gross"])) for line in order["lines"])
        assert lines + Decimal(str(order["shipping_gross"])) == Decimal(str(order["total_gross"]))
        assert len(order["lines"]) == order["line_count"] and isinstance(order["number"], str)
        assert order["customer_key"] is None or "@" not in order["customer_key"]
    assert {r["order_date"] for r in rows} >= {first_day.isoformat(), last_day.isoformat()}


def test_order_filters(api, platform):
    last_day = admin_rows(
        platform, "SELECT max(order_date) FROM core.ecommerce_orders WHERE tenant_id = 'coreldove'"
    )[0][0]
    day = last_day.isoformat()
    of_the_day = get(api, ORDERS, "coreldove", limit=200, **{"from": day, "to": day}).json()
    expected = admin_rows(
        platform,
        "SELECT count(*) FROM core.ecommerce_orders WHERE tenant_id = 'coreldove' AND order_date = %s",
        (last_day,),
    )[0][0]
    assert of_the_day["page"]["total"] == expected and all(r["order_date"] == day for r in of_the_day["data"])
    canceled = get(api, ORDERS, "coreldove", status="CANCELED", limit=200).json()
    expected = admin_rows(
        platform,
        "SELECT count(*) FROM core.ecommerce_orders WHERE tenant_id = 'coreldove' AND status = 'CANCELED'",
    )[0][0]
    assert canceled["page"]["total"] == expected and all(r["status"] == "CANCELED" for r in canceled["data"])
    big = get(api, ORDERS, "coreldove", min_total=150, sort="-total_gross", limit=200).json()["data"]
    assert big and all(r["total_gross"] >= 150 for r in big)
    assert [r["total_gross"] for r in big] == sorted((r["total_gross"] for r in big), reverse=True)
    customer = next(
        r["customer_key"]
        for r in get(api, ORDERS, "coreldove", limit=200).json()["data"]
        if r["customer_key"]
    )
    mine = get(api, ORDERS, "coreldove", customer_key=customer, limit=200).json()["data"]
    assert mine and {r["customer_key"] for r in mine} == {customer}


def test_other_tenants_see_no_shop_and_the_master_may_narrow(api):
    for path in (PRODUCTS, ORDERS, REVENUE, TOP, STOCK_OUTS):
        assert get(api, path, "thrillring").json()["page"]["total"] == 0, path
        assert get(api, path, "directory").json()["page"]["total"] == 0, path
    mine = get(api, PRODUCTS, "coreldove").json()["page"]["total"]
    assert get(api, PRODUCTS, "master", {"X-Tenant-ID": "coreldove"}).json()["page"]["total"] == mine
    assert get(api, PRODUCTS, "master").json()["page"]["total"] >= mine  # the master reads its clients
    assert_error(get(api, ORDERS, "coreldove", {"X-Tenant-ID": "thrillring"}), 403)
    assert_error(get(api, ORDERS), 401)
    assert_error(get(api, REVENUE, "revoked"), 401)


def test_revenue_by_day_matches_the_orders(api, platform):
    rows, total = everything(api, REVENUE)
    expected = admin_rows(
        platform,
        """SELECT order_date, count(*) FILTER (WHERE status NOT IN ('DRAFT', 'CANCELED', 'EXPIRED')),
                  coalesce(sum(total_gross) FILTER (WHERE status NOT IN ('DRAFT', 'CANCELED', 'EXPIRED')), 0),
                  count(*)
             FROM core.ecommerce_orders WHERE tenant_id = 'coreldove' GROUP BY 1 ORDER BY 1 DESC""",
    )
    assert total == len(expected) and [r["order_date"] for r in rows] == [e[0].isoformat() for e in expected]
    for row, (_, orders, revenue, all_orders) in zip(rows, expected, strict=True):
        assert row["orders"] == orders and Decimal(str(row["revenue_gross"])) == revenue
        assert row["all_orders"] == all_orders == sum(row["orders_by_status"].values())
        assert row["avg_order_value"] == pytest.approx(float(revenue) / orders, abs=0.006)
    one = rows[0]["order_date"]
    assert get(api, REVENUE, "coreldove", **{"from": one, "to": one}).json()["page"]["total"] == 1
    by_revenue = get(api, REVENUE, "coreldove", sort="-revenue_gross").json()["data"]
    assert by_revenue[0]["revenue_gross"] == max(r["revenue_gross"] for r in rows)


def test_top_products_and_stock_outs(api, platform):
    top = get(api, TOP, "coreldove", limit=5).json()["data"]
    assert [r["revenue_rank"] for r in top] == sorted(r["revenue_rank"] for r in top) and top[0][
        "revenue_rank"
    ] == 1
    assert top[0]["revenue"] == max(r["revenue"] for r in everything(api, TOP)[0])
    apparel = get(api, TOP, "coreldove", category="Apparel", limit=200).json()["data"]
    assert all(r["category"] == "Apparel" for r in apparel)

    outs, total = everything(api, STOCK_OUTS)
    expected = admin_rows(
        platform,
        "SELECT count(*) FROM core.ecommerce_product_variants WHERE tenant_id = 'coreldove' AND NOT in_stock",
    )[0][0]
    assert total == expected > 0
    whole = get(api, STOCK_OUTS, "coreldove", product_out_of_stock="true", limit=200).json()["data"]
    assert {"Cast Iron Skillet", "Rain Barrel"} <= {r["product_name"] for r in whole}
    assert all(r["product_variants"] == r["product_variants_out"] for r in whole)
    units = [r["units_sold_last_30_days"] for r in outs]
    assert units == sorted(units, reverse=True)  # what a restock is worth, first


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (PRODUCTS, {"min_price": 50, "max_price": 10}),
        (PRODUCTS, {"min_price": -1}),
        (PRODUCTS, {"max_price": "cheap"}),
        (PRODUCTS, {"in_stock": "maybe"}),
        (PRODUCTS, {"sort": "cost"}),
        (PRODUCTS, {"sort": "name; DROP TABLE core.ecommerce_products"}),
        (PRODUCTS, {"category": "   "}),
        (PRODUCTS, {"limit": 0}),
        (ORDERS, {"status": "SHIPPED"}),
        (ORDERS, {"from": "2026-13-01"}),
        (ORDERS, {"from": "2026-11-20", "to": "2026-11-01"}),
        (ORDERS, {"min_total": 100, "max_total": 5}),
        (ORDERS, {"customer_key": "someone@example.com"}),
        (ORDERS, {"sort": "number"}),
        (REVENUE, {"currency": "usd"}),
        (REVENUE, {"from": "yesterday"}),
        (TOP, {"sort": "-margin"}),
        (STOCK_OUTS, {"product_out_of_stock": "sometimes"}),
    ],
)
def test_bad_parameters_are_clear_422s(api, path, params):
    body = assert_error(get(api, path, "coreldove", **params), 422)
    assert body["code"] == "invalid_request"
