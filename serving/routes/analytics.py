"""Reads of the dbt marts analysts also query, one route per domain's mart."""

from datetime import datetime
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from serving.auth import TenantScope
from serving.errors import ERROR_RESPONSES, ApiError
from serving.pagination import Page, PageParams, order_by, page_params, paged
from serving.responses import json_response
from serving.routes.directory import Category

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
