"""Blocking Great Expectations checks on the e-commerce tables, run where the data is made.

Amounts are compared in SQL as exact numerics and only then handed to pandas, so "the total
equals its lines plus shipping" holds to the cent, not to a float's last bit.
"""

import pandas as pd
from dagster import AssetCheckExecutionContext, AssetKey, asset_check

from assets.ecommerce import (
    LINES_TABLE,
    ORDERS_TABLE,
    PRODUCTS_TABLE,
    VARIANTS_TABLE,
)
from ml.ecommerce.money import CURRENCIES
from ml.ecommerce.saleor import ORDER_STATUSES
from orchestration.partitions import run_partitions
from orchestration.quality import skipped_check, validate
from orchestration.warehouse import WarehouseResource

# Half a cent: amounts are stored in their currency's minor unit, so any real difference is at
# least one cent and float conversion never reaches this.
CENT_TOLERANCE = 0.005
KNOWN_CURRENCIES = sorted(CURRENCIES)


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


@asset_check(
    asset=AssetKey("products"),
    blocking=True,
    description=(
        "The tenant's catalogue: no duplicate products (ids or slugs), names, non-negative prices "
        "with price_min <= price_max, and currencies from the ISO 4217 list."
    ),
)
def products_catalogue_valid(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    if not context.has_partition_key:
        return skipped_check()
    tenant_id = context.partition_key
    columns = ["product_id", "slug", "name", "currency", "price_min", "price_max"]
    rows = warehouse.query(
        tenant_id,
        f"""SELECT product_id, slug, name, currency, price_min::float8, price_max::float8
              FROM {PRODUCTS_TABLE} WHERE tenant_id = %s""",
        (tenant_id,),
    )
    return validate(
        "ecommerce_products",
        _frame(rows, columns),
        lambda gxe: [
            gxe.ExpectColumnValuesToBeUnique(column="product_id"),
            gxe.ExpectColumnValuesToBeUnique(column="slug"),
            gxe.ExpectColumnValueLengthsToBeBetween(column="name", min_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="price_min", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="price_max", min_value=0),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="price_max",
                column_B="price_min",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            ),
            gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=KNOWN_CURRENCIES),
        ],
    )


@asset_check(
    asset=AssetKey("product_variants"),
    blocking=True,
    description=(
        "The tenant's variants: no duplicate SKUs, non-negative prices and stock, ISO 4217 currencies."
    ),
)
def product_variants_valid(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    if not context.has_partition_key:
        return skipped_check()
    tenant_id = context.partition_key
    columns = ["variant_id", "sku", "price", "currency", "quantity_available"]
    rows = warehouse.query(
        tenant_id,
        f"""SELECT variant_id, sku, price::float8, currency, quantity_available
              FROM {VARIANTS_TABLE} WHERE tenant_id = %s""",
        (tenant_id,),
    )
    return validate(
        "ecommerce_product_variants",
        _frame(rows, columns),
        lambda gxe: [
            gxe.ExpectColumnValuesToBeUnique(column="variant_id"),
            gxe.ExpectColumnValuesToBeUnique(column="sku"),
            gxe.ExpectColumnValuesToBeBetween(column="price", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="quantity_available", min_value=0),
            gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=KNOWN_CURRENCIES),
        ],
    )


def _orders_of_run(context, warehouse: WarehouseResource) -> list[dict]:
    rows = []
    for tenant_id, days in run_partitions(context).items():
        rows += warehouse.query(
            tenant_id,
            f"""WITH lines AS (
                    SELECT order_id, sum(total_gross) AS gross, count(*) AS n
                      FROM {LINES_TABLE} WHERE tenant_id = %(t)s AND order_date = ANY(%(d)s)
                     GROUP BY order_id)
                SELECT o.tenant_id, o.order_id, o.number, o.status, o.currency,
                       o.total_gross::float8, o.shipping_gross::float8,
                       (o.total_gross - o.shipping_gross - coalesce(l.gross, 0))::float8
                           AS total_minus_lines_and_shipping,
                       o.line_count - coalesce(l.n, 0) AS lines_missing
                  FROM {ORDERS_TABLE} o LEFT JOIN lines l USING (order_id)
                 WHERE o.tenant_id = %(t)s AND o.order_date = ANY(%(d)s)""",
            {"t": tenant_id, "d": days},
        )
    return rows


@asset_check(
    asset=AssetKey("orders"),
    blocking=True,
    description=(
        "Orders of the run's days: every total equals the sum of its stored lines plus shipping (to "
        "the cent), every line stored, no duplicate order numbers, non-negative amounts, Saleor's "
        "statuses and ISO 4217 currencies."
    ),
)
def orders_totals_valid(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    if not (context.has_partition_key or context.has_partition_key_range):
        return skipped_check()
    columns = [
        "tenant_id",
        "order_id",
        "number",
        "status",
        "currency",
        "total_gross",
        "shipping_gross",
        "total_minus_lines_and_shipping",
        "lines_missing",
    ]
    return validate(
        "ecommerce_orders",
        _frame(_orders_of_run(context, warehouse), columns),
        lambda gxe: [
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["tenant_id", "order_id"]),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["tenant_id", "number"]),
            gxe.ExpectColumnValuesToBeBetween(
                column="total_minus_lines_and_shipping", min_value=-CENT_TOLERANCE, max_value=CENT_TOLERANCE
            ),
            gxe.ExpectColumnValuesToBeBetween(column="lines_missing", min_value=0, max_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="total_gross", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="shipping_gross", min_value=0),
            gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(ORDER_STATUSES)),
            gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=KNOWN_CURRENCIES),
        ],
    )


@asset_check(
    asset=AssetKey("order_lines"),
    blocking=True,
    description=(
        "Order lines of the run's days: positive quantities, non-negative prices, each line's total "
        "equal to unit price x quantity (to the cent), and in its order's currency."
    ),
)
def order_lines_valid(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    if not (context.has_partition_key or context.has_partition_key_range):
        return skipped_check()
    rows = []
    for tenant_id, days in run_partitions(context).items():
        rows += warehouse.query(
            tenant_id,
            f"""SELECT l.line_id, l.quantity, l.unit_price_gross::float8, l.total_gross::float8,
                       (l.total_gross - l.unit_price_gross * l.quantity)::float8
                           AS total_minus_unit_x_quantity,
                       l.currency, o.currency AS order_currency
                  FROM {LINES_TABLE} l JOIN {ORDERS_TABLE} o USING (tenant_id, order_id)
                 WHERE l.tenant_id = %s AND l.order_date = ANY(%s)""",
            (tenant_id, days),
        )
    columns = [
        "line_id",
        "quantity",
        "unit_price_gross",
        "total_gross",
        "total_minus_unit_x_quantity",
        "currency",
        "order_currency",
    ]
    return validate(
        "ecommerce_order_lines",
        _frame(rows, columns),
        lambda gxe: [
            gxe.ExpectColumnValuesToBeBetween(column="quantity", min_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="unit_price_gross", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="total_gross", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(
                column="total_minus_unit_x_quantity", min_value=-CENT_TOLERANCE, max_value=CENT_TOLERANCE
            ),
            gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=KNOWN_CURRENCIES),
            gxe.ExpectColumnPairValuesToBeEqual(column_A="currency", column_B="order_currency"),
        ],
    )
