"""What the directory API searches by: the words of a business, and per-facet row counts.

Both are derived from master rows and written beside them, so the API can answer with b-tree
lookups (see migration 0005 for why not full-text search under row-level security).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ml.directory.normalize import normalize_name

MAX_QUERY_WORDS = 10


def business_words(business: Mapping[str, Any]) -> set[str]:
    """Words of the name (accent- and case-folded), the subcategory and the cuisines."""
    text = " ".join(
        [
            business.get("name_key") or "",
            (business.get("subcategory") or "").replace("_", " "),
            *((c or "").replace("_", " ") for c in business.get("cuisine") or ()),
        ]
    )
    return set(normalize_name(text).split())


def query_words(query: str) -> list[str]:
    """The words of a search box query, folded the same way as the names (at most 10)."""
    return list(dict.fromkeys(normalize_name(query).split()))[:MAX_QUERY_WORDS]


def prefix_range(word: str) -> tuple[str, str | None]:
    """[low, high) bounds of every string starting with `word`, in code-point (C) order;
    high is None when nothing sorts after the prefix (it ends in the last code point)."""
    stem = word
    while stem:
        following = ord(stem[-1]) + 1
        if 0xD800 <= following <= 0xDFFF:  # surrogates cannot be encoded: skip past them
            following = 0xE000
        if following <= 0x10FFFF:
            return word, stem[:-1] + chr(following)
        stem = stem[:-1]
    return word, None


def city_key(city: str | None) -> str:
    return (city or "").strip().lower()


def facet_counts(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    counts = Counter((row["status"], row["category"], city_key(row.get("city"))) for row in rows)
    return [
        {"status": status, "category": category, "city_key": city, "businesses": n}
        for (status, category, city), n in sorted(counts.items())
    ]
