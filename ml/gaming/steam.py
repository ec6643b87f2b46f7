"""Steam storefront answers -> catalogue and price fields.

`appdetails` is keyed by the app id as a string; `success: false` (delisted, region-locked or
unknown apps) is a normal answer. Prices come in hundredths; free and unreleased apps have no
`price_overview`, and the batched `filters=price_overview` form answers them with `data: []`.
`required_age` is an int or a string, genre ids are strings, and the release date is a
localised free-form string, so every field is read defensively.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from ml.gaming.prices import minor_to_major

_DATE_FORMATS = (
    "%d %b, %Y",  # 18 May, 2015 (the store's default for English)
    "%b %d, %Y",  # May 18, 2015
    "%d %B, %Y",
    "%B %d, %Y",
    "%d %b %Y",
    "%b %d %Y",
    "%d %B %Y",
    "%B %d %Y",
    "%Y-%m-%d",
    "%d.%m.%Y",
    "%b %Y",  # month only: the first of the month
    "%B %Y",
    "%Y",
)
_SEPT = re.compile(r"\bSept\b", re.IGNORECASE)
_QUARTER = re.compile(r"^q([1-4])\s*(\d{4})$", re.IGNORECASE)


def parse_release_date(text: Any) -> date | None:
    """A store release date string as a date; None for "Coming soon", "TBA" and the like.
    Month-only and year-only dates mean their first day; "Q3 2026" the quarter's first day."""
    if not isinstance(text, str):
        return None
    cleaned = _SEPT.sub("Sep", " ".join(text.split())).strip(" .")
    if not cleaned:
        return None
    quarter = _QUARTER.match(cleaned)
    if quarter:
        return date(int(quarter.group(2)), 3 * int(quarter.group(1)) - 2, 1)
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(cleaned, fmt).date()
        except ValueError:
            continue
    return None


def _age(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str):
        digits = re.match(r"\s*(\d{1,2})", value)
        return int(digits.group(1)) if digits else None
    return None


def _strings(values: Any, key: str) -> list[str]:
    if not isinstance(values, list):
        return []
    found = [v.get(key) for v in values if isinstance(v, Mapping)]
    return list(dict.fromkeys(s.strip() for s in found if isinstance(s, str) and s.strip()))


def parse_price(overview: Any) -> dict[str, Any]:
    """`price_overview` -> currency, initial/final price in major units and the discount;
    all None when there is no (usable) price."""
    empty = {"currency": None, "initial_price": None, "final_price": None, "discount_percent": None}
    if not isinstance(overview, Mapping):
        return empty
    currency = overview.get("currency")
    final = minor_to_major(overview.get("final"))
    if not isinstance(currency, str) or final is None:
        return empty
    initial = minor_to_major(overview.get("initial"))
    discount = overview.get("discount_percent")
    return {
        "currency": currency.strip().upper(),
        "initial_price": initial if initial is not None else final,
        "final_price": final,
        "discount_percent": discount if isinstance(discount, int) and not isinstance(discount, bool) else 0,
    }


def entry_for(body: Any, appid: int) -> Mapping[str, Any] | None:
    """The `{"success": ..., "data": ...}` entry of `appid` in an appdetails answer."""
    if not isinstance(body, Mapping):
        return None
    entry = body.get(str(appid))
    return entry if isinstance(entry, Mapping) and isinstance(entry.get("success"), bool) else None


def parse_appdetails(entry: Mapping[str, Any] | None) -> dict[str, Any]:
    """A full appdetails entry as catalogue fields; `steam_available` is False for
    `success: false` (the game stays in the catalogue without Steam data)."""
    data = entry.get("data") if entry and entry.get("success") else None
    if not isinstance(data, Mapping):
        return {"steam_available": False, **parse_price(None)}
    released = data.get("release_date") if isinstance(data.get("release_date"), Mapping) else {}
    raw_date = released.get("date") if isinstance(released.get("date"), str) else None
    is_free = data.get("is_free") is True
    return {
        "steam_available": True,
        "steam_name": data.get("name") if isinstance(data.get("name"), str) else None,
        "steam_type": data.get("type") if isinstance(data.get("type"), str) else None,
        "is_free": is_free,
        "required_age": _age(data.get("required_age")),
        "steam_genres": _strings(data.get("genres"), "description"),
        "steam_release_date": parse_release_date(raw_date),
        "steam_release_date_raw": raw_date,
        "coming_soon": released.get("coming_soon") is True,
        "developers": [d for d in data.get("developers") or [] if isinstance(d, str)],
        "publishers": [p for p in data.get("publishers") or [] if isinstance(p, str)],
        **parse_price(data.get("price_overview")),
    }


def parse_price_entry(entry: Mapping[str, Any] | None) -> dict[str, Any]:
    """An entry of the batched `filters=price_overview` answer. `data: []` (free or not yet
    priced apps) is available without a price; `success: false` or a missing entry is not
    available."""
    if not entry or not entry.get("success"):
        return {"available": False, **parse_price(None)}
    data = entry.get("data")
    overview = data.get("price_overview") if isinstance(data, Mapping) else None
    return {"available": True, **parse_price(overview)}


def parse_review_summary(body: Any) -> dict[str, Any] | None:
    """`appreviews` `query_summary` -> review score (0-9), its label and the counts; None when
    the answer carries no summary (`success` other than 1)."""
    if not isinstance(body, Mapping) or body.get("success") != 1:
        return None
    summary = body.get("query_summary")
    if not isinstance(summary, Mapping):
        return None

    def count(key: str) -> int | None:
        value = summary.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    score = summary.get("review_score")
    label = summary.get("review_score_desc")
    return {
        "review_score": score if isinstance(score, int) and not isinstance(score, bool) else None,
        "review_score_desc": label if isinstance(label, str) and label else None,
        "reviews_positive": count("total_positive"),
        "reviews_negative": count("total_negative"),
        "reviews_total": count("total_reviews"),
    }
