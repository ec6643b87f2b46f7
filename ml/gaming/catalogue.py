"""Fusing IGDB, Steam and OpenCritic into one catalogue row per game.

IGDB decides which games are in the catalogue (its popularity order is the tenant's featured
list) and carries the Steam app id; OpenCritic is matched by name once and by id after that.
Each row keeps every source's key and when each source last answered for it, and a content
hash so a refresh can tell changed games from unchanged ones.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from ml.gaming.names import NameMatch, game_name_key

STEAM_FIELDS = (
    "steam_name",
    "steam_type",
    "is_free",
    "required_age",
    "steam_genres",
    "steam_release_date_raw",
    "currency",
    "initial_price",
    "final_price",
    "discount_percent",
)
REVIEW_FIELDS = ("review_score", "review_score_desc", "reviews_positive", "reviews_negative", "reviews_total")
CRITIC_FIELDS = (
    "opencritic_id",
    "opencritic_status",
    "opencritic_match_name",
    "opencritic_match_confidence",
    "critic_score",
    "critic_reviews",
    "critic_tier",
    "percent_recommended",
    "opencritic_searched_at",
    "opencritic_fetched_at",
)
_CRITIC_DATA = ("opencritic_id", "critic_score", "critic_reviews", "critic_tier", "percent_recommended")
CATALOGUE_COLUMNS = (
    "igdb_id",
    "popularity_rank",
    "name",
    "name_key",
    "slug",
    "release_date",
    "genres",
    "platforms",
    "genre_keys",
    "platform_keys",
    "total_rating",
    "total_rating_count",
    "igdb_updated_at",
    "steam_appid",
    "steam_status",
    *STEAM_FIELDS,
    *REVIEW_FIELDS,
    *CRITIC_FIELDS,
    "flags",
    "igdb_fetched_at",
    "steam_fetched_at",
    "content_hash",
    "first_seen",
    "changed_at",
)
# What a game is, not when we looked: the hash ignores fetch times and bookkeeping.
_UNHASHED = {
    "igdb_fetched_at",
    "steam_fetched_at",
    "opencritic_fetched_at",
    "opencritic_searched_at",
    "content_hash",
    "first_seen",
    "changed_at",
    "popularity_rank",
}


def assign_steam_ids(games: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first (most popular) game keeps a Steam app id two IGDB entries share (a game and
    its bundle, say); the others lose it and are flagged, so a price is never counted twice."""
    seen: set[int] = set()
    out = []
    for game in games:
        appid = game.get("steam_appid")
        if appid is not None and appid in seen:
            game = {**game, "steam_appid": None, "flags": [*game.get("flags", []), "steam_id_shared"]}
        elif appid is not None:
            seen.add(appid)
        out.append(game)
    return out


def critic_action(previous: Mapping[str, Any] | None, now: datetime, research_after: timedelta) -> str:
    """What OpenCritic is asked for a game: `detail` when its id is known, `search` when it
    never was searched or its last no-match is older than `research_after`, else `keep`."""
    if previous and previous.get("opencritic_id") is not None:
        return "detail"
    searched_at = previous.get("opencritic_searched_at") if previous else None
    if searched_at is None or now - searched_at >= research_after:
        return "search"
    return "keep"


def kept_critic(previous: Mapping[str, Any] | None, reason: str | None = None) -> dict[str, Any]:
    """The previous critic fields unchanged (none for a new game), flagged with why."""
    fields = {key: (previous or {}).get(key) for key in CRITIC_FIELDS}
    fields["opencritic_status"] = fields["opencritic_status"] or "not_searched"
    fields["flags"] = [f"opencritic_{reason}"] if reason else []
    return fields


def critic_from_detail(
    detail: Mapping[str, Any] | None,
    previous: Mapping[str, Any] | None,
    fetched_at: datetime,
    match: NameMatch | None = None,
) -> dict[str, Any]:
    """Critic fields from a `/game/{id}` answer: after a fresh match (`match`), or for an id
    known from the previous catalogue. A detail that did not parse keeps the previous data."""
    if detail is None:
        kept = kept_critic(previous, "detail_unreadable")
        if match is not None:
            kept.update(_match_fields(match, fetched_at))
        return kept
    if match is not None:
        base = _match_fields(match, fetched_at)
    else:
        before = previous or {}
        base = {
            "opencritic_status": "matched",
            "opencritic_match_name": before.get("opencritic_match_name") or detail.get("opencritic_name"),
            "opencritic_match_confidence": before.get("opencritic_match_confidence"),
            "opencritic_searched_at": before.get("opencritic_searched_at"),
        }
    return {
        **base,
        "opencritic_id": detail["opencritic_id"],
        "critic_score": detail["critic_score"],
        "critic_reviews": detail["critic_reviews"],
        "critic_tier": detail["critic_tier"],
        "percent_recommended": detail["percent_recommended"],
        "opencritic_fetched_at": fetched_at,
        "flags": [],
    }


def critic_no_match(match: NameMatch, searched_at: datetime) -> dict[str, Any]:
    """A search whose best hit is below the threshold: kept as a no-match with the near miss."""
    fields = {key: None for key in CRITIC_FIELDS}
    fields.update(_match_fields(match, searched_at))
    fields["opencritic_fetched_at"] = searched_at
    fields["flags"] = []
    return fields


def _match_fields(match: NameMatch, searched_at: datetime) -> dict[str, Any]:
    return {
        "opencritic_status": "matched" if match.matched else "no_match",
        "opencritic_match_name": match.candidate_name,
        "opencritic_match_confidence": match.confidence if match.candidate_name else None,
        "opencritic_searched_at": searched_at,
    }


def empty_steam(status: str) -> dict[str, Any]:
    return {"steam_status": status, **{key: None for key in (*STEAM_FIELDS, *REVIEW_FIELDS)}}


def fuse(
    game: Mapping[str, Any],
    steam: Mapping[str, Any],
    critic: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    *,
    igdb_fetched_at: datetime,
    steam_fetched_at: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    """One catalogue row from the three sources' fields (see CATALOGUE_COLUMNS)."""
    flags = list(game.get("flags", []))
    status = steam.get("steam_status")
    if status == "not_on_steam":
        flags.append("no_steam_id")
    elif status == "unavailable":
        flags.append("steam_unavailable")
    elif status == "ok" and steam.get("review_score") is None:
        flags.append("no_steam_reviews")
    flags += critic.get("flags", [])
    if critic.get("opencritic_status") == "no_match":
        flags.append("opencritic_no_match")
    row: dict[str, Any] = {
        "igdb_id": game["igdb_id"],
        "popularity_rank": game.get("popularity_rank"),
        "name": game["name"],
        "name_key": game_name_key(game["name"]),
        "slug": game.get("slug"),
        # IGDB's date is a timestamp; the store's is free text, so it only fills a gap.
        "release_date": game.get("release_date") or steam.get("steam_release_date"),
        "genres": list(game.get("genres") or []),
        "platforms": list(game.get("platforms") or []),
        "genre_keys": _keys([*(game.get("genres") or []), *(steam.get("steam_genres") or [])]),
        "platform_keys": _keys(game.get("platforms") or []),
        "total_rating": _round(game.get("total_rating")),
        "total_rating_count": game.get("total_rating_count"),
        "igdb_updated_at": game.get("igdb_updated_at"),
        "steam_appid": game.get("steam_appid"),
        "steam_status": status,
        **{key: steam.get(key) for key in (*STEAM_FIELDS, *REVIEW_FIELDS)},
        **{key: critic.get(key) for key in CRITIC_FIELDS},
        "flags": sorted(set(flags)),
        "igdb_fetched_at": igdb_fetched_at,
        "steam_fetched_at": steam_fetched_at,
    }
    row["content_hash"] = content_hash(row)
    unchanged = previous is not None and previous.get("content_hash") == row["content_hash"]
    row["first_seen"] = previous["first_seen"] if previous else now
    row["changed_at"] = previous["changed_at"] if unchanged else now
    return row


def _keys(values: Iterable[str]) -> list[str]:
    return sorted({key for key in (game_name_key(v) for v in values) if key})


def _round(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(round(value, 2)))


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value.normalize())
    if isinstance(value, float):
        return str(Decimal(str(value)).normalize())
    return value


def content_hash(row: Mapping[str, Any]) -> str:
    payload = {key: _canonical(value) for key, value in sorted(row.items()) if key not in _UNHASHED}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


def unique_critic_ids(critics: Sequence[dict[str, Any]]) -> int:
    """Critic fields of games in popularity order: when two games matched one OpenCritic game,
    the more popular keeps it and the other becomes a no-match (flagged). Returns how many
    lost their match; call it before `fuse`, so the hashes see the final fields."""
    seen: set[int] = set()
    lost = 0
    for critic in critics:
        oc_id = critic.get("opencritic_id")
        if oc_id is None:
            continue
        if oc_id in seen:
            lost += 1
            for key in _CRITIC_DATA:
                critic[key] = None
            critic["opencritic_status"] = "no_match"
            critic["flags"] = [*critic.get("flags", []), "opencritic_id_shared"]
        else:
            seen.add(oc_id)
    return lost
