from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from orchestration.tenants import DOMAINS
from serving.auth import MasterScope
from serving.errors import ERROR_RESPONSES, ApiError
from serving.pagination import Page, PageParams, order_by, page_params, paged
from serving.responses import json_response

router = APIRouter(prefix="/api/brain/admin", tags=["admin"], responses=ERROR_RESPONSES)

TenantKind = Enum("TenantKind", {k: k for k in ("master", "client", "internal")}, type=str)
Domain = Enum("Domain", {d: d for d in DOMAINS}, type=str)
SORTABLE = (
    "tenant_id",
    "display_name",
    "kind",
    "tier",
    "total_rows",
    "last_materialized_at",
    "freshness_hours",
)
TENANT_ID_PATH = Path(pattern=r"^[a-z][a-z0-9_]{1,62}$", description="Tenant id")


class TenantOverview(BaseModel):
    tenant_id: str
    display_name: str
    kind: str
    parent_tenant_id: str | None
    tier: str
    domains: list[str]
    status: str
    row_counts: dict[str, int]
    total_rows: int
    tables_loaded: int
    domains_loaded: list[str]
    last_materialized_at: datetime | None
    profile_materialized_at: datetime | None
    freshness_hours: float | None
    readable_tenant_count: int
    built_at: datetime


_COLUMNS = ", ".join(TenantOverview.model_fields)


async def _overview(request: Request, tenant: str, where: str, params: list[Any], extra: str = ""):
    try:
        return await request.app.state.db.fetch(
            tenant, f"SELECT {_COLUMNS}{extra} FROM marts.tenant_overview WHERE {where}", params
        )
    except psycopg.errors.UndefinedTable:
        raise ApiError(503, "the overview mart is not built yet; run `bizosaas materialize`") from None


@router.get(
    "/tenants", response_model=Page[TenantOverview], summary="Overview of every tenant the master may read"
)
async def list_tenants(
    request: Request,
    scope: MasterScope,
    page: Annotated[PageParams, Depends(page_params)],
    kind: Annotated[TenantKind | None, Query(description="Only tenants of this kind")] = None,
    domain: Annotated[Domain | None, Query(description="Only tenants subscribing to this domain")] = None,
    sort: Annotated[
        str | None,
        Query(description=f"Comma-separated, '-' for descending: {', '.join(SORTABLE)}", max_length=200),
    ] = None,
):
    clauses, params = ["true"], []
    if kind is not None:
        clauses.append("kind = %s")
        params.append(kind.value)
    if domain is not None:
        clauses.append("%s = ANY(domains)")
        params.append(domain.value)
    rows = await _overview(
        request,
        scope.tenant_id,
        f"{' AND '.join(clauses)} ORDER BY {order_by(sort, SORTABLE, 'tenant_id')} LIMIT %s OFFSET %s",
        [*params, page.limit, page.offset],
        extra=", count(*) OVER () AS _total",
    )
    total = rows[0].pop("_total") if rows else 0
    for row in rows[1:]:
        row.pop("_total")
    return json_response(paged(rows, page, total))


@router.get(
    "/tenants/{tenant_id}/overview",
    response_model=TenantOverview,
    summary="One tenant's overview (master tenant only)",
)
async def tenant_overview(request: Request, scope: MasterScope, tenant_id: Annotated[str, TENANT_ID_PATH]):
    rows = await _overview(request, scope.tenant_id, "tenant_id = %s", [tenant_id])
    if not rows:
        raise ApiError(404, f"no overview for tenant {tenant_id!r}")
    return json_response(rows[0])
