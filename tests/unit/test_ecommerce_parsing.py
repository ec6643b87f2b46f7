"""Pure e-commerce logic: money, parsing Saleor nodes, order totals, merging incremental fetches,
and keeping emails out of the warehouse. Nodes come from the recorded fixtures where they can."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from ml.ecommerce.money import CURRENCIES, MINOR_UNITS, MoneyError, is_currency, money, to_decimal
from ml.ecommerce.saleor import (
    NON_REVENUE_STATUSES,
    ParseError,
    counts_as_revenue,
    customer_key,
    customer_of,
    merge_by_update_time,
    parse_datetime,
    parse_order,
    parse_product,
    redact_emails,
    revenue,
    total_difference,
)
from orchestration.settings import PROJECT_ROOT

FIXTURES = PROJECT_ROOT / "fixtures" / "saleor"


def nodes(pattern: str, connection: str) -> list[dict]:
    found = []
    for path in sorted(FIXTURES.glob(pattern)):
        answer = json.loads(path.read_text())["responses"][-1]["json"]
        found += [edge["node"] for edge in answer["data"][connection]["edges"]]
    return found


PRODUCTS = nodes("coreldove/products_full_page_*.json", "products")
ORDERS = nodes("coreldove/orders_2026-11-2*_full_page_*.json", "orders")


# --- money ------------------------------------------------------------------------------------


def test_amounts_become_exact_decimals_in_the_currency_minor_unit():
    assert to_decimal(54.0, "USD") == Decimal("54.00")
    assert to_decimal(0.1 + 0.2, "USD") == Decimal("0.30")  # 0.30000000000000004 is 30 cents
    assert to_decimal(1999.5, "JPY") == Decimal("2000")
    assert to_decimal("1.2345", "KWD") == Decimal("1.235")
    assert money({"amount": 18, "currency": "EUR"}) == (Decimal("18.00"), "EUR")
    assert MINOR_UNITS["JPY"] == 0 and MINOR_UNITS["BHD"] == 3 and MINOR_UNITS["USD"] == 2
    assert {"USD", "EUR", "GBP", "JPY", "INR"} <= CURRENCIES and not is_currency("XXX")


@pytest.mark.parametrize(
    "bad", [None, {"amount": 1}, {"amount": "abc", "currency": "USD"}, {"amount": True, "currency": "USD"}]
)
def test_broken_money_is_refused(bad):
    with pytest.raises(MoneyError):
        money(bad)
    with pytest.raises(MoneyError):
        to_decimal(float("nan"), "USD")


def test_an_unknown_currency_is_kept_for_the_checks_to_judge():
    assert money({"amount": 3.5, "currency": "DOGE"}) == (Decimal("3.50"), "DOGE")
    assert not is_currency("DOGE")


# --- products -------------------------------------------------------------------------------------


def test_products_parse_with_variants_prices_and_stock():
    parsed = [parse_product(node) for node in PRODUCTS]
    assert 40 <= len(parsed) <= 60
    for product, node in zip(parsed, PRODUCTS, strict=True):
        row = product.row
        assert row["product_id"] == node["id"] and row["slug"] == node["slug"]
        assert row["variant_count"] == len(node["productVariants"]["edges"]) == len(product.variants)
        assert row["price_min"] <= row["price_max"] and row["currency"] == "USD"
        prices = [v["price"] for v in product.variants]
        assert row["price_min"] == min(prices) and row["price_max"] == max(prices)
        assert row["in_stock"] == any(v["in_stock"] for v in product.variants)
        assert row["updated_at"].tzinfo is not None
    sold_out = [p.row["name"] for p in parsed if not p.row["in_stock"]]
    assert {"Cast Iron Skillet", "Rain Barrel"} <= set(sold_out)
    gift = next(p for p in parsed if p.row["product_type"] == "Gift Card")
    assert all(v["in_stock"] and not v["track_inventory"] for v in gift.variants)  # not stocked


def test_a_product_without_channel_pricing_is_bounded_by_its_variants_or_left_unpriced():
    node = copy.deepcopy(PRODUCTS[0])
    node["pricing"] = None
    product = parse_product(node)
    assert product.row["price_min"] == min(v["price"] for v in product.variants)
    for edge in node["productVariants"]["edges"]:
        edge["node"]["pricing"] = None
    unpriced = parse_product(node)
    assert unpriced.row["price_min"] is None and unpriced.row["currency"] is None


def test_truncated_variant_lists_are_flagged():
    node = copy.deepcopy(PRODUCTS[0])
    node["productVariants"]["pageInfo"]["hasNextPage"] = True
    assert parse_product(node).variants_truncated


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda n: n.pop("slug"), "missing slug"),
        (lambda n: n.update(updatedAt="yesterday"), "expected an ISO 8601 date-time"),
        (lambda n: n.update(updatedAt="2026-11-20T10:00:00"), "has no UTC offset"),
        (lambda n: n.update(productVariants={"edges": [{"cursor": "x"}]}), "malformed connection"),
        (
            lambda n: n["productVariants"]["edges"][0]["node"].update(quantityAvailable="many"),
            "expected an integer quantity",
        ),
    ],
)
def test_broken_product_nodes_name_what_is_wrong(change, fragment):
    with pytest.raises(ParseError, match="expected an object"):
        parse_product(None)
    node = copy.deepcopy(PRODUCTS[0])
    change(node)
    with pytest.raises(ParseError, match=fragment):
        parse_product(node)


# --- orders ----------------------------------------------------------------------------------------


def test_orders_parse_into_their_utc_day_with_lines_that_add_up():
    parsed = [parse_order(node, "coreldove") for node in ORDERS]
    assert parsed and {o.day for o in parsed} <= {date(2026, 11, d) for d in range(20, 25)}
    for order, node in zip(parsed, ORDERS, strict=True):
        row = order.row
        assert row["number"] == node["number"] and isinstance(row["number"], str)
        assert row["order_date"] == datetime.fromisoformat(node["created"]).astimezone(UTC).date()
        assert row["line_count"] == len(order.lines) and row["units"] == sum(
            line["quantity"] for line in order.lines
        )
        assert total_difference(row) == 0
        assert all(line["order_date"] == row["order_date"] for line in order.lines)
        assert all(line["product_id"] and line["variant_id"] for line in order.lines)
    assert {o.row["status"] for o in parsed} >= {"UNFULFILLED", "FULFILLED", "CANCELED"}


def test_a_late_evening_order_in_new_york_is_the_next_utc_day():
    node = copy.deepcopy(ORDERS[0])
    node["created"] = "2026-11-20T21:30:00-05:00"
    assert parse_order(node, "coreldove").day == date(2026, 11, 21)


def test_total_difference_finds_the_cent():
    order = parse_order(copy.deepcopy(ORDERS[0]), "coreldove")
    assert total_difference(order.row) == 0
    node = copy.deepcopy(ORDERS[0])
    node["total"]["gross"]["amount"] = round(node["total"]["gross"]["amount"] + 0.01, 2)
    assert total_difference(parse_order(node, "coreldove").row) == Decimal("0.01")


def test_revenue_leaves_out_orders_that_were_never_sales():
    rows = [
        {"status": "FULFILLED", "currency": "USD", "total_gross": Decimal("10.00")},
        {"status": "UNFULFILLED", "currency": "USD", "total_gross": Decimal("5.50")},
        {"status": "CANCELED", "currency": "USD", "total_gross": Decimal("99.00")},
        {"status": "DRAFT", "currency": "USD", "total_gross": Decimal("99.00")},
        {"status": "FULFILLED", "currency": "EUR", "total_gross": Decimal("7.00")},
    ]
    assert revenue(rows) == {"USD": Decimal("15.50"), "EUR": Decimal("7.00")}
    assert {"CANCELED", "DRAFT"} <= NON_REVENUE_STATUSES and counts_as_revenue("RETURNED")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda n: n.pop("total"), "missing total.gross"),
        (lambda n: n.update(lines=None), "lines must be a list"),
        (lambda n: n["lines"][0].update(quantity=1.5), "expected an integer quantity"),
        (lambda n: n["lines"][0].update(totalPrice=None), "missing unitPrice.gross or totalPrice.gross"),
        (lambda n: n["total"]["gross"].update(currency=None), "missing currency"),
    ],
)
def test_broken_order_nodes_name_what_is_wrong(change, fragment):
    node = copy.deepcopy(ORDERS[0])
    change(node)
    with pytest.raises(ParseError, match=fragment):
        parse_order(node, "coreldove")


# --- customers -----------------------------------------------------------------------------------


def test_emails_become_per_tenant_keys_and_never_reach_a_row():
    with_email = next(node for node in ORDERS if node["userEmail"])
    order = parse_order(with_email, "coreldove")
    assert order.row["customer_key"] == customer_key("coreldove", with_email["userEmail"])
    assert "@" not in json.dumps(order.row, default=str)
    assert customer_key("coreldove", "A@Example.com ") == customer_key("coreldove", "a@example.com")
    assert customer_key("coreldove", "a@example.com") != customer_key("thrillring", "a@example.com")
    guest = next(node for node in ORDERS if not node["userEmail"])
    assert parse_order(guest, "coreldove").row["customer_key"] is None


def test_raw_answers_are_stored_with_emails_replaced_and_still_parse_to_the_same_key():
    node = next(node for node in ORDERS if node["userEmail"])
    text = json.dumps({"data": {"orders": {"edges": [{"node": node}]}}})
    redacted = redact_emails(text, "coreldove")
    assert node["userEmail"] not in redacted and "@" not in redacted
    again = json.loads(redacted)["data"]["orders"]["edges"][0]["node"]
    assert customer_of(again["userEmail"], "coreldove") == parse_order(node, "coreldove").row["customer_key"]
    assert redact_emails("<html>not json, write to ops@shop.example</html>", "t").count("customer:") == 1


# --- merging -----------------------------------------------------------------------------------------


def test_merge_keeps_the_newest_version_and_reports_what_changed():
    parsed = [parse_product(node) for node in PRODUCTS[:3]]
    stored = {p.key: p for p in parsed}
    newer = parse_product(copy.deepcopy(PRODUCTS[1]))
    newer.row["updated_at"] += timedelta(hours=1)
    newer.row["name"] = "Renamed"
    older = parse_product(copy.deepcopy(PRODUCTS[2]))
    older.row["updated_at"] -= timedelta(hours=1)
    older.row["name"] = "Stale copy"
    same = parse_product(copy.deepcopy(PRODUCTS[0]))
    added = parse_product(copy.deepcopy(PRODUCTS[5]))
    merged = merge_by_update_time(stored, [same, newer, older, added])
    assert merged.added == [added.key] and merged.changed == [newer.key]
    assert set(merged.unchanged) == {same.key, older.key}
    assert merged.items[newer.key].row["name"] == "Renamed"
    assert merged.items[older.key].row["name"] != "Stale copy"  # the stored one is newer
    assert merged.items[same.key] is same  # same version: the fresh parse wins
    assert len(merged.items) == 4
    assert stored[newer.key].row["name"] != "Renamed"  # the stored mapping is not touched


def test_parse_datetime_normalises_to_utc():
    assert parse_datetime("2026-11-20T21:30:00-05:00", "x") == datetime(2026, 11, 21, 2, 30, tzinfo=UTC)
    assert parse_datetime("2026-11-20T21:30:00Z", "x").tzinfo == UTC
