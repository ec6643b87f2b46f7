"""ThrillRing's game catalogue: the tenant's featured games with their scores, current Steam
price and discount, and reviews. Game data courtesy of IGDB.com; critic scores by OpenCritic."""

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from ml.gaming.names import game_name_key
from serving.auth import TenantScope
from serving.errors import ERROR_RESPONSES, ApiError
from serving.pagination import Page, PageParams, order_by, page_params, paged
from serving.responses import json_response

router = APIRouter(prefix="/api/brain/gaming", tags=["gaming"], responses=ERROR_RESPONSES)

SORTABLE = (
    "name",
    "release_date",
    "total_rating",
    "critic_score",
    "score",
    "price",
    "discount_percent",
    "review_score",
    "popularity_rank",
)
SORT_HELP = f"Comma-separated, '-' for descending: {', '.join(SORTABLE)} (default popularity_rank)"
ATTRIBUTION = "Game data courtesy of IGDB.com; critic scores by OpenCritic; prices and reviews from Steam"
MAX_QUERY_WORDS = 10


class Game(BaseModel):
    tenant_id: str
    igdb_id: int
    name: str
    popularity_rank: int
    release_date: date | None
    genres: list[str]
    platforms: list[str]
    score: float | None
    total_rating: float | None
    total_rating_count: int | None
    critic_score: float | None
    critic_tier: str | None
    critic_reviews: int | None
    percent_recommended: float | None
    opencritic_id: int | None
    opencritic_status: str
    opencritic_match_confidence: float | None
    steam_appid: int | None
    steam_status: str
    is_free: bool
    currency: str | None
    price: float | None
    initial_price: float | None
    discount_percent: int
    on_sale: bool
    price_date: date | None
    price_fetched_at: datetime | None
    review_score: int | None
    review_score_desc: str | None
    reviews_total: int | None
    flags: list[str]
    refreshed_at: datetime
    attribution: str


# The current price is the newer of the catalogue's own fetch and the tenant's latest daily
# snapshot (a snapshot covers every game of the catalogue, so its day is found once per tenant,
# from the primary key, and joined by key instead of looked up game by game).
# `score` is the same expression as the dbt models': OpenCritic's, else IGDB's (0-100).
_LATEST_ONE = """SELECT %s::text AS tenant_id,
       (SELECT max(snapshot_date) FROM core.gaming_price_snapshots WHERE tenant_id = %s) AS day"""
_LATEST_ALL = (
    "SELECT tenant_id, max(snapshot_date) AS day FROM core.gaming_price_snapshots GROUP BY tenant_id"
)
_GAMES = """
latest AS ({latest}),
games AS (
SELECT c.tenant_id, c.igdb_id, c.name, c.popularity_rank, c.release_date, c.genres, c.platforms,
       coalesce(c.critic_score, c.total_rating) AS score, c.total_rating, c.total_rating_count,
       c.critic_score, c.critic_tier, c.critic_reviews, c.percent_recommended, c.opencritic_id,
       c.opencritic_status, c.opencritic_match_confidence, c.steam_appid, c.steam_status,
       coalesce(c.is_free, false) AS is_free,
       CASE WHEN p.newer THEN p.currency ELSE c.currency END AS currency,
       CASE WHEN p.newer THEN p.final_price ELSE c.final_price END AS final_price,
       CASE WHEN p.newer THEN p.initial_price ELSE c.initial_price END AS initial_price,
       coalesce(CASE WHEN p.newer THEN p.discount_percent ELSE c.discount_percent END, 0) AS discount_percent,
       CASE WHEN p.newer THEN p.snapshot_date END AS price_date,
       CASE WHEN p.newer THEN p.fetched_at ELSE c.steam_fetched_at END AS price_fetched_at,
       c.review_score, c.review_score_desc, c.reviews_total, c.flags, c.refreshed_at,
       c.name_key, c.genre_keys, c.platform_keys
  FROM core.gaming_catalogue c
  LEFT JOIN latest l ON l.tenant_id = c.tenant_id
  LEFT JOIN LATERAL (
        SELECT s.*, (c.steam_fetched_at IS NULL OR s.fetched_at >= c.steam_fetched_at) AS newer
          FROM core.gaming_price_snapshots s
         WHERE s.tenant_id = c.tenant_id AND s.snapshot_date = l.day AND s.igdb_id = c.igdb_id) p ON true
 WHERE {tenant})
"""
# Free games cost 0 (Steam sends them without a price); a game without any price is NULL.
_PRICE = "CASE WHEN is_free AND final_price IS NULL THEN 0 ELSE final_price END"
_COMPUTED = {
    "price": f"{_PRICE} AS price",
    "on_sale": "discount_percent > 0 AS on_sale",
    "attribution": f"'{ATTRIBUTION}'::text AS attribution",
}
_COLUMNS = ", ".join(_COMPUTED.get(field, field) for field in Game.model_fields)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _key(value: str, name: str) -> str:
    key = game_name_key(value)
    if not key:
        raise ApiError(422, f"{name}: needs letters or digits to match (got {value!r})")
    return key


@router.get(
    "/games",
    response_model=Page[Game],
    summary="The tenant's games: name words, genre, platform, score, price and sale filters, paging",
)
async def list_games(
    request: Request,
    scope: TenantScope,
    page: Annotated[PageParams, Depends(page_params)],
    q: Annotated[
        str | None, Query(max_length=200, description="Words that start words of the name (any order)")
    ] = None,
    genre: Annotated[
        str | None, Query(max_length=80, description="Genre (IGDB's or Steam's), e.g. 'RPG' or 'Shooter'")
    ] = None,
    platform: Annotated[
        str | None, Query(max_length=80, description="Platform, e.g. 'PC', 'PlayStation 5', 'Switch'")
    ] = None,
    min_score: Annotated[float | None, Query(ge=0, le=100, description="Lowest `score` (0-100)")] = None,
    on_sale: Annotated[bool | None, Query(description="Discounted now (true) or not (false)")] = None,
    is_free: Annotated[bool | None, Query(description="Free to play on Steam")] = None,
    max_price: Annotated[
        float | None, Query(ge=0, le=100_000, description="Highest current price (free games cost 0)")
    ] = None,
    sort: Annotated[
        str | None,
        Query(
            description=SORT_HELP,
            max_length=200,
        ),
    ] = None,
):
    params: list[Any] = []
    tenant, latest = "true", _LATEST_ALL
    if not (scope.principal.is_master and scope.tenant_id == scope.principal.tenant_id):
        # RLS already limits the rows to this one tenant; saying so lets Postgres use the
        # (tenant_id, ...) keys instead of filtering every readable row.
        tenant, latest = "c.tenant_id = %s", _LATEST_ONE
        params += [scope.tenant_id] * 3
    games = _GAMES.format(latest=latest, tenant=tenant)
    clauses: list[str] = []
    if q is not None and q.strip():
        words = list(dict.fromkeys(_key(q, "q").split()))[:MAX_QUERY_WORDS]
        for word in words:  # each word starts a word of the name
            clauses.append("(' ' || name_key) LIKE %s")
            params.append(f"% {_escape(word)}%")
    # Genres and platforms match as whole words anywhere in a name: "rpg" finds "Role-playing
    # (RPG)", "playstation" every PlayStation, "pc" finds "PC (Microsoft Windows)".
    if genre is not None:
        clauses.append("EXISTS (SELECT 1 FROM unnest(genre_keys) k WHERE ' ' || k || ' ' LIKE %s)")
        params.append(f"% {_escape(_key(genre, 'genre'))} %")
    if platform is not None:
        clauses.append("EXISTS (SELECT 1 FROM unnest(platform_keys) k WHERE ' ' || k || ' ' LIKE %s)")
        params.append(f"% {_escape(_key(platform, 'platform'))} %")
    if min_score is not None:
        clauses.append("score >= %s")
        params.append(min_score)
    if on_sale is not None:
        clauses.append("discount_percent > 0" if on_sale else "discount_percent = 0")
    if is_free is not None:
        clauses.append("is_free = %s")
        params.append(is_free)
    if max_price is not None:
        clauses.append(f"{_PRICE} <= %s")
        params.append(max_price)
    where = " AND ".join(clauses) or "true"
    if clauses:
        total_sql, total_params = "count(*) OVER ()", []
    else:
        # Unfiltered (the portal's first page): every catalogue row is a game, so the total is
        # counted on the catalogue's key and the page joins prices for its own rows only; a
        # window over `games` would price every game of the tenant (1,000 games: 4.7 -> 1.4 ms).
        total_sql = f"(SELECT count(*) FROM core.gaming_catalogue c WHERE {tenant})"
        total_params = params[:1] if tenant != "true" else []
    rows = await request.app.state.db.fetch(
        scope.tenant_id,
        f"""WITH {games}
            SELECT {_COLUMNS}, {total_sql} AS _total FROM games WHERE {where}
             ORDER BY {order_by(sort, SORTABLE, "popularity_rank")}, tenant_id, igdb_id
             LIMIT %s OFFSET %s""",
        [*params, *total_params, page.limit, page.offset],
    )
    if rows:
        total = rows[0]["_total"]
    else:  # past the last page, or nothing matches: the count alone
        counted = await request.app.state.db.fetch(
            scope.tenant_id,
            f"WITH {games} SELECT count(*) AS n FROM games WHERE {where}",
            params,
        )
        total = counted[0]["n"]
    for row in rows:
        del row["_total"]
    return json_response(paged(rows, page, total))
