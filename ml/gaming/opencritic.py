"""OpenCritic (RapidAPI) answers -> critic fields.

`topCriticScore` and `percentRecommended` are -1 when a game has too few reviews: that is
"no score yet", stored as NULL, never as a score of -1. An empty `tier` means the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _score(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return round(float(value), 2)


def search_hits(body: Any) -> list[dict[str, Any]]:
    """`/game/search` hits that name a game: `[{id, name, dist}]`."""
    if not isinstance(body, list):
        return []
    return [
        hit
        for hit in body
        if isinstance(hit, Mapping)
        and isinstance(hit.get("id"), int)
        and isinstance(hit.get("name"), str)
        and hit.get("relation", "game") == "game"
    ]


def parse_game(body: Any) -> dict[str, Any] | None:
    """`/game/{id}` -> critic score, review count, tier and percent recommended."""
    if not isinstance(body, Mapping) or not isinstance(body.get("id"), int):
        return None
    reviews = body.get("numReviews")
    tier = body.get("tier")
    return {
        "opencritic_id": body["id"],
        "opencritic_name": body.get("name") if isinstance(body.get("name"), str) else None,
        "critic_score": _score(body.get("topCriticScore")),
        "critic_reviews": reviews if isinstance(reviews, int) and not isinstance(reviews, bool) else None,
        "critic_tier": tier.strip() if isinstance(tier, str) and tier.strip() else None,
        "percent_recommended": _score(body.get("percentRecommended")),
        "opencritic_url": body.get("url") if isinstance(body.get("url"), str) else None,
    }
