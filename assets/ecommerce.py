"""E-commerce (Saleor): a tenant's product catalogue, and its orders day by day.

`products` is incremental by update time: the newest `updatedAt` already stored is the tenant's
watermark, and a refresh asks Saleor only for products modified since (sorted by modification,
so a page boundary cannot skip one); changed products are merged into the catalogue and the
tenant's products and variants are rewritten in one transaction. `orders` holds the orders
created on each UTC day; re-running a day asks only for that day's orders updated since the
day's watermark (status changes, refunds) and merges them, rewriting the day atomically. Every
answer Saleor gives is stored in raw.ecommerce_api_responses before it is parsed.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit

from dagster import (
    AssetExecutionContext,
    AssetSpec,
    BackfillPolicy,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SkipReason,
    define_asset_job,
    multi_asset,
    schedule,
)
from psycopg.rows import dict_row
from pydantic import Field

from ml.ecommerce.money import is_currency
from ml.ecommerce.saleor import (
    Order,
    ParseError,
    Product,
    merge_by_update_time,
    parse_order,
    parse_product,
    redact_emails,
    revenue,
)
from orchestration.api_limits import ApiLedger
from orchestration.errors import PlatformError
from orchestration.materialize import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from orchestration.metadata import preview_table
from orchestration.partitions import (
    DATE_DIMENSION,
    TENANT_DIMENSION,
    TENANT_TAG,
    run_partitions,
    tenant_daily_partitions,
    tenant_partitions,
)
from orchestration.replay import UnrecordedRequestError
from orchestration.saleor import SaleorResource, orders_body, products_body
from orchestration.sources import Attempt, SourceError
from orchestration.tenant_settings import settings_error, tenant_settings
from orchestration.warehouse import WarehouseResource, append_rows, write_partition

PRODUCTS_TABLE = "core.ecommerce_products"
VARIANTS_TABLE = "core.ecommerce_product_variants"
ORDERS_TABLE = "core.ecommerce_orders"
LINES_TABLE = "core.ecommerce_order_lines"
RAW_TABLE = "raw.ecommerce_api_responses"
ORDERS_START_DATE = "2026-10-01"
# The daily schedule re-reads this many days before yesterday: orders change status (fulfilled,
# canceled, returned) for days after they were placed.
ORDERS_LOOKBACK_DAYS = 3

ecommerce_partitions = tenant_partitions("ecommerce")
ecommerce_daily_partitions = tenant_daily_partitions("ecommerce", ORDERS_START_DATE)

saleor_api = AssetSpec(
    "saleor_api",
    group_name="ecommerce",
    kinds={"api"},
    description=(
        "Saleor GraphQL at each tenant's own endpoint (settings.ecommerce.saleor_url): products with "
        "variants, channel prices and stock; orders with lines. App token from SALEOR_APP_TOKEN."
    ),
    metadata={"rate_limit": "Saleor Cloud sandboxes: 120 requests/min per environment"},
)

PRODUCT_COLUMNS = (
    "product_id",
    "name",
    "slug",
    "category",
    "product_type",
    "currency",
    "price_min",
    "price_max",
    "variant_count",
    "variants_in_stock",
    "quantity_available",
    "in_stock",
    "created_at",
    "updated_at",
    "fetched_at",
    "dagster_run_id",
)
VARIANT_COLUMNS = (
    "variant_id",
    "product_id",
    "sku",
    "name",
    "price",
    "currency",
    "quantity_available",
    "track_inventory",
    "in_stock",
    "fetched_at",
    "dagster_run_id",
)
ORDER_COLUMNS = (
    "order_id",
    "order_date",
    "number",
    "status",
    "charge_status",
    "authorize_status",
    "channel",
    "created_at",
    "updated_at",
    "currency",
    "total_gross",
    "total_net",
    "shipping_gross",
    "lines_gross",
    "line_count",
    "units",
    "customer_key",
    "fetched_at",
    "dagster_run_id",
)
LINE_COLUMNS = (
    "line_id",
    "order_id",
    "order_date",
    "product_id",
    "variant_id",
    "product_name",
    "variant_name",
    "sku",
    "quantity",
    "unit_price_gross",
    "total_gross",
    "currency",
    "fetched_at",
    "dagster_run_id",
)


# --- tenant settings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EcommerceSettings:
    saleor_url: str
    channel: str
    currency: str


def ecommerce_settings(tenant_id: str, settings: dict[str, Any]) -> EcommerceSettings:
    """The tenant's Saleor settings, or a Failure that names the wrong key."""

    fail = settings_error(tenant_id, "ecommerce")

    ecommerce = settings.get("ecommerce")
    if not isinstance(ecommerce, dict):
        raise fail("", "an object with saleor_url, channel and currency", ecommerce)
    url = str(ecommerce.get("saleor_url") or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise fail("saleor_url", "the shop's GraphQL URL, e.g. https://<env>.saleor.cloud/graphql/", url)
    channel = str(ecommerce.get("channel") or "").strip()
    if not channel:
        raise fail("channel", "the channel slug whose prices to read, e.g. default-channel", channel)
    currency = str(ecommerce.get("currency") or "").strip().upper()
    if not is_currency(currency):
        raise fail("currency", "an ISO 4217 code such as USD", ecommerce.get("currency"))
    return EcommerceSettings(url, channel, currency)


def load_ecommerce_settings(warehouse: WarehouseResource, tenant_id: str) -> EcommerceSettings:
    return ecommerce_settings(tenant_id, tenant_settings(warehouse, tenant_id))


# --- talking to Saleor ---------------------------------------------------------------------------


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


class SaleorSession:
    """One run's requests to one tenant's Saleor: a shared rate slot per Saleor environment, and
    every answer stored (in its own transaction) as soon as its page is done, before parsing."""

    def __init__(
        self, saleor: SaleorResource, warehouse: WarehouseResource, tenant_id: str, url: str, run_id
    ):
        self.saleor, self.warehouse, self.tenant_id, self.url, self.run_id = (
            saleor,
            warehouse,
            tenant_id,
            url,
            run_id,
        )
        self.ledger = ApiLedger(warehouse)
        self.client = saleor.client(url)
        self.calls = 0
        self.pages = 0
        self.stored = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.client.close()

    def fetch_all(self, dataset: str, partition_key: str, make_body) -> list[dict[str, Any]]:
        """Every node of `dataset` (the GraphQL connection of the same name)."""
        rate_key = self.saleor.rate_key(self.url)

        def store(page: int, body: dict[str, Any], attempts: list[Attempt]) -> None:
            self.calls += len(attempts)
            self._store(dataset, partition_key, page, body, attempts)

        nodes: list[dict[str, Any]] = []
        for page in self.saleor.pages(
            self.client,
            self.url,
            dataset,
            make_body,
            before_attempt=lambda: self.ledger.wait_for_slot(rate_key, self.saleor.min_interval_s),
            on_page=store,
        ):
            self.pages += 1
            nodes += page.nodes
        return nodes

    def _store(self, dataset, partition_key, page, body, attempts: list[Attempt]) -> None:
        if not attempts:
            return
        rows = [
            {
                "dataset": dataset,
                "partition_key": partition_key,
                "page": page,
                "variables": body["variables"],
                "request": a.request,
                "status": a.status,
                "body": redact_emails(a.body, self.tenant_id),
                "attempt": a.attempt,
                "fetched_at": a.fetched_at,
                "dagster_run_id": self.run_id,
            }
            for a in attempts
        ]
        with self.warehouse.tenant_transaction(self.tenant_id) as conn:
            append_rows(conn, self.tenant_id, RAW_TABLE, rows)
        self.stored += len(rows)


def _lock(conn, table: str, *parts: Any) -> None:
    # Two runs of one partition must not merge against the same stored rows.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (":".join([table, *map(str, parts)]),))


# --- products -------------------------------------------------------------------------------------


class ProductsConfig(Config):
    full_refresh: bool = Field(
        default=False,
        description=(
            "Fetch the whole catalogue instead of the products changed since the watermark; products "
            "deleted in Saleor disappear (an incremental fetch cannot see deletions)."
        ),
    )


def _stored_products(conn, tenant_id: str) -> dict[str, Product]:
    cur = conn.cursor(row_factory=dict_row)
    products = {
        row["product_id"]: Product({c: row[c] for c in PRODUCT_COLUMNS}, [])
        for row in cur.execute(f"SELECT * FROM {PRODUCTS_TABLE} WHERE tenant_id = %s", (tenant_id,))
    }
    for row in cur.execute(
        f"SELECT * FROM {VARIANTS_TABLE} WHERE tenant_id = %s ORDER BY variant_id", (tenant_id,)
    ):
        if row["product_id"] in products:
            products[row["product_id"]].variants.append({c: row[c] for c in VARIANT_COLUMNS})
    return products


class UnparsableAnswerError(PlatformError):
    """Saleor answered, but a node lacks what the platform relies on."""


def _parse_all(parse, nodes, what: str):
    try:
        return [parse(node) for node in nodes]
    except ParseError as exc:
        raise UnparsableAnswerError(
            f"a {what} in Saleor's answer could not be parsed ({exc}); nothing of it was written, "
            f"the raw answers are in {RAW_TABLE}"
        ) from None


def _source_failure(what: str, exc: Exception, session: SaleorSession | None) -> Failure:
    calls = {"api_calls": MetadataValue.int(session.calls)} if session else {}
    return Failure(
        description=f"{what} not refreshed; the stored rows are kept: {exc}",
        metadata={**calls, "raw_answers_stored": MetadataValue.int(session.stored if session else 0)},
    )


@multi_asset(
    name="products",
    specs=[
        AssetSpec(
            "products",
            group_name="ecommerce",
            kinds={"postgres", "api"},
            deps=["tenant_registry", saleor_api],
            metadata={"table": PRODUCTS_TABLE},
            description=(
                f"The tenant's Saleor catalogue in {PRODUCTS_TABLE}: one row per product with its price "
                "range in the tenant's channel and a stock summary. Incremental by update time (changed "
                "products merged in); config full_refresh reloads everything."
            ),
        ),
        AssetSpec(
            "product_variants",
            group_name="ecommerce",
            kinds={"postgres"},
            deps=["tenant_registry", saleor_api],
            metadata={"table": VARIANTS_TABLE},
            description=(
                f"The catalogue's variants in {VARIANTS_TABLE} (SKU, price, quantity available, in stock), "
                "written with their products in one transaction."
            ),
        ),
    ],
    partitions_def=ecommerce_partitions,
    pool="saleor",
    can_subset=False,
)
def products(
    context: AssetExecutionContext,
    config: ProductsConfig,
    warehouse: WarehouseResource,
    saleor: SaleorResource,
) -> MaterializeResult:
    tenant_id = context.partition_key
    run_id = context.run.run_id
    settings = load_ecommerce_settings(warehouse, tenant_id)
    watermark = None
    if not config.full_refresh:
        rows = warehouse.query(
            tenant_id, f"SELECT max(updated_at) AS w FROM {PRODUCTS_TABLE} WHERE tenant_id = %s", (tenant_id,)
        )
        watermark = rows[0]["w"]
    since = iso(watermark)
    session = None
    try:
        with SaleorSession(saleor, warehouse, tenant_id, settings.saleor_url, run_id) as session:
            nodes = session.fetch_all(
                "products",
                "",
                lambda after: products_body(
                    channel=settings.channel,
                    first=saleor.products_page_size,
                    variants=saleor.variants_per_product,
                    after=after,
                    since=since,
                ),
            )
        fetched = _parse_all(parse_product, nodes, "product")
    except (SourceError, UnrecordedRequestError, PlatformError) as exc:
        raise _source_failure(f"products of {tenant_id}", exc, session) from None
    now = datetime.now(UTC)
    for product in fetched:
        product.row.update(fetched_at=now, dagster_run_id=run_id)
        for variant in product.variants:
            variant.update(fetched_at=now, dagster_run_id=run_id)

    with warehouse.tenant_transaction(tenant_id) as conn:
        _lock(conn, PRODUCTS_TABLE, tenant_id)
        stored = {} if watermark is None else _stored_products(conn, tenant_id)
        merged = merge_by_update_time(stored, fetched)
        catalogue = sorted(merged.items.values(), key=lambda p: p.key)
        written = write_partition(
            conn,
            tenant_id,
            PRODUCTS_TABLE,
            [p.row for p in catalogue],
            columns=PRODUCT_COLUMNS,
            run_id=run_id,
        )
        variants = write_partition(
            conn,
            tenant_id,
            VARIANTS_TABLE,
            [v for p in catalogue for v in p.variants],
            columns=VARIANT_COLUMNS,
            run_id=run_id,
        )
    after = max((p.updated_at for p in catalogue), default=None)
    rows = [p.row for p in catalogue]
    truncated = [p.row["slug"] for p in fetched if p.variants_truncated]
    if truncated:
        context.log.warning(
            f"{len(truncated)} products have more than {saleor.variants_per_product} variants; "
            f"raise variants_per_product: {', '.join(truncated[:10])}"
        )
    metadata = {
        "dagster/row_count": MetadataValue.int(written),
        "load": MetadataValue.text("full" if watermark is None else "incremental"),
        "watermark_before": MetadataValue.text(since or "(none: first load)"),
        "watermark_after": MetadataValue.text(iso(after) or "(empty catalogue)"),
        "products_fetched": MetadataValue.int(len(fetched)),
        "products_added": MetadataValue.int(len(merged.added)),
        "products_changed": MetadataValue.int(len(merged.changed)),
        "variants": MetadataValue.int(variants),
        "products_in_stock": MetadataValue.int(sum(1 for r in rows if r["in_stock"])),
        "products_out_of_stock": MetadataValue.int(sum(1 for r in rows if not r["in_stock"])),
        "variants_out_of_stock": MetadataValue.int(
            sum(1 for p in catalogue for v in p.variants if not v["in_stock"])
        ),
        "currencies": MetadataValue.text(
            ", ".join(sorted({r["currency"] for r in rows if r["currency"]})) or "-"
        ),
        "products_with_truncated_variants": MetadataValue.int(len(truncated)),
        "pages": MetadataValue.int(session.pages),
        "api_calls": MetadataValue.int(session.calls),
        "rate_limit_wait_s": MetadataValue.float(round(session.ledger.waited_s, 2)),
        "preview": preview_table(
            [
                {
                    "name": r["name"],
                    "category": r["category"],
                    "price": f"{r['price_min']}-{r['price_max']} {r['currency']}",
                    "variants": r["variant_count"],
                    "in_stock": r["in_stock"],
                    "updated_at": iso(r["updated_at"]),
                }
                for r in sorted(rows, key=lambda r: r["updated_at"], reverse=True)
            ]
        ),
    }
    yield MaterializeResult(asset_key="products", metadata=metadata)
    yield MaterializeResult(
        asset_key="product_variants",
        metadata={
            "dagster/row_count": MetadataValue.int(variants),
            "variants_out_of_stock": metadata["variants_out_of_stock"],
        },
    )


# --- orders ---------------------------------------------------------------------------------------


class OrdersConfig(Config):
    full_refresh: bool = Field(
        default=False,
        description="Refetch every order of the day instead of those updated since the day's watermark.",
    )


def day_bounds(day: date) -> tuple[str, str]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start.isoformat(), (start + timedelta(days=1, microseconds=-1)).isoformat()


def _stored_orders(conn, tenant_id: str, day: date) -> dict[str, Order]:
    cur = conn.cursor(row_factory=dict_row)
    orders = {
        row["order_id"]: Order({c: row[c] for c in ORDER_COLUMNS}, [])
        for row in cur.execute(
            f"SELECT * FROM {ORDERS_TABLE} WHERE tenant_id = %s AND order_date = %s", (tenant_id, day)
        )
    }
    for row in cur.execute(
        f"SELECT * FROM {LINES_TABLE} WHERE tenant_id = %s AND order_date = %s ORDER BY line_id",
        (tenant_id, day),
    ):
        if row["order_id"] in orders:
            orders[row["order_id"]].lines.append({c: row[c] for c in LINE_COLUMNS})
    return orders


@dataclass
class DayResult:
    day: date
    watermark_before: datetime | None
    watermark_after: datetime | None
    fetched: int
    added: int
    changed: int
    outside_day: int
    orders: list[dict[str, Any]] = field(default_factory=list)
    lines: int = 0


def refresh_day(
    session: SaleorSession, saleor: SaleorResource, tenant_id: str, day: date, full: bool, run_id
):
    warehouse = session.warehouse
    watermark = None
    if not full:
        rows = warehouse.query(
            tenant_id,
            f"SELECT max(updated_at) AS w FROM {ORDERS_TABLE} WHERE tenant_id = %s AND order_date = %s",
            (tenant_id, day),
        )
        watermark = rows[0]["w"]
    since = iso(watermark)
    first, last = day_bounds(day)
    nodes = session.fetch_all(
        "orders",
        day.isoformat(),
        lambda after: orders_body(
            first=saleor.orders_page_size, after=after, created_gte=first, created_lte=last, since=since
        ),
    )
    parsed = _parse_all(lambda node: parse_order(node, tenant_id), nodes, "order")
    # Saleor answered for the requested day; an order outside it belongs to another partition.
    fetched = [o for o in parsed if o.day == day]
    now = datetime.now(UTC)
    for order in fetched:
        order.row.update(fetched_at=now, dagster_run_id=run_id)
        for line in order.lines:
            line.update(fetched_at=now, dagster_run_id=run_id)
    with warehouse.tenant_transaction(tenant_id) as conn:
        _lock(conn, ORDERS_TABLE, tenant_id, day)
        stored = {} if watermark is None else _stored_orders(conn, tenant_id, day)
        merged = merge_by_update_time(stored, fetched)
        orders = sorted(merged.items.values(), key=lambda o: (o.row["created_at"], o.key))
        partition = {"order_date": day}
        write_partition(
            conn,
            tenant_id,
            ORDERS_TABLE,
            [o.row for o in orders],
            partition=partition,
            columns=ORDER_COLUMNS,
            run_id=run_id,
        )
        lines = write_partition(
            conn,
            tenant_id,
            LINES_TABLE,
            [line for o in orders for line in o.lines],
            partition=partition,
            columns=LINE_COLUMNS,
            run_id=run_id,
        )
    return DayResult(
        day=day,
        watermark_before=watermark,
        watermark_after=max((o.updated_at for o in orders), default=None),
        fetched=len(fetched),
        added=len(merged.added),
        changed=len(merged.changed),
        outside_day=len(parsed) - len(fetched),
        orders=[o.row for o in orders],
        lines=lines,
    )


def _revenue_text(orders: list[dict[str, Any]]) -> str:
    totals = revenue(orders)
    return ", ".join(f"{amount:.2f} {currency}" for currency, amount in sorted(totals.items())) or "0"


@multi_asset(
    name="orders",
    specs=[
        AssetSpec(
            "orders",
            group_name="ecommerce",
            kinds={"postgres", "api"},
            deps=["tenant_registry", saleor_api],
            metadata={"table": ORDERS_TABLE},
            description=(
                f"The orders created on each UTC day in {ORDERS_TABLE} (partition order_date). "
                "Re-running a day fetches only its orders updated since the day's watermark and merges "
                "them (status changes, refunds). Buyers are kept as per-tenant hashes of their emails, "
                "never the emails."
            ),
        ),
        AssetSpec(
            "order_lines",
            group_name="ecommerce",
            kinds={"postgres"},
            deps=["tenant_registry", saleor_api],
            metadata={"table": LINES_TABLE},
            description=f"The orders' lines in {LINES_TABLE}, in the same day partitions as their orders.",
        ),
    ],
    partitions_def=ecommerce_daily_partitions,
    # A window of days runs as one run per tenant (the demo's replay window, a backfill).
    backfill_policy=BackfillPolicy.single_run(),
    pool="saleor",
    can_subset=False,
)
def orders(
    context: AssetExecutionContext, config: OrdersConfig, warehouse: WarehouseResource, saleor: SaleorResource
):
    run_id = context.run.run_id
    results: list[DayResult] = []
    failure, calls, pages, waited = None, 0, 0, 0.0
    for tenant_id, days in run_partitions(context).items():
        settings = load_ecommerce_settings(warehouse, tenant_id)
        session, day = None, days[0]
        try:
            with SaleorSession(saleor, warehouse, tenant_id, settings.saleor_url, run_id) as session:
                for day in days:
                    result = refresh_day(session, saleor, tenant_id, day, config.full_refresh, run_id)
                    results.append(result)
                    context.log.info(
                        f"{tenant_id} {day}: {len(result.orders)} orders ({result.added} new, "
                        f"{result.changed} updated), revenue {_revenue_text(result.orders)}"
                    )
        except (SourceError, UnrecordedRequestError, PlatformError) as exc:
            done = [r.day.isoformat() for r in results]
            failure = (
                f"orders of {tenant_id} not refreshed from {day} on (days before it are committed: "
                f"{', '.join(done) or 'none'}; the stored rows of the others are kept): {exc}"
            )
        finally:
            if session is not None:
                calls, pages, waited = (
                    calls + session.calls,
                    pages + session.pages,
                    waited + session.ledger.waited_s,
                )
        if failure:
            break

    all_orders = [o for r in results for o in r.orders]
    metadata: dict[str, Any] = {
        "dagster/row_count": MetadataValue.int(len(all_orders)),
        "days": MetadataValue.int(len(results)),
        "lines": MetadataValue.int(sum(r.lines for r in results)),
        "orders_fetched": MetadataValue.int(sum(r.fetched for r in results)),
        "orders_added": MetadataValue.int(sum(r.added for r in results)),
        "orders_updated": MetadataValue.int(sum(r.changed for r in results)),
        "orders_outside_their_day": MetadataValue.int(sum(r.outside_day for r in results)),
        "pages": MetadataValue.int(pages),
        "api_calls": MetadataValue.int(calls),
        "rate_limit_wait_s": MetadataValue.float(round(waited, 2)),
        "revenue": MetadataValue.text(_revenue_text(all_orders)),
    }
    if len(results) == 1:
        only = results[0]
        metadata["watermark_before"] = MetadataValue.text(iso(only.watermark_before) or "(none: first load)")
        metadata["watermark_after"] = MetadataValue.text(iso(only.watermark_after) or "(no orders)")
        metadata["revenue_of_the_day"] = metadata["revenue"]
    elif results:
        metadata["by_day"] = MetadataValue.json(
            {
                r.day.isoformat(): {
                    "orders": len(r.orders),
                    "new": r.added,
                    "updated": r.changed,
                    "watermark_before": iso(r.watermark_before),
                    "watermark_after": iso(r.watermark_after),
                    "revenue": _revenue_text(r.orders),
                }
                for r in results
            }
        )
    metadata["preview"] = preview_table(
        [
            {
                "day": o["order_date"].isoformat(),
                "number": o["number"],
                "status": o["status"],
                "total": f"{o['total_gross']:.2f} {o['currency']}",
                "lines": o["line_count"],
                "updated_at": iso(o["updated_at"]),
            }
            for o in sorted(all_orders, key=lambda o: o["updated_at"], reverse=True)
        ]
    )
    if failure:
        raise Failure(description=failure, metadata=metadata)
    yield MaterializeResult(asset_key="orders", metadata=metadata)
    yield MaterializeResult(
        asset_key="order_lines",
        metadata={"dagster/row_count": MetadataValue.int(sum(r.lines for r in results))},
    )


# --- jobs and schedules -----------------------------------------------------------------------------

ecommerce_products_job = define_asset_job(
    "ecommerce_products_refresh",
    selection=[products],
    description="Refresh an e-commerce tenant's catalogue (products changed since the watermark).",
)
ecommerce_orders_job = define_asset_job(
    "ecommerce_orders_refresh",
    selection=[orders],
    description="Refresh an e-commerce tenant's orders for a window of days (one run per tenant).",
)


@schedule(job=ecommerce_products_job, cron_schedule="15 */4 * * *", execution_timezone="UTC")
def ecommerce_products_schedule(context):
    """Every e-commerce tenant's catalogue, every four hours: prices and stock move during the
    day, and an incremental refresh of an unchanged catalogue costs one request."""
    tenants = context.instance.get_dynamic_partitions(ecommerce_partitions.name)
    if not tenants:
        return SkipReason("no e-commerce tenants")
    return [
        RunRequest(
            run_key=f"{tenant_id}:{context.scheduled_execution_time:%Y-%m-%dT%H}",
            partition_key=tenant_id,
            tags={"bizosaas/trigger": "products_schedule"},
        )
        for tenant_id in tenants
    ]


def orders_window(instance, scheduled: datetime, lookback: int = ORDERS_LOOKBACK_DAYS) -> list[str]:
    """Yesterday plus the `lookback` days before it, as far as the partitions reach (in replay
    mode the days end at the replay date)."""
    days_def = next(
        d.partitions_def for d in ecommerce_daily_partitions.partitions_defs if d.name == DATE_DIMENSION
    )
    valid = set(days_def.get_partition_keys(dynamic_partitions_store=instance))
    yesterday = scheduled.astimezone(UTC).date() - timedelta(days=1)
    wanted = [(yesterday - timedelta(days=n)).isoformat() for n in range(lookback, -1, -1)]
    window = [d for d in wanted if d in valid]
    if not window and valid:
        # Replay mode: the calendar is past the recorded days; refresh the last recorded ones.
        window = sorted(valid)[-(lookback + 1) :]
    return window


@schedule(job=ecommerce_orders_job, cron_schedule="30 2 * * *", execution_timezone="UTC")
def ecommerce_orders_schedule(context):
    """Every e-commerce tenant, daily at 02:30 UTC: yesterday's orders plus the days before it
    (status changes and refunds arrive after an order is placed), one run per tenant."""
    from dagster import MultiPartitionKey

    tenants = context.instance.get_dynamic_partitions(ecommerce_partitions.name)
    window = orders_window(context.instance, context.scheduled_execution_time)
    if not tenants or not window:
        return SkipReason("no e-commerce tenants or no days to refresh")
    requests = []
    for tenant_id in tenants:
        start = MultiPartitionKey({TENANT_DIMENSION: tenant_id, DATE_DIMENSION: window[0]})
        end = MultiPartitionKey({TENANT_DIMENSION: tenant_id, DATE_DIMENSION: window[-1]})
        requests.append(
            RunRequest(
                run_key=f"{tenant_id}:{window[-1]}",
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: str(start),
                    ASSET_PARTITION_RANGE_END_TAG: str(end),
                    TENANT_TAG: tenant_id,
                    "bizosaas/trigger": "orders_schedule",
                },
            )
        )
    return requests
