"""Saleor GraphQL nodes as warehouse rows, and how incremental fetches merge into what is stored.

Pure functions: the asset fetches pages and writes rows, everything in between is here.
Customers are kept as a per-tenant SHA-256 of their email (`customer_key`), never the address
itself: the analytics need "the same customer", not who it is. It is a pseudonym, not a secret:
whoever already holds an address can recompute its key (a keyed HMAC would need a managed secret).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ml.ecommerce.money import MoneyError, money

ORDER_STATUSES = (
    "DRAFT",
    "UNCONFIRMED",
    "UNFULFILLED",
    "PARTIALLY_FULFILLED",
    "PARTIALLY_RETURNED",
    "RETURNED",
    "FULFILLED",
    "CANCELED",
    "EXPIRED",
)
# Orders that never became a sale: they count as orders by status, never as revenue. The dbt
# marts use the same list (stg_ecommerce_orders.counts_as_revenue).
NON_REVENUE_STATUSES = frozenset({"DRAFT", "CANCELED", "EXPIRED"})

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
CUSTOMER_PREFIX = "customer:"


class ParseError(ValueError):
    """A node without the fields the platform relies on."""


# --- customers ------------------------------------------------------------------------------


def customer_key(tenant_id: str, email: str) -> str:
    """A stable pseudonym for a customer within one tenant (the same email in two tenants gets
    two keys, so keys cannot be joined across tenants)."""
    return hashlib.sha256(f"{tenant_id}\n{email.strip().lower()}".encode()).hexdigest()[:32]


def redact_emails(text: str, tenant_id: str) -> str:
    """`text` with every email address replaced by `customer:<key>`: how raw answers are
    stored, so not even the landing table holds personal data."""
    return EMAIL.sub(lambda m: CUSTOMER_PREFIX + customer_key(tenant_id, m.group(0)), text)


def customer_of(value: Any, tenant_id: str) -> str | None:
    """The customer key of an order's `userEmail` (already redacted, or a raw address)."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    if value.startswith(CUSTOMER_PREFIX):
        return value[len(CUSTOMER_PREFIX) :]
    return customer_key(tenant_id, value)


# --- field access -----------------------------------------------------------------------------


def _text(node: Mapping[str, Any], key: str, where: str, required: bool = True) -> str | None:
    value = node.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ParseError(f"{where}: missing {key}")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ParseError(f"{where}: {key} must be a string, got {type(value).__name__}")
    return str(value)


def parse_datetime(value: Any, where: str) -> datetime:
    """An ISO 8601 DateTime with its offset, in UTC."""
    if not isinstance(value, str):
        raise ParseError(f"{where}: expected an ISO 8601 date-time, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ParseError(f"{where}: expected an ISO 8601 date-time, got {value!r}") from None
    if parsed.tzinfo is None:
        raise ParseError(f"{where}: date-time {value!r} has no UTC offset")
    return parsed.astimezone(UTC)


def _name(node: Mapping[str, Any], key: str) -> str | None:
    inner = node.get(key)
    return inner.get("name") if isinstance(inner, dict) else None


def _gross(node: Mapping[str, Any], path: tuple[str, ...], where: str) -> tuple[Decimal, str] | None:
    """The Money at `path` (e.g. pricing.price.gross), or None when a level is null."""
    value: Any = node
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if value is None:
        return None
    try:
        return money(value, f"{where}.{'.'.join(path)}")
    except MoneyError as exc:
        raise ParseError(str(exc)) from None


def _quantity(value: Any, where: str, required: bool) -> int | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError(f"{where}: expected an integer quantity, got {value!r}")
    return value


def _edges(connection: Any, where: str) -> list[dict]:
    if connection is None:
        return []
    edges = connection.get("edges") if isinstance(connection, dict) else None
    if not isinstance(edges, list) or not all(
        isinstance(e, dict) and isinstance(e.get("node"), dict) for e in edges
    ):
        raise ParseError(f"{where}: malformed connection (edges of nodes expected)")
    return [e["node"] for e in edges]


# --- products -----------------------------------------------------------------------------


@dataclass
class Product:
    row: dict[str, Any]
    variants: list[dict[str, Any]]
    variants_truncated: bool = False

    @property
    def key(self) -> str:
        return self.row["product_id"]

    @property
    def updated_at(self) -> datetime:
        return self.row["updated_at"]


def parse_product(node: Mapping[str, Any]) -> Product:
    """One `products` node (with its `productVariants`) as a product row and variant rows."""
    if not isinstance(node, Mapping):
        raise ParseError(f"product: expected an object, got {type(node).__name__}")
    product_id = _text(node, "id", "product")
    where = f"product {product_id}"
    variants, prices = [], []
    connection = node.get("productVariants")
    for vnode in _edges(connection, f"{where}.productVariants"):
        variant_id = _text(vnode, "id", f"{where} variant")
        vwhere = f"{where} variant {variant_id}"
        price = _gross(vnode, ("pricing", "price", "gross"), vwhere)
        quantity = _quantity(vnode.get("quantityAvailable"), vwhere, required=False)
        tracked = vnode.get("trackInventory") is not False
        variants.append(
            {
                "variant_id": variant_id,
                "product_id": product_id,
                "sku": _text(vnode, "sku", vwhere, required=False),
                "name": _text(vnode, "name", vwhere, required=False) or "",
                "price": price[0] if price else None,
                "currency": price[1] if price else None,
                "quantity_available": quantity,
                "track_inventory": tracked,
                # An untracked variant can always be sold; a tracked one needs stock.
                "in_stock": (not tracked) or (quantity is not None and quantity > 0),
            }
        )
        if price:
            prices.append(price)
    start = _gross(node, ("pricing", "priceRange", "start", "gross"), where)
    stop = _gross(node, ("pricing", "priceRange", "stop", "gross"), where)
    if start is None and prices:  # no channel price range: the variants' prices bound it
        start, stop = min(prices), max(prices)
    quantities = [v["quantity_available"] for v in variants if v["quantity_available"] is not None]
    truncated = bool(isinstance(connection, dict) and (connection.get("pageInfo") or {}).get("hasNextPage"))
    row = {
        "product_id": product_id,
        "name": _text(node, "name", where),
        "slug": _text(node, "slug", where),
        "category": _name(node, "category"),
        "product_type": _name(node, "productType"),
        "currency": start[1] if start else None,
        "price_min": start[0] if start else None,
        "price_max": (stop or start)[0] if start else None,
        "variant_count": len(variants),
        "variants_in_stock": sum(1 for v in variants if v["in_stock"]),
        "quantity_available": sum(quantities) if quantities else None,
        "in_stock": any(v["in_stock"] for v in variants),
        "created_at": parse_datetime(node.get("created"), f"{where}.created"),
        "updated_at": parse_datetime(node.get("updatedAt"), f"{where}.updatedAt"),
    }
    return Product(row, variants, truncated)


# --- orders ---------------------------------------------------------------------------------


@dataclass
class Order:
    row: dict[str, Any]
    lines: list[dict[str, Any]]

    @property
    def key(self) -> str:
        return self.row["order_id"]

    @property
    def updated_at(self) -> datetime:
        return self.row["updated_at"]

    @property
    def day(self) -> date:
        return self.row["order_date"]


def parse_order(node: Mapping[str, Any], tenant_id: str) -> Order:
    """One `orders` node as an order row (partitioned by its UTC creation day) and line rows."""
    if not isinstance(node, Mapping):
        raise ParseError(f"order: expected an object, got {type(node).__name__}")
    order_id = _text(node, "id", "order")
    where = f"order {order_id}"
    created = parse_datetime(node.get("created"), f"{where}.created")
    day = created.date()
    total = _gross(node, ("total", "gross"), where)
    if total is None:
        raise ParseError(f"{where}: missing total.gross")
    net = _gross(node, ("total", "net"), where)
    shipping = _gross(node, ("shippingPrice", "gross"), where)
    raw_lines = node.get("lines")
    if not isinstance(raw_lines, list):
        raise ParseError(f"{where}: lines must be a list")
    lines = []
    for index, line in enumerate(raw_lines):
        if not isinstance(line, dict):
            raise ParseError(f"{where}: line {index} is not an object")
        line_id = _text(line, "id", f"{where} line {index}")
        lwhere = f"{where} line {line_id}"
        unit = _gross(line, ("unitPrice", "gross"), lwhere)
        line_total = _gross(line, ("totalPrice", "gross"), lwhere)
        if unit is None or line_total is None:
            raise ParseError(f"{lwhere}: missing unitPrice.gross or totalPrice.gross")
        variant = line.get("variant") if isinstance(line.get("variant"), dict) else {}
        product = variant.get("product") if isinstance(variant.get("product"), dict) else {}
        lines.append(
            {
                "line_id": line_id,
                "order_id": order_id,
                "order_date": day,
                "product_id": product.get("id"),
                "variant_id": variant.get("id"),
                "product_name": _text(line, "productName", lwhere, required=False) or "",
                "variant_name": _text(line, "variantName", lwhere, required=False),
                "sku": _text(line, "productSku", lwhere, required=False),
                "quantity": _quantity(line.get("quantity"), lwhere, required=True),
                "unit_price_gross": unit[0],
                "total_gross": line_total[0],
                "currency": line_total[1],
            }
        )
    channel = node.get("channel") if isinstance(node.get("channel"), dict) else {}
    status = _text(node, "status", where)
    row = {
        "order_id": order_id,
        "order_date": day,
        "number": _text(node, "number", where),
        "status": status.upper(),
        "charge_status": _text(node, "chargeStatus", where, required=False),
        "authorize_status": _text(node, "authorizeStatus", where, required=False),
        "channel": channel.get("slug"),
        "created_at": created,
        "updated_at": parse_datetime(node.get("updatedAt"), f"{where}.updatedAt"),
        "currency": total[1],
        "total_gross": total[0],
        "total_net": net[0] if net else None,
        "shipping_gross": shipping[0] if shipping else Decimal(0),
        "lines_gross": sum((line["total_gross"] for line in lines), Decimal(0)),
        "line_count": len(lines),
        "units": sum(line["quantity"] for line in lines),
        "customer_key": customer_of(node.get("userEmail"), tenant_id),
    }
    return Order(row, lines)


def total_difference(order: Mapping[str, Any]) -> Decimal:
    """total - (sum of lines + shipping): zero for an order whose total adds up."""
    return order["total_gross"] - order["lines_gross"] - order["shipping_gross"]


def counts_as_revenue(status: str) -> bool:
    return status not in NON_REVENUE_STATUSES


def revenue(orders: Iterable[Mapping[str, Any]]) -> dict[str, Decimal]:
    """Gross revenue per currency of the orders that were sales."""
    totals: dict[str, Decimal] = {}
    for order in orders:
        if counts_as_revenue(order["status"]):
            totals[order["currency"]] = totals.get(order["currency"], Decimal(0)) + order["total_gross"]
    return totals


# --- merging ----------------------------------------------------------------------------------


@dataclass
class Merged:
    """What stored + fetched became: the rows by key and what happened to each fetched one."""

    items: dict[str, Any]
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def merge_by_update_time(stored: Mapping[str, Any], fetched: Iterable[Any]) -> Merged:
    """Fetched items (anything with `key` and `updated_at`) replace stored ones unless the stored
    one is newer: an incremental fetch asks for `updatedAt >= watermark`, so it returns the
    items at the watermark again, and a late page may carry an older copy than one stored.
    Equal update times mean the same version; the fetched copy wins (a re-parse may differ)."""
    merged = Merged(dict(stored))
    for item in fetched:
        previous = merged.items.get(item.key)
        if previous is None:
            merged.added.append(item.key)
        elif item.updated_at > previous.updated_at:
            merged.changed.append(item.key)
        elif item.updated_at == previous.updated_at:
            merged.unchanged.append(item.key)
        else:
            merged.unchanged.append(item.key)
            continue
        merged.items[item.key] = item
    return merged
