"""Pure normalisation of OpenStreetMap business listings (Nominatim, Overpass, LocationIQ).

Every function here takes raw provider values and returns a clean value or None; none of them raises
on bad data, so callers can keep the raw value whenever the result is None.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from urllib.parse import urlsplit

import phonenumbers

E164_PATTERN = re.compile(r"^\+[1-9]\d{6,14}$")
WEBSITE_PATTERN = re.compile(r"^https?://[^\s/]+\.[^\s/]+(?:/\S*)?$")

EARTH_RADIUS_M = 6_371_008.8

# --- phones -------------------------------------------------------------------------------------


def normalize_phone(raw: str | None, country_code: str | None = None) -> str | None:
    """First valid number of an OSM phone value, as E.164; numbers without "+" use `country_code`."""
    if not isinstance(raw, str):
        return None
    region = country_code.strip().upper() if isinstance(country_code, str) and country_code.strip() else "US"
    # OSM separates multiple numbers with ";", but "," shows up often enough in the data too.
    for candidate in re.split(r"[;,]", raw):
        candidate = re.sub(r"(?i)^\s*tel:", "", candidate).strip()
        if not candidate:
            continue
        try:
            number = phonenumbers.parse(candidate, region)
        except Exception:  # NumberParseException, plus anything odd the library trips over
            continue
        if phonenumbers.is_valid_number(number):
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if E164_PATTERN.match(e164):
                return e164
    return None


# --- websites -----------------------------------------------------------------------------------

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def normalize_website(raw: str | None) -> str | None:
    """First valid http(s) URL of an OSM website value, with a scheme and a lowercase host."""
    if not isinstance(raw, str):
        return None
    for candidate in raw.split(";"):
        url = _normalize_url(candidate.strip())
        if url:
            return url
    return None


def _normalize_url(url: str) -> str | None:
    if not url or re.search(r"\s", url):
        return None
    if url.startswith("//"):
        url = "https:" + url
    elif not _SCHEME.match(url):
        url = "https://" + url
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    # Userinfo is dropped rather than kept: it is either a mangled "mailto:" or credentials.
    if scheme not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    labels = host.split(".")
    if len(labels) < 2 or not all(labels) or re.search(r"[^\w.-]", host):
        return None
    netloc = f"{host}:{port}" if port else host
    path = parts.path or ("/" if parts.query or parts.fragment else "")
    query = f"?{parts.query}" if parts.query else ""
    fragment = f"#{parts.fragment}" if parts.fragment else ""
    url = f"{scheme}://{netloc}{path}{query}{fragment}"
    return url if WEBSITE_PATTERN.match(url) else None


# --- opening hours ------------------------------------------------------------------------------

DAYS = ("mo", "tu", "we", "th", "fr", "sa", "su")
_OFF_WORDS = frozenset({"off", "closed"})
_DASHES = str.maketrans("\u2013\u2014", "--")  # en/em dashes are common in hand-typed values
_TOKEN = re.compile(r"\s*(?:(?P<always>24/7)|(?P<time>\d{1,2}:\d{2})|(?P<word>[A-Za-z]+)|(?P<sep>[-,]))")


class _Unsupported(Exception):
    """The value uses OSM grammar outside the supported subset."""


def parse_opening_hours(raw: str | None) -> dict | None:
    """Parse the common subset of OSM opening_hours; None for anything else (keep the raw string).

    Returns {"always_open": bool, "days": {"mo": [["08:00", "18:00"]], ...}, "public_holidays": ...}
    with all seven days present ([] = closed or not stated) and public_holidays "open", "closed" or None.
    """
    if not isinstance(raw, str) or not raw.strip():
        return None
    days: dict[str, list[list[str]]] = {day: [] for day in DAYS}
    holidays: str | None = None
    try:
        rules = [rule for rule in raw.translate(_DASHES).split(";") if rule.strip()]
        if not rules:
            return None
        for rule in rules:
            for index, (named, ph, spans) in enumerate(_parse_rule(_tokenize(rule))):
                additive = index > 0  # "," between rules adds to earlier ones instead of replacing
                for day in named:
                    copied = [list(span) for span in spans]
                    days[day] = days[day] + copied if additive and spans else copied
                if ph:
                    holidays = "open" if spans else "closed"
    except _Unsupported:
        return None
    always_open = all(days[day] == [["00:00", "24:00"]] for day in DAYS) and holidays != "closed"
    return {"always_open": always_open, "days": days, "public_holidays": holidays}


def _tokenize(rule: str) -> list[tuple[str, str]]:
    tokens, pos, rule = [], 0, rule.rstrip()
    while pos < len(rule):
        match = _TOKEN.match(rule, pos)
        if not match:
            raise _Unsupported(rule)
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "word":
            value = value.lower()
            if value == "ph" or value in DAYS:
                kind = "day"
            elif value not in _OFF_WORDS:
                raise _Unsupported(value)
        tokens.append((kind, value))
        pos = match.end()
    return tokens


def _parse_rule(tokens: list[tuple[str, str]]) -> list[tuple[list[str], bool, list[list[str]]]]:
    """One ";"-rule as (days, mentions PH, spans) parts; parts after the first were joined by ","."""
    parts, pos = [], 0

    def peek(offset: int = 0) -> tuple[str, str]:
        return tokens[pos + offset] if pos + offset < len(tokens) else ("end", "")

    while True:
        named: list[str] = []
        ph = False
        while peek()[0] == "day":
            start = peek()[1]
            pos += 1
            if peek() == ("sep", "-"):
                end = peek(1)
                if end[0] != "day" or "ph" in (start, end[1]):
                    raise _Unsupported(tokens)
                pos += 2
                span = (DAYS.index(end[1]) - DAYS.index(start)) % 7
                named += [DAYS[(DAYS.index(start) + i) % 7] for i in range(span + 1)]
            elif start == "ph":
                ph = True
            else:
                named.append(start)
            if peek() == ("sep", ",") and peek(1)[0] == "day":
                pos += 1
            else:
                break
        if not named and not ph:
            named = list(DAYS)

        spans: list[list[str]] = []
        kind = peek()[0]
        if kind == "word":  # off / closed
            pos += 1
        elif kind == "always":
            spans, pos = [["00:00", "24:00"]], pos + 1
        elif kind == "time":
            while True:
                if peek(0)[0] != "time" or peek(1) != ("sep", "-") or peek(2)[0] != "time":
                    raise _Unsupported(tokens)
                spans.append([_clock(peek(0)[1], 24), _clock(peek(2)[1], 48)])
                pos += 3
                if peek() == ("sep", ",") and peek(1)[0] == "time":
                    pos += 1
                else:
                    break
        else:  # days with no times ("Mo-Fr") is legal OSM for "all day" but in practice a data error
            raise _Unsupported(tokens)
        parts.append((named, ph, spans))

        if peek()[0] == "end":
            return parts
        if peek() != ("sep", ",") or peek(1)[0] != "day":
            raise _Unsupported(tokens)
        pos += 1


def _clock(value: str, max_hour: int) -> str:
    hours, minutes = (int(part) for part in value.split(":"))
    # Closing times may run past 24:00 ("18:00-26:00") in OSM; opening times may not.
    if hours > max_hour or minutes > 59 or (hours == max_hour and minutes):
        raise _Unsupported(value)
    return f"{hours:02d}:{minutes:02d}"


# --- categories ---------------------------------------------------------------------------------

# Main OSM keys in priority order: the first key whose value maps to a category wins.
MAIN_KEYS = ("amenity", "shop", "healthcare", "office", "craft", "tourism", "leisure")

# (key, value) -> category. A value of "*" is the fallback for any other value of that key.
CATEGORY_BY_TAG: dict[str, dict[str, str]] = {
    "amenity": {
        **dict.fromkeys(
            ("restaurant", "cafe", "bar", "pub", "fast_food", "ice_cream", "food_court", "biergarten"),
            "food_and_drink",
        ),
        **dict.fromkeys(("dentist", "doctors", "clinic", "hospital", "pharmacy", "veterinary"), "health"),
        "spa": "beauty_and_wellness",
        **dict.fromkeys(("bank", "atm", "bureau_de_change"), "finance"),
        **dict.fromkeys(("fuel", "car_wash", "car_rental", "charging_station"), "automotive"),
        "gym": "fitness_and_leisure",
        **dict.fromkeys(
            ("school", "kindergarten", "college", "university", "library")
            + ("language_school", "driving_school"),
            "education",
        ),
        **dict.fromkeys(("cinema", "theatre", "nightclub", "arts_centre"), "entertainment"),
    },
    "shop": {
        **dict.fromkeys(
            ("bakery", "coffee", "confectionery", "deli", "butcher", "alcohol", "beverages"), "food_and_drink"
        ),
        **dict.fromkeys(("chemist", "optician", "medical_supply"), "health"),
        **dict.fromkeys(("hairdresser", "beauty", "cosmetics", "massage"), "beauty_and_wellness"),
        **dict.fromkeys(("car", "car_repair", "tyres"), "automotive"),
        "*": "retail",
    },
    "healthcare": {"*": "health"},
    "office": {
        **dict.fromkeys(("financial", "insurance", "tax_advisor", "accountant"), "finance"),
        "*": "professional_services",
    },
    "craft": {"*": "professional_services"},
    "tourism": {
        **dict.fromkeys(("hotel", "motel", "hostel", "guest_house", "apartment"), "lodging"),
        **dict.fromkeys(("museum", "attraction", "gallery"), "entertainment"),
    },
    "leisure": {
        "spa": "beauty_and_wellness",
        **dict.fromkeys(("fitness_centre", "sports_centre", "swimming_pool"), "fitness_and_leisure"),
        **dict.fromkeys(("bowling_alley", "amusement_arcade"), "entertainment"),
    },
}

CATEGORIES: tuple[str, ...] = (
    "food_and_drink",
    "health",
    "beauty_and_wellness",
    "retail",
    "lodging",
    "finance",
    "automotive",
    "fitness_and_leisure",
    "education",
    "professional_services",
    "entertainment",
    "other",
)


def categorize(tags: Mapping[str, str]) -> tuple[str, str]:
    """(category, subcategory) for OSM tags; Nominatim results work as {category: type}."""
    first_value = None
    for key in MAIN_KEYS:
        raw = tags.get(key)
        # Multi-valued tags ("restaurant;bar") are classified by their first value.
        value = raw.split(";")[0].strip().lower() if isinstance(raw, str) else ""
        if not value or value == "no":
            continue
        first_value = first_value or value
        mapping = CATEGORY_BY_TAG[key]
        category = mapping.get(value) or mapping.get("*")
        if category:
            return category, value
    return "other", first_value or "unknown"


# --- names --------------------------------------------------------------------------------------

_APOSTROPHES = re.compile("['\u2018\u2019\u02bc`\u00b4]")
# Latin letters NFKD does not decompose.
_LATIN_FOLD = str.maketrans(
    {"ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ı": "i", "æ": "ae", "œ": "oe", "þ": "th"}
)


def normalize_name(name: str | None) -> str:
    """Matching key for de-duplication: "The Torchy’s Tacos & Co." -> "torchys tacos and co"."""
    if not isinstance(name, str):
        return ""
    text = unicodedata.normalize("NFKD", _APOSTROPHES.sub("", name))
    kept: list[str] = []
    for char in text:
        # Only marks on Latin and Greek letters are treated as diacritics; elsewhere (kana voicing,
        # Devanagari viramas, Cyrillic й) the mark is part of the letter and dropping it corrupts the name.
        if unicodedata.combining(char) and kept and _has_diacritics(kept[-1]):
            continue
        kept.append(char)
    text = unicodedata.normalize("NFC", "".join(kept)).casefold().translate(_LATIN_FOLD)
    text = text.replace("&", " and ")
    text = "".join(" " if unicodedata.category(char)[0] in "PS" else char for char in text)
    text = " ".join(text.split())
    return text[4:] if text.startswith("the ") else text


def _has_diacritics(char: str) -> bool:
    code = ord(char)
    return code < 0x250 or 0x370 <= code < 0x400 or 0x1E00 <= code < 0x2000


# --- geography ----------------------------------------------------------------------------------


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


_COORDINATE_LIMITS = {"lat": 90.0, "lon": 180.0}


def parse_coordinate(value: object, kind: str) -> float | None:
    """Float from a provider coordinate ("30.2661520" or 30.266152); None if missing or out of range."""
    if kind not in _COORDINATE_LIMITS:
        raise ValueError(f"kind must be 'lat' or 'lon', not {kind!r}")
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # float() already tolerates surrounding whitespace in strings
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(number) or abs(number) > _COORDINATE_LIMITS[kind]:
        return None
    return number
