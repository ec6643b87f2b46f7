"""Gaming community reads: esports news, tournaments with their entrants, players, and the
gaming activity marts. Every list shares the platform's paging, sorting and error conventions;
row-level security decides which tenant's rows a request sees."""

import re
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from ml.gaming.exports import PLAYER_STATUSES, TOURNAMENT_STATUSES
from serving.auth import TenantScope
from serving.errors import ERROR_RESPONSES, ApiError
from serving.filters import as_utc, clean_text, escape_like
from serving.pagination import Page, PageParams, order_by, page_params, paged, sort_param
from serving.responses import json_response

router = APIRouter(prefix="/api/brain/gaming", tags=["gaming"], responses=ERROR_RESPONSES)
analytics_router = APIRouter(
    prefix="/api/brain/analytics/gaming", tags=["analytics"], responses=ERROR_RESPONSES
)

TournamentStatus = Enum("TournamentStatus", {s: s for s in TOURNAMENT_STATUSES}, type=str)
PlayerStatus = Enum("PlayerStatus", {s: s for s in PLAYER_STATUSES}, type=str)
COUNTRY_PATTERN = re.compile(r"^[A-Za-z]{2}$")


def _text_param(description: str):
    return Annotated[str | None, Query(max_length=120, description=description)]


def _like(text: str) -> str:
    return f"%{escape_like(text)}%"


def _tenant_filter(scope, column: str = "tenant_id") -> tuple[list[str], list[Any]]:
    """RLS already limits the rows; naming the single tenant as well lets Postgres use the
    (tenant_id, ...) indexes. A master reading as itself sees its clients: no narrowing then."""
    if scope.principal.is_master and scope.tenant_id == scope.principal.tenant_id:
        return [], []
    return [f"{column} = %s"], [scope.tenant_id]


async def _page(request: Request, scope, columns: str, source: str, where, params, order: str, page):
    """One page of `SELECT columns FROM source WHERE ...`, with its total counted once."""
    condition = " AND ".join(where) or "true"
    rows = await request.app.state.db.fetch(
        scope.tenant_id,
        f"SELECT {columns}, count(*) OVER () AS _total FROM {source} WHERE {condition}"
        f" ORDER BY {order} LIMIT %s OFFSET %s",
        [*params, page.limit, page.offset],
    )
    if rows:
        total = rows[0]["_total"]
    else:  # past the last page, or nothing matches: the count alone
        counted = await request.app.state.db.fetch(
            scope.tenant_id, f"SELECT count(*) AS n FROM {source} WHERE {condition}", params
        )
        total = counted[0]["n"]
    for row in rows:
        del row["_total"]
    return json_response(paged(rows, page, total))


# --- news -----------------------------------------------------------------------------------------


class NewsItem(BaseModel):
    tenant_id: str
    item_key: str
    title: str
    url: str | None
    summary: str | None
    author: str | None
    tags: list[str]
    source: str
    sources: list[str]
    published_at: datetime
    published_inferred: bool
    first_seen_at: datetime


NEWS_SORTABLE = ("published_at", "first_seen_at", "title", "source")
_NEWS_COLUMNS = ", ".join(NewsItem.model_fields)


@router.get("/news", response_model=Page[NewsItem], summary="Esports news from the tenant's feeds")
async def list_news(
    request: Request,
    scope: TenantScope,
    page: Annotated[PageParams, Depends(page_params)],
    source: _text_param("Feed name, as in the tenant's settings (any feed that carried it)") = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in the title or summary")] = None,
    tag: _text_param("A tag of the item (case-insensitive)") = None,
    since: Annotated[
        datetime | None, Query(description="Published at or after (ISO 8601; UTC if naive)")
    ] = None,
    until: Annotated[datetime | None, Query(description="Published before (ISO 8601; UTC if naive)")] = None,
    sort: sort_param(NEWS_SORTABLE) = None,
):
    where, params = _tenant_filter(scope)
    if (source := clean_text(source, "source")) is not None:
        where.append("%s = ANY (sources)")
        params.append(source)
    if (q := clean_text(q, "q")) is not None:
        where.append("(title ILIKE %s OR summary ILIKE %s)")
        params += [_like(q), _like(q)]
    if (tag := clean_text(tag, "tag")) is not None:
        where.append("EXISTS (SELECT 1 FROM unnest(tags) AS t WHERE lower(t) = lower(%s))")
        params.append(tag)
    since = as_utc(since, "since") if since is not None else None
    until = as_utc(until, "until") if until is not None else None
    if since is not None and until is not None and until <= since:
        raise ApiError(422, "until: must be after since")
    if since is not None:
        where.append("published_at >= %s")
        params.append(since)
    if until is not None:
        where.append("published_at < %s")
        params.append(until)
    return await _page(
        request,
        scope,
        _NEWS_COLUMNS,
        "core.gaming_news_items",
        where,
        params,
        f"{order_by(sort, NEWS_SORTABLE, '-published_at')}, tenant_id, item_key",
        page,
    )


# --- tournaments ----------------------------------------------------------------------------------


class Tournament(BaseModel):
    tenant_id: str
    tournament_id: str
    name: str
    game: str
    format: str
    region: str | None
    team_size: int | None
    max_entrants: int | None
    start_at: datetime
    end_at: datetime | None
    prize_pool: float
    currency: str
    status: str
    entrants: int
    finished: int
    dropped_out: int


class Entry(BaseModel):
    player_id: str
    handle: str
    team: str | None
    placement: int | None
    prize_won: float | None
    status: str
    registered_at: datetime | None


class TournamentDetail(Tournament):
    entries: list[Entry]


TOURNAMENT_SORTABLE = ("start_at", "end_at", "name", "game", "prize_pool", "entrants", "status")
_COUNTS = """
    (SELECT count(*) FILTER (WHERE e.status <> 'withdrawn')::int AS entrants,
            count(*) FILTER (WHERE e.status = 'finished')::int AS finished,
            count(*) FILTER (WHERE e.status IN ('withdrawn', 'disqualified'))::int AS dropped_out
       FROM core.gaming_tournament_entries e
      WHERE e.tenant_id = t.tenant_id AND e.tournament_id = t.tournament_id) AS c"""
_TOURNAMENT_COLUMNS = (
    "t.tenant_id, t.tournament_id, t.name, t.game, t.format, t.region, t.team_size, t.max_entrants,"
    " t.start_at, t.end_at, t.prize_pool, t.currency, t.status, c.entrants, c.finished, c.dropped_out"
)


@router.get(
    "/tournaments",
    response_model=Page[Tournament],
    summary="The tenant's tournaments with their entrant counts",
)
async def list_tournaments(
    request: Request,
    scope: TenantScope,
    page: Annotated[PageParams, Depends(page_params)],
    game: _text_param("Game, exact (case-insensitive), e.g. Counter-Strike 2") = None,
    status: Annotated[TournamentStatus | None, Query(description="Tournament status")] = None,
    start_from: Annotated[
        date | None, Query(alias="from", description="Starting on or after this day (UTC)")
    ] = None,
    start_to: Annotated[
        date | None, Query(alias="to", description="Starting on or before this day (UTC)")
    ] = None,
    sort: sort_param(TOURNAMENT_SORTABLE) = None,
):
    where, params = _tenant_filter(scope, "t.tenant_id")
    if (game := clean_text(game, "game")) is not None:
        where.append("lower(t.game) = lower(%s)")
        params.append(game)
    if status is not None:
        where.append("t.status = %s")
        params.append(status.value)
    if start_from is not None and start_to is not None and start_to < start_from:
        raise ApiError(422, "to: must not be before from")
    if start_from is not None:
        where.append("t.start_at >= %s")
        params.append(datetime.combine(start_from, time(), UTC))
    if start_to is not None and start_to < date.max:
        where.append("t.start_at < %s")
        params.append(datetime.combine(start_to + timedelta(days=1), time(), UTC))
    return await _page(
        request,
        scope,
        _TOURNAMENT_COLUMNS,
        f"core.gaming_tournaments t CROSS JOIN LATERAL {_COUNTS}",
        where,
        params,
        f"{order_by(sort, TOURNAMENT_SORTABLE, '-start_at')}, t.tenant_id, t.tournament_id",
        page,
    )


@router.get(
    "/tournaments/{tournament_id}",
    response_model=TournamentDetail,
    summary="One tournament with its entries, best placement first",
)
async def get_tournament(request: Request, scope: TenantScope, tournament_id: str):
    if len(tournament_id) > 64:
        raise ApiError(404, "tournament not found")
    where, params = _tenant_filter(scope, "t.tenant_id")
    rows = await request.app.state.db.fetch(
        scope.tenant_id,
        f"""SELECT {_TOURNAMENT_COLUMNS},
                  coalesce((SELECT json_agg(json_build_object(
                        'player_id', e.player_id, 'handle', p.handle, 'team', e.team,
                        'placement', e.placement, 'prize_won', e.prize_won, 'status', e.status,
                        'registered_at', e.registered_at)
                        ORDER BY e.placement NULLS LAST, p.handle)
                     FROM core.gaming_tournament_entries e
                     JOIN core.gaming_players p USING (tenant_id, player_id)
                    WHERE e.tenant_id = t.tenant_id AND e.tournament_id = t.tournament_id), '[]') AS entries
             FROM core.gaming_tournaments t CROSS JOIN LATERAL {_COUNTS}
            WHERE {" AND ".join([*where, "t.tournament_id = %s"])}
            -- A master reading as itself also finds its clients' tournaments (as the list does);
            -- its own comes first should two tenants use the same id.
            ORDER BY (t.tenant_id = %s) DESC, t.tenant_id LIMIT 1""",
        [*params, tournament_id, scope.tenant_id],
    )
    if not rows:
        raise ApiError(404, f"tournament {tournament_id!r} not found")
    return json_response(rows[0])


# --- players --------------------------------------------------------------------------------------


class Player(BaseModel):
    tenant_id: str
    player_id: str
    handle: str
    country: str
    team: str | None
    primary_game: str | None
    platform: str | None
    skill_rating: int | None
    status: str
    joined_at: datetime
    last_active_at: datetime
    tournaments_entered: int


PLAYER_SORTABLE = ("handle", "last_active_at", "joined_at", "skill_rating", "country", "team")
_PLAYER_COLUMNS = ", ".join(f"p.{f}" for f in Player.model_fields if f != "tournaments_entered")


@router.get("/players", response_model=Page[Player], summary="The tenant's players")
async def list_players(
    request: Request,
    scope: TenantScope,
    page: Annotated[PageParams, Depends(page_params)],
    country: Annotated[
        str | None, Query(max_length=2, description="ISO 3166 alpha-2 country, e.g. GB")
    ] = None,
    team: _text_param("Team, exact (case-insensitive)") = None,
    status: Annotated[PlayerStatus | None, Query(description="Player status")] = None,
    active_since: Annotated[
        datetime | None, Query(description="Last active at or after (ISO 8601; UTC if naive)")
    ] = None,
    q: Annotated[str | None, Query(max_length=32, description="Text in the handle")] = None,
    sort: sort_param(PLAYER_SORTABLE) = None,
):
    where, params = _tenant_filter(scope, "p.tenant_id")
    if country is not None:
        if not COUNTRY_PATTERN.match(country):
            raise ApiError(422, f"country: expected an ISO 3166 alpha-2 code such as GB, got {country!r}")
        where.append("p.country = %s")
        params.append(country.upper())
    if (team := clean_text(team, "team")) is not None:
        where.append("lower(p.team) = lower(%s)")
        params.append(team)
    if status is not None:
        where.append("p.status = %s")
        params.append(status.value)
    if active_since is not None:
        where.append("p.last_active_at >= %s")
        params.append(as_utc(active_since, "active_since"))
    if (q := clean_text(q, "q")) is not None:
        where.append("p.handle ILIKE %s")
        params.append(_like(q))
    entered = (
        "(SELECT count(*) FROM core.gaming_tournament_entries e WHERE e.tenant_id = p.tenant_id"
        " AND e.player_id = p.player_id AND e.status <> 'withdrawn')::int AS tournaments_entered"
    )
    return await _page(
        request,
        scope,
        f"{_PLAYER_COLUMNS}, {entered}",
        "core.gaming_players p",
        where,
        params,
        f"{order_by(sort, PLAYER_SORTABLE, '-last_active_at')}, p.tenant_id, p.player_id",
        page,
    )


# --- analytics ------------------------------------------------------------------------------------


class GamingActivity(BaseModel):
    tenant_id: str
    week_start: date
    game: str
    tournaments: int
    tournaments_completed: int
    tournaments_cancelled: int
    tournaments_upcoming_or_live: int
    entrants: int
    active_players: int
    avg_entrants_per_tournament: float | None
    tournaments_per_player: float | None
    completion_rate: float | None
    dropout_rate: float | None
    fill_rate: float | None
    prize_pools: dict[str, float]
    new_players: int
    built_at: datetime


class PlayerActivity(BaseModel):
    tenant_id: str
    player_id: str
    handle: str
    country: str
    team: str | None
    primary_game: str | None
    status: str
    joined_at: datetime
    last_active_at: datetime
    activity_as_of: datetime
    active_last_30d: bool
    days_since_active: int
    tournaments_entered: int
    tournaments_finished: int
    wins: int
    podiums: int
    best_placement: int | None
    first_tournament_at: datetime | None
    last_tournament_at: datetime | None
    prize_won: dict[str, float]
    built_at: datetime


ACTIVITY_SORTABLE = ("week_start", "game", "tournaments", "entrants", "active_players", "new_players")
PLAYER_ACTIVITY_SORTABLE = (
    "tournaments_entered",
    "wins",
    "podiums",
    "best_placement",
    "last_active_at",
    "days_since_active",
    "handle",
)


async def _mart_page(request, scope, mart: str, columns, where, params, order, page):
    try:
        return await _page(request, scope, columns, f"marts.{mart}", where, params, order, page)
    except psycopg.errors.UndefinedTable:
        raise ApiError(503, "the gaming marts are not built yet; run `bizosaas materialize`") from None


@analytics_router.get(
    "",
    response_model=Page[GamingActivity],
    summary="Tournament participation and player activity per week and game (dbt mart)",
)
async def gaming_activity(
    request: Request,
    scope: TenantScope,
    page: Annotated[PageParams, Depends(page_params)],
    game: _text_param("Game, exact (case-insensitive), or 'all games' for the week totals") = None,
    week_from: Annotated[date | None, Query(alias="from", description="Weeks starting on or after")] = None,
    week_to: Annotated[date | None, Query(alias="to", description="Weeks starting on or before")] = None,
    sort: sort_param(ACTIVITY_SORTABLE) = None,
):
    where, params = _tenant_filter(scope)
    if (game := clean_text(game, "game")) is not None:
        where.append("lower(game) = lower(%s)")
        params.append(game)
    if week_from is not None and week_to is not None and week_to < week_from:
        raise ApiError(422, "to: must not be before from")
    if week_from is not None:
        where.append("week_start >= %s")
        params.append(week_from)
    if week_to is not None:
        where.append("week_start <= %s")
        params.append(week_to)
    return await _mart_page(
        request,
        scope,
        "gaming_activity",
        ", ".join(GamingActivity.model_fields),
        where,
        params,
        f"{order_by(sort, ACTIVITY_SORTABLE, '-week_start,game')}, tenant_id, week_start, game",
        page,
    )


@analytics_router.get(
    "/players",
    response_model=Page[PlayerActivity],
    summary="Per player: activity in the last 30 days, tournaments, wins, podiums (dbt mart)",
)
async def player_activity(
    request: Request,
    scope: TenantScope,
    page: Annotated[PageParams, Depends(page_params)],
    active_last_30d: Annotated[bool | None, Query(description="Only players active (or not) lately")] = None,
    country: Annotated[str | None, Query(max_length=2, description="ISO 3166 alpha-2 country")] = None,
    sort: sort_param(PLAYER_ACTIVITY_SORTABLE) = None,
):
    where, params = _tenant_filter(scope)
    if active_last_30d is not None:
        where.append("active_last_30d = %s")
        params.append(active_last_30d)
    if country is not None:
        if not COUNTRY_PATTERN.match(country):
            raise ApiError(422, f"country: expected an ISO 3166 alpha-2 code such as GB, got {country!r}")
        where.append("country = %s")
        params.append(country.upper())
    return await _mart_page(
        request,
        scope,
        "gaming_player_activity",
        ", ".join(PlayerActivity.model_fields),
        where,
        params,
        f"{order_by(sort, PLAYER_ACTIVITY_SORTABLE, '-tournaments_entered,handle')}, tenant_id, player_id",
        page,
    )
