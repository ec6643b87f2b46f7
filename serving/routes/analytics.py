"""Reads of the dbt marts analysts also query, one route per domain's mart."""

from datetime import date, datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from serving.auth import TenantScope
from serving.errors import ERROR_RESPONSES, ApiError
from serving.pagination import Page, PageParams, order_by, page_params, paged, sort_param
from serving.responses import json_response
from serving.routes.directory import Category
from serving.routes.quanttrade import Stage, Status, TradingScope, filter_names
from serving.routes.saleor import _mart

router = APIRouter(prefix="/api/brain/analytics", tags=["analytics"], responses=ERROR_RESPONSES)


class DirectoryCoverage(BaseModel):
    tenant_id: str
    category: str
    city: str
    businesses: int
    missing_businesses: int
    share_with_phone: float | None
    share_with_website: float | None
    share_with_opening_hours: float | None
    share_verified: float | None
    avg_sources_per_business: float | None
    last_seen_at: datetime | None
    last_verified_at: datetime | None
    freshness_hours: float | None
    built_at: datetime


DIRECTORY_SORTABLE = (
    "category",
    "city",
    "businesses",
    "share_with_phone",
    "share_with_website",
    "share_with_opening_hours",
    "freshness_hours",
)
_DIRECTORY_COLUMNS = ", ".join(DirectoryCoverage.model_fields)


@router.get(
    "/directory",
    response_model=Page[DirectoryCoverage],
    summary="Directory coverage and listing completeness by category and city (dbt mart)",
)
async def directory_coverage(
    request: Request,
    scope: TenantScope,
    page: Annotated[PageParams, Depends(page_params)],
    category: Annotated[Category | None, Query(description="Top-level category")] = None,
    city: Annotated[str | None, Query(max_length=120, description="City, exact (case-insensitive)")] = None,
    sort: Annotated[
        str | None,
        Query(
            description=f"Comma-separated, '-' for descending: {', '.join(DIRECTORY_SORTABLE)}",
            max_length=200,
        ),
    ] = None,
):
    clauses, params = ["true"], []
    if category is not None:
        clauses.append("category = %s")
        params.append(category.value)
    if city is not None:
        clauses.append("lower(city) = lower(%s)")
        params.append(city.strip())
    try:
        rows = await request.app.state.db.fetch(
            scope.tenant_id,
            f"""SELECT {_DIRECTORY_COLUMNS}, count(*) OVER () AS _total FROM marts.directory_coverage
                 WHERE {" AND ".join(clauses)}
                 ORDER BY {order_by(sort, DIRECTORY_SORTABLE, "-businesses,category,city")},
                          tenant_id, category, city
                 LIMIT %s OFFSET %s""",
            [*params, page.limit, page.offset],
        )
    except psycopg.errors.UndefinedTable:
        raise ApiError(503, "the directory mart is not built yet; run `bizosaas materialize`") from None
    if rows:
        total = rows[0]["_total"]
    else:  # past the last page, or nothing matches: the count alone
        counted = await request.app.state.db.fetch(
            scope.tenant_id,
            f"SELECT count(*) AS n FROM marts.directory_coverage WHERE {' AND '.join(clauses)}",
            params,
        )
        total = counted[0]["n"]
    for row in rows:
        del row["_total"]
    return json_response(paged(rows, page, total))


# --- QuantTrade (closed to every tenant but the trading desk and the master) --------------------


class StrategyLeaderboard(BaseModel):
    tenant_id: str
    candidate_id: str
    strategy: str
    params: dict[str, Any]
    symbol: str
    asset_class: str
    rank: int
    score: float | None
    backtest_start: date
    backtest_end: date
    backtest_return: float
    backtest_annual_return: float | None
    backtest_sharpe: float | None
    backtest_max_drawdown: float
    backtest_win_rate: float | None
    backtest_trades: int
    backtest_profit_factor: float | None
    backtest_positive_month_share: float | None
    passed_backtest: bool
    forward_start: date | None
    forward_end: date | None
    forward_return: float | None
    forward_sharpe: float | None
    forward_max_drawdown: float | None
    forward_trades: int | None
    forward_positive_month_share: float | None
    performance_gap: float | None
    gap_within_target: bool | None
    passed_forward: bool | None
    passed_risk: bool | None
    risk_breaches: list[str]
    stage: str
    status: str
    decided_at: datetime | None
    decided_by: str | None
    built_at: datetime


class ValidationFunnel(BaseModel):
    tenant_id: str
    strategy: str
    is_total: bool
    candidates: int
    passed_backtest: int
    forward_tested: int
    passed_forward: int
    risk_assessed: int
    passed_risk: int
    pending: int
    approved: int
    rejected: int
    withdrawn: int
    backtest_pass_rate: float
    forward_pass_rate: float | None
    risk_pass_rate: float | None
    overall_pass_rate: float
    median_gap: float | None
    share_within_target: float | None
    avg_forward_positive_month_share: float | None
    best_forward_sharpe: float | None
    built_at: datetime


LEADERBOARD_SORTABLE = (
    "rank",
    "score",
    "backtest_sharpe",
    "backtest_return",
    "forward_return",
    "performance_gap",
    "backtest_max_drawdown",
    "strategy",
    "symbol",
)


@router.get(
    "/quanttrade",
    response_model=Page[StrategyLeaderboard],
    summary="QuantTrade's strategy leaderboard (dbt mart): in-sample and forward metrics, gap, risk, "
    "status; ranked by forward Sharpe",
)
async def quanttrade_leaderboard(
    request: Request,
    scope: TradingScope,
    page: Annotated[PageParams, Depends(page_params)],
    strategy: Annotated[str | None, Query(max_length=60, description="Strategy name")] = None,
    symbol: Annotated[str | None, Query(max_length=30, description="Symbol")] = None,
    status: Annotated[Status | None, Query(description="failed, testing, pending, approved, ...")] = None,
    stage: Annotated[Stage | None, Query(description="The last stage reached")] = None,
    sort: sort_param(LEADERBOARD_SORTABLE, "rank") = None,
):
    where, params = [], []
    filter_names(where, params, strategy, symbol)
    for column, value in (("status", status), ("stage", stage)):
        if value is not None:
            where.append(f"t.{column} = %s")
            params.append(value.value)
    ordering = order_by(sort, LEADERBOARD_SORTABLE, "rank")
    return await _mart(
        request,
        scope,
        "quanttrade_strategy_leaderboard",
        StrategyLeaderboard,
        where,
        params,
        f"{ordering}, t.tenant_id, t.candidate_id",
        page,
    )


FUNNEL_SORTABLE = ("strategy", "candidates", "overall_pass_rate", "median_gap", "share_within_target")


@router.get(
    "/quanttrade/funnel",
    response_model=Page[ValidationFunnel],
    summary="QuantTrade's validation funnel (dbt mart): per strategy and overall ('all'), stage pass "
    "rates, queue, median gap and share within 15 %",
)
async def quanttrade_funnel(
    request: Request,
    scope: TradingScope,
    page: Annotated[PageParams, Depends(page_params)],
    strategy: Annotated[
        str | None, Query(max_length=60, description="Strategy name, or 'all' for the totals")
    ] = None,
    sort: sort_param(FUNNEL_SORTABLE, "the total row first, then strategy") = None,
):
    where, params = [], []
    filter_names(where, params, strategy, None)
    ordering = order_by(sort, FUNNEL_SORTABLE, "strategy") if sort else "t.is_total DESC, t.strategy"
    return await _mart(
        request,
        scope,
        "quanttrade_validation_funnel",
        ValidationFunnel,
        where,
        params,
        f"{ordering}, t.tenant_id, t.strategy",
        page,
    )
