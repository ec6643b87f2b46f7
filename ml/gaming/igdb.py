"""IGDB v4 `/games` records -> catalogue fields.

IGDB omits fields whose value is null, expands `genres.name` into objects only when asked (and
sends bare ids otherwise), and moved the store of an external game from `category` to
`external_game_source` in 2025. Both shapes are read; nothing here raises on odd records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

# IGDB's id for Steam, the same in `external_game_source` and in the deprecated `category`.
STEAM_SOURCE = 1


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _timestamp(value: Any) -> datetime | None:
    seconds = _int(value)
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _names(values: Any) -> list[str]:
    """Expanded `[{id, name}]` -> names; bare ids (not expanded) carry no name and are skipped."""
    if not isinstance(values, list):
        return []
    names = [v.get("name") for v in values if isinstance(v, Mapping)]
    return list(dict.fromkeys(n.strip() for n in names if isinstance(n, str) and n.strip()))


def external_source(external: Mapping[str, Any]) -> int | None:
    """The store of an external game: `external_game_source` (an id, or an expanded object),
    else the deprecated `category`."""
    source = external.get("external_game_source")
    if isinstance(source, Mapping):
        source = source.get("id")
    source = _int(source)
    return source if source is not None else _int(external.get("category"))


def steam_appid(record: Mapping[str, Any]) -> int | None:
    """The Steam app id among the record's external games (the first, if several)."""
    externals = record.get("external_games")
    if not isinstance(externals, list):
        return None
    for external in externals:
        if isinstance(external, Mapping) and external_source(external) == STEAM_SOURCE:
            appid = _int(external.get("uid"))
            if appid is not None and appid > 0:
                return appid
    return None


def parse_game(record: Any) -> dict[str, Any] | None:
    """One `/games` record as catalogue fields, or None without an id and a name."""
    if not isinstance(record, Mapping):
        return None
    igdb_id, name = _int(record.get("id")), record.get("name")
    if igdb_id is None or not isinstance(name, str) or not name.strip():
        return None
    released = _timestamp(record.get("first_release_date"))
    return {
        "igdb_id": igdb_id,
        "name": name.strip(),
        "slug": record.get("slug") if isinstance(record.get("slug"), str) else None,
        "release_date": released.date() if released else None,
        "igdb_updated_at": _timestamp(record.get("updated_at")),
        "genres": _names(record.get("genres")),
        "platforms": _names(record.get("platforms")),
        "total_rating": _number(record.get("total_rating")),
        "total_rating_count": _int(record.get("total_rating_count")),
        "steam_appid": steam_appid(record),
    }


def parse_games(records: Iterable[Any]) -> tuple[list[dict[str, Any]], int]:
    """Parsed games in IGDB's order (first occurrence of an id wins) and how many records
    were dropped (no id or name, or a repeat across pages)."""
    games: dict[int, dict[str, Any]] = {}
    dropped = 0
    for record in records:
        game = parse_game(record)
        if game is None or game["igdb_id"] in games:
            dropped += 1
            continue
        games[game["igdb_id"]] = game
    return list(games.values()), dropped
