"""Business Directory reads: the tenant's businesses master, searchable by text, category and
distance. Every listing carries its attribution: the data is © OpenStreetMap contributors
(ODbL), which must be credited wherever it is shown."""

import math
import re
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from ml.directory.normalize import CATEGORIES, EARTH_RADIUS_M
from ml.directory.search import city_key, prefix_range, query_words
from serving.auth import TenantScope
from serving.errors import ERROR_RESPONSES, ApiError
from serving.pagination import Page, PageParams, order_by, page_params, paged
from serving.responses import json_response

router = APIRouter(prefix="/api/brain/directory", tags=["directory"], responses=ERROR_RESPONSES)

Category = Enum("Category", {c: c for c in CATEGORIES}, type=str)
Status = Enum("Status", {s: s for s in ("active", "missing", "all")}, type=str)
SORTABLE = ("name", "category", "city", "last_seen", "first_seen", "distance_m")
NEAR_PATTERN = re.compile(r"^\s*(-?\d{1,2}(?:\.\d+)?)\s*,\s*(-?\d{1,3}(?:\.\d+)?)\s*$")
METRES_PER_DEGREE = 111_320.0
MAX_RADIUS_KM = 100.0


class Business(BaseModel):
    tenant_id: str
    business_id: str
    name: str
    category: str
    subcategory: str
    cuisine: list[str] | None
    lat: float
    lon: float
    street: str | None
    housenumber: str | None
    postcode: str | None
    city: str | None
    state: str | None
    country_code: str | None
    phone: str | None
    website: str | None
    email: str | None
    opening_hours: dict | None
    opening_hours_raw: str | None
    sources: list[str]
    status: str
    first_seen: datetime
    last_seen: datetime
    verified_at: datetime | None
    attribution: str
    distance_m: float | None


_COLUMNS = ", ".join(f for f in Business.model_fields if f != "distance_m")
# Haversine in SQL, the same formula as ml.directory.normalize.distance_m.
_DISTANCE = (
    f"{EARTH_RADIUS_M} * 2 * asin(sqrt(power(sin(radians(lat - %s) / 2), 2)"
    " + cos(radians(%s)) * cos(radians(lat)) * power(sin(radians(lon - %s) / 2), 2)))"
)


def parse_near(near: str) -> tuple[float, float]:
    match = NEAR_PATTERN.match(near)
    lat, lon = (float(match.group(1)), float(match.group(2))) if match else (None, None)
    if lat is None or not -90 <= lat <= 90 or not -180 <= lon <= 180:
        raise ApiError(422, f"near: expected 'lat,lon' in degrees (e.g. 30.2672,-97.7431), got {near!r}")
    return lat, lon


@router.get(
    "/businesses",
    response_model=Page[Business],
    summary="The tenant's businesses: text query, category, distance from a point, paging",
)
async def list_businesses(
    request: Request,
    scope: TenantScope,
    page: Annotated[PageParams, Depends(page_params)],
    q: Annotated[
        str | None,
        Query(max_length=200, description="Words that start words of the name, subcategory or cuisine"),
    ] = None,
    category: Annotated[Category | None, Query(description="Top-level category")] = None,
    city: Annotated[str | None, Query(max_length=120, description="City, exact (case-insensitive)")] = None,
    near: Annotated[
        str | None, Query(max_length=60, description="'lat,lon': only businesses around it")
    ] = None,
    radius_km: Annotated[
        float | None, Query(gt=0, le=MAX_RADIUS_KM, description="Radius around `near` in km (default 5)")
    ] = None,
    status: Annotated[
        Status, Query(description="active (default), missing (gone from the sources) or all")
    ] = (Status.active),
    sort: Annotated[
        str | None,
        Query(description=f"Comma-separated, '-' for descending: {', '.join(SORTABLE)}", max_length=200),
    ] = None,
):
    clauses: list[str] = []
    params: list[Any] = []
    single_tenant = not (scope.principal.is_master and scope.tenant_id == scope.principal.tenant_id)
    if single_tenant:
        # RLS already limits the rows to this one tenant; saying so lets Postgres use the
        # (tenant_id, ...) indexes instead of filtering every readable row.
        clauses.append("tenant_id = %s")
        params.append(scope.tenant_id)
    if status is not Status.all:
        clauses.append("status = %s")
        params.append(status.value)
    if category is not None:
        clauses.append("category = %s")
        params.append(category.value)
    # The same filters on core.business_facets give the total (up to here the columns agree).
    facets, facet_params = list(clauses), list(params)
    if city is not None:
        if not city_key(city):
            raise ApiError(422, "city: must not be blank")
        # The same key as the facet counts: trimmed and lower-cased.
        clauses.append("lower(btrim(city)) = %s")
        facets.append("city_key = %s")
        params.append(city_key(city))
        facet_params.append(city_key(city))
    if q is not None and q.strip():
        words = query_words(q)
        if not words:
            raise ApiError(422, "q: the query has no letters or digits to search for")
        # Every word must start a word of the name, subcategory or cuisine.
        words_tenant = "tenant_id = %s AND " if single_tenant else ""
        for word in words:
            low, high = prefix_range(word)
            clauses.append(
                "(tenant_id, business_id) IN (SELECT tenant_id, business_id FROM core.business_words"
                f" WHERE {words_tenant}word >= %s{' AND word < %s' if high is not None else ''})"
            )
            params += [scope.tenant_id] if single_tenant else []
            params += [low] if high is None else [low, high]
    distance_select, distance_params = "NULL::float8 AS distance_m", []
    if near is not None:
        lat, lon = parse_near(near)
        radius_m = (radius_km or 5.0) * 1000
        # A bounding box first (indexed on tenant_id, lat, lon), the exact distance second.
        dlat = radius_m / METRES_PER_DEGREE
        dlon = radius_m / (METRES_PER_DEGREE * max(0.01, math.cos(math.radians(lat))))
        clauses.append(f"lat BETWEEN %s AND %s AND lon BETWEEN %s AND %s AND {_DISTANCE} <= %s")
        params += [lat - dlat, lat + dlat, lon - dlon, lon + dlon, lat, lat, lon, radius_m]
        distance_select, distance_params = f"round(({_DISTANCE})::numeric, 1) AS distance_m", [lat, lat, lon]
    elif radius_km is not None:
        raise ApiError(422, "radius_km needs near=lat,lon")
    if sort and "distance_m" in sort and near is None:
        raise ApiError(422, "sort by distance_m needs near=lat,lon")
    default_sort = "distance_m,name" if near is not None else "name"
    where = " AND ".join(clauses) or "true"
    if q is None and near is None:
        # Plain filters: the total comes from the facet counts written with the master.
        total_sql = (
            f"SELECT coalesce(sum(businesses), 0)::bigint FROM core.business_facets"
            f" WHERE {' AND '.join(facets) or 'true'}"
        )
        total_params = facet_params
    else:
        total_sql, total_params = f"SELECT count(*) FROM core.businesses_master WHERE {where}", params
    # The total is a scalar subquery (computed once), not a window over the page query, which
    # would drag every matching row through the sort.
    rows = await request.app.state.db.fetch(
        scope.tenant_id,
        f"""SELECT {_COLUMNS}, {distance_select}, ({total_sql}) AS _total
              FROM core.businesses_master WHERE {where}
             ORDER BY {order_by(sort, SORTABLE, default_sort)}, tenant_id, business_id
             LIMIT %s OFFSET %s""",
        [*distance_params, *total_params, *params, page.limit, page.offset],
    )
    if rows:
        total = rows[0]["_total"]
    else:  # past the last page, or nothing matches: the total alone
        counted = await request.app.state.db.fetch(scope.tenant_id, f"{total_sql}", total_params)
        total = next(iter(counted[0].values()))
    for row in rows:
        del row["_total"]
    return json_response(paged(rows, page, total))
