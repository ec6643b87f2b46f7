"""E-commerce reads: the tenant's Saleor catalogue (with variants) and orders (with lines), and the
e-commerce marts analysts also query. Buyers appear only as customer keys (per-tenant hashes of
their emails)."""

from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from ml.ecommerce.saleor import ORDER_STATUSES
from serving.auth import Scope, TenantScope
from serving.errors import ERROR_RESPONSES, ApiError
from serving.pagination import Page, PageParams, order_by, page_params, paged
from serving.responses import json_response

router = APIRouter(prefix="/api/brain/saleor", tags=["ecommerce"], responses=ERROR_RESPONSES)
analytics_router = APIRouter(
    prefix="/api/brain/analytics/ecommerce", tags=["analytics"], responses=ERROR_RESPONSES
)

OrderStatus = Enum("OrderStatus", {s: s for s in ORDER_STATUSES}, type=str)
MAX_AMOUNT = 1_000_000_000.0


class Variant(BaseModel):
    variant_id: str
    sku: str | None
    name: str
    price: float | None
    currency: str | None
    quantity_available: int | None
    track_inventory: bool
    in_stock: bool


class Product(BaseModel):
    tenant_id: str
    product_id: str
    name: str
    slug: str
    category: str | None
    product_type: str | None
    currency: str | None
    price_min: float | None
    price_max: float | None
    variant_count: int
    variants_in_stock: int
    quantity_available: int | None
    in_stock: bool
    created_at: datetime
    updated_at: datetime
    fetched_at: datetime
    variants: list[Variant]


class OrderLine(BaseModel):
    line_id: str
    product_id: str | None
    variant_id: str | None
    product_name: str
    variant_name: str | None
    sku: str | None
    quantity: int
    unit_price_gross: float
    total_gross: float
    currency: str


class Order(BaseModel):
    tenant_id: str
    order_id: str
    order_date: date
    number: str
    status: str
    charge_status: str | None
    authorize_status: str | None
    channel: str | None
    created_at: datetime
    updated_at: datetime
    currency: str
    total_gross: float
    total_net: float | None
    shipping_gross: float
    line_count: int
    units: int
    customer_key: str | None
    lines: list[OrderLine]


def _single_tenant(scope: Scope) -> bool:
    # RLS already limits rows to the scope; saying which tenant lets Postgres use the
    # (tenant_id, ...) indexes. A master acting as itself reads its clients too.
    return not (scope.principal.is_master and scope.tenant_id == scope.principal.tenant_id)


def _like(text: str) -> str:
    escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _check_range(low, high, names: str) -> None:
    if low is not None and high is not None and low > high:
        raise ApiError(422, f"{names}: the lower bound {low} is above the upper bound {high}")


async def _page(
    request: Request, scope: Scope, table: str, columns: str, where: str, params, sort: str, page
):
    """One page of `table` (alias t) with the total as a scalar subquery (computed once, not a
    window over every matching row), or the total alone past the last page."""
    db = request.app.state.db
    rows = await db.fetch(
        scope.tenant_id,
        f"""SELECT {columns}, (SELECT count(*) FROM {table} t WHERE {where}) AS _total
              FROM {table} t WHERE {where}
             ORDER BY {sort} LIMIT %s OFFSET %s""",
        [*params, *params, page.limit, page.offset],
    )
    if rows:
        total = rows[0]["_total"]
    else:
        total = (
            await db.fetch(scope.tenant_id, f"SELECT count(*) AS n FROM {table} t WHERE {where}", params)
        )[0]["n"]
    for row in rows:
        del row["_total"]
    return json_response(paged(rows, page, total))


# --- products -----------------------------------------------------------------------------------

PRODUCT_SORTABLE = (
    "name",
    "category",
    "price_min",
    "price_max",
    "quantity_available",
    "variant_count",
    "created_at",
    "updated_at",
)
_VARIANT_FIELDS = ", ".join(f"'{f}', v.{f}" for f in Variant.model_fields)
_PRODUCT_COLUMNS = ", ".join(f"t.{f}" for f in Product.model_fields if f != "variants") + (
    f""", coalesce((SELECT json_agg(json_build_object({_VARIANT_FIELDS}) ORDER BY v.name, v.variant_id)
                      FROM core.ecommerce_product_variants v
                     WHERE v.tenant_id = t.tenant_id AND v.product_id = t.product_id), '[]'::json)
       AS variants"""
)


@router.get(
    "/products",
    response_model=Page[Product],
    summary="The tenant's Saleor catalogue with variants: text query, category, stock, price range",
)
async def list_products(
    request: Request,
    scope: TenantScope,
    page: Annotated[PageParams, Depends(page_params)],
    q: Annotated[
        str | None, Query(max_length=200, description="Text in the name or slug, or in a variant's SKU")
    ] = None,
    category: Annotated[
        str | None, Query(max_length=120, description="Category, exact (case-insensitive)")
    ] = None,
    in_stock: Annotated[
        bool | None, Query(description="true: some variant can be sold; false: every variant is out")
    ] = None,
    min_price: Annotated[
        float | None, Query(ge=0, le=MAX_AMOUNT, description="Products with a price at or above this")
    ] = None,
    max_price: Annotated[
        float | None, Query(ge=0, le=MAX_AMOUNT, description="Products with a price at or below this")
    ] = None,
    sort: Annotated[
        str | None,
        Query(
            description=f"Comma-separated, '-' for descending: {', '.join(PRODUCT_SORTABLE)}", max_length=200
        ),
    ] = None,
):
    _check_range(min_price, max_price, "min_price/max_price")
    clauses, params = ["true"], []
    if _single_tenant(scope):
        clauses.append("t.tenant_id = %s")
        params.append(scope.tenant_id)
    if q is not None and q.strip():
        pattern = _like(q)
        # The SKU match as one pass over the variants (a hashed IN), not one probe per product.
        clauses.append(
            "(t.name ILIKE %s OR t.slug ILIKE %s OR (t.tenant_id, t.product_id) IN"
            " (SELECT v.tenant_id, v.product_id FROM core.ecommerce_product_variants v WHERE v.sku ILIKE %s))"
        )
        params += [pattern, pattern, pattern]
    if category is not None:
        if not category.strip():
            raise ApiError(422, "category: must not be blank")
        clauses.append("lower(t.category) = lower(%s)")
        params.append(category.strip())
    if in_stock is not None:
        clauses.append("t.in_stock = %s")
        params.append(in_stock)
    # A product matches a price bound when some of its price range lies inside it.
    if min_price is not None:
        clauses.append("t.price_max >= %s")
        params.append(min_price)
    if max_price is not None:
        clauses.append("t.price_min <= %s")
        params.append(max_price)
    ordering = order_by(sort, PRODUCT_SORTABLE, "name")
    return await _page(
        request,
        scope,
        "core.ecommerce_products",
        _PRODUCT_COLUMNS,
        " AND ".join(clauses),
        params,
        f"{ordering}, t.tenant_id, t.product_id",
        page,
    )


# --- orders -------------------------------------------------------------------------------------

ORDER_SORTABLE = ("created_at", "updated_at", "order_date", "total_gross", "units", "status")
_LINE_FIELDS = ", ".join(f"'{f}', l.{f}" for f in OrderLine.model_fields)
_ORDER_COLUMNS = ", ".join(f"t.{f}" for f in Order.model_fields if f != "lines") + (
    f""", coalesce((SELECT json_agg(json_build_object({_LINE_FIELDS}) ORDER BY l.line_id)
                      FROM core.ecommerce_order_lines l
                     WHERE l.tenant_id = t.tenant_id AND l.order_id = t.order_id), '[]'::json) AS lines"""
)


@router.get(
    "/orders",
    response_model=Page[Order],
    summary="The tenant's Saleor orders with lines: status, UTC day range, order total",
)
async def list_orders(
    request: Request,
    scope: TenantScope,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[OrderStatus | None, Query(description="Saleor order status")] = None,
    from_: Annotated[
        date | None, Query(alias="from", description="Orders created on or after this UTC day (YYYY-MM-DD)")
    ] = None,
    to: Annotated[
        date | None, Query(description="Orders created on or before this UTC day (YYYY-MM-DD)")
    ] = None,
    min_total: Annotated[
        float | None, Query(ge=0, le=MAX_AMOUNT, description="Gross total at or above this")
    ] = None,
    max_total: Annotated[
        float | None, Query(ge=0, le=MAX_AMOUNT, description="Gross total at or below this")
    ] = None,
    customer_key: Annotated[
        str | None, Query(pattern=r"^[0-9a-f]{32}$", description="One customer's orders (their customer key)")
    ] = None,
    sort: Annotated[
        str | None,
        Query(
            description=f"Comma-separated, '-' for descending: {', '.join(ORDER_SORTABLE)}", max_length=200
        ),
    ] = None,
):
    _check_range(from_, to, "from/to")
    _check_range(min_total, max_total, "min_total/max_total")
    clauses, params = ["true"], []
    if _single_tenant(scope):
        clauses.append("t.tenant_id = %s")
        params.append(scope.tenant_id)
    filters: list[tuple[str, Any]] = [
        ("t.status = %s", status.value if status else None),
        ("t.order_date >= %s", from_),
        ("t.order_date <= %s", to),
        ("t.total_gross >= %s", min_total),
        ("t.total_gross <= %s", max_total),
        ("t.customer_key = %s", customer_key),
    ]
    for clause, value in filters:
        if value is not None:
            clauses.append(clause)
            params.append(value)
    ordering = order_by(sort, ORDER_SORTABLE, "-created_at")
    return await _page(
        request,
        scope,
        "core.ecommerce_orders",
        _ORDER_COLUMNS,
        " AND ".join(clauses),
        params,
        f"{ordering}, t.tenant_id, t.order_id",
        page,
    )


# --- the marts ----------------------------------------------------------------------------------


class RevenueDay(BaseModel):
    tenant_id: str
    order_date: date
    currency: str
    orders: int
    revenue_gross: float
    revenue_net: float
    shipping_gross: float
    avg_order_value: float | None
    units: int
    customers: int
    all_orders: int
    canceled_orders: int
    returned_orders: int
    orders_by_status: dict[str, int]
    last_order_update_at: datetime | None
    built_at: datetime


class TopProduct(BaseModel):
    tenant_id: str
    product_key: str
    product_id: str | None
    product_name: str
    category: str | None
    currency: str
    units: int
    revenue: float
    orders: int
    revenue_share: float | None
    revenue_rank: int
    units_rank: int
    first_sold_on: date
    last_sold_on: date
    in_stock: bool | None
    built_at: datetime


class StockOut(BaseModel):
    tenant_id: str
    variant_id: str
    product_id: str
    product_name: str
    category: str | None
    sku: str | None
    variant_name: str
    price: float | None
    currency: str | None
    quantity_available: int | None
    product_variants: int
    product_variants_out: int
    product_out_of_stock: bool
    units_sold_last_30_days: int
    product_updated_at: datetime
    built_at: datetime


async def _mart(request, scope, mart: str, model, where: list[str], params, sort: str, page):
    columns = ", ".join(f"t.{f}" for f in model.model_fields)
    if _single_tenant(scope):
        where = [*where, "t.tenant_id = %s"]
        params = [*params, scope.tenant_id]
    try:
        return await _page(
            request, scope, f"marts.{mart}", columns, " AND ".join(["true", *where]), params, sort, page
        )
    except psycopg.errors.UndefinedTable:
        raise ApiError(503, f"the {mart} mart is not built yet; run `bizosaas materialize`") from None


def _sort_param(allowed: tuple[str, ...]):
    return Query(description=f"Comma-separated, '-' for descending: {', '.join(allowed)}", max_length=200)


REVENUE_SORTABLE = ("order_date", "revenue_gross", "orders", "avg_order_value", "units", "customers")


@analytics_router.get(
    "",
    response_model=Page[RevenueDay],
    summary="E-commerce revenue by day (dbt mart): orders, revenue, average order value, by status",
)
async def revenue_by_day(
    request: Request,
    scope: TenantScope,
    page: Annotated[PageParams, Depends(page_params)],
    from_: Annotated[date | None, Query(alias="from", description="First UTC day (YYYY-MM-DD)")] = None,
    to: Annotated[date | None, Query(description="Last UTC day (YYYY-MM-DD)")] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")] = None,
    sort: Annotated[str | None, _sort_param(REVENUE_SORTABLE)] = None,
):
    _check_range(from_, to, "from/to")
    where, params = [], []
    for clause, value in (
        ("t.order_date >= %s", from_),
        ("t.order_date <= %s", to),
        ("t.currency = %s", currency),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    ordering = order_by(sort, REVENUE_SORTABLE, "-order_date")
    return await _mart(
        request,
        scope,
        "ecommerce_revenue_by_day",
        RevenueDay,
        where,
        params,
        f"{ordering}, t.tenant_id, t.currency",
        page,
    )


TOP_SORTABLE = ("revenue_rank", "units_rank", "revenue", "units", "orders", "product_name", "last_sold_on")


@analytics_router.get(
    "/top-products",
    response_model=Page[TopProduct],
    summary="Best-selling products (dbt mart): units, revenue, share and rank",
)
async def top_products(
    request: Request,
    scope: TenantScope,
    page: Annotated[PageParams, Depends(page_params)],
    category: Annotated[
        str | None, Query(max_length=120, description="Category, exact (case-insensitive)")
    ] = None,
    currency: Annotated[str | None, Query(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")] = None,
    sort: Annotated[str | None, _sort_param(TOP_SORTABLE)] = None,
):
    where, params = [], []
    if category is not None:
        where.append("lower(t.category) = lower(%s)")
        params.append(category.strip())
    if currency is not None:
        where.append("t.currency = %s")
        params.append(currency)
    ordering = order_by(sort, TOP_SORTABLE, "revenue_rank")
    return await _mart(
        request,
        scope,
        "ecommerce_top_products",
        TopProduct,
        where,
        params,
        f"{ordering}, t.tenant_id, t.product_key",
        page,
    )


STOCK_OUT_SORTABLE = ("units_sold_last_30_days", "product_name", "category", "price", "product_updated_at")


@analytics_router.get(
    "/stock-outs",
    response_model=Page[StockOut],
    summary="Variants out of stock, and products whose every variant is out (dbt mart)",
)
async def stock_outs(
    request: Request,
    scope: TenantScope,
    page: Annotated[PageParams, Depends(page_params)],
    category: Annotated[
        str | None, Query(max_length=120, description="Category, exact (case-insensitive)")
    ] = None,
    product_out_of_stock: Annotated[
        bool | None, Query(description="true: only products with every variant out")
    ] = None,
    sort: Annotated[str | None, _sort_param(STOCK_OUT_SORTABLE)] = None,
):
    where, params = [], []
    if category is not None:
        where.append("lower(t.category) = lower(%s)")
        params.append(category.strip())
    if product_out_of_stock is not None:
        where.append("t.product_out_of_stock = %s")
        params.append(product_out_of_stock)
    ordering = order_by(sort, STOCK_OUT_SORTABLE, "-units_sold_last_30_days,product_name")
    return await _mart(
        request,
        scope,
        "ecommerce_stock_outs",
        StockOut,
        where,
        params,
        f"{ordering}, t.tenant_id, t.variant_id",
        page,
    )
