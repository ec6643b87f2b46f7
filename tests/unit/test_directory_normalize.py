import json
import math

import pytest

from ml.directory.normalize import (
    CATEGORIES,
    CATEGORY_BY_TAG,
    E164_PATTERN,
    WEBSITE_PATTERN,
    categorize,
    distance_m,
    normalize_name,
    normalize_phone,
    normalize_website,
    parse_coordinate,
    parse_opening_hours,
)

GARBAGE = ["", "   ", ";", ";;;", "\x00\x01", "🍕🍕", "null", "-", "+", "http://", "a" * 5000, "Mo-Fr 25:99-"]


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("(512) 555-0101", None, "+15125550101"),
        ("+1 512-555-0102", None, "+15125550102"),
        ("512.555.0103", "us", "+15125550103"),
        ("+351 220 000 000", None, "+351220000000"),
        ("220 000 000", "PT", "+351220000000"),
        ("tel:+44 20 7946 0958", None, "+442079460958"),
        ("TEL:+44 20 7946 0958", "de", "+442079460958"),
        ("030 1234567", "De", "+49301234567"),
        ("  +1 512 555 0101  ", None, "+15125550101"),
        ("123; +1 512-555-0102; 512.555.0103", None, "+15125550102"),
        ("+1 512 555 0101, +1 512 555 0102", None, "+15125550101"),
        ("+1 512-555-0102", "xx", "+15125550102"),
        ("512 555 0101", "xx", None),
        ("555-0101", None, None),
        ("+1 000 000 0000", None, None),
        ("not a phone", None, None),
        ("☎ 12", None, None),
        (None, None, None),
    ],
)
def test_normalize_phone(raw, country, expected):
    assert normalize_phone(raw, country) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("example.com", "https://example.com"),
        ("  www.Example.COM/Menu?lang=en  ", "https://www.example.com/Menu?lang=en"),
        ("HTTP://Example.com/Path/", "http://example.com/Path/"),
        ("https://example.com:8080/a", "https://example.com:8080/a"),
        ("//cdn.example.com/x", "https://cdn.example.com/x"),
        ("example.com?x=1", "https://example.com/?x=1"),
        ("https://café.fr", "https://café.fr"),
        ("ftp://example.com; https://second.example.org", "https://second.example.org"),
        ("localhost; example.org", "https://example.org"),
        ("ftp://example.com", None),
        ("mailto:info@example.com", None),
        ("https://user:pw@example.com", None),
        ("http://localhost:8000", None),
        ("https://example.", None),
        ("https://.com", None),
        ("https://exa mple.com", None),
        ("https://example.com:99999", None),
        ("https://exa\\mple.com", None),
        (None, None),
    ],
)
def test_normalize_website(raw, expected):
    assert normalize_website(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "(512) 555-0101",
        "+351 220 000 000",
        "tel:+44 20 7946 0958",
        "+683 4002",
        "+49 30 1234567",
        "020 7946 0958",
    ],
)
def test_normalized_phones_match_pattern(raw):
    phone = normalize_phone(raw, "gb" if raw.startswith("020") else None)
    assert phone and E164_PATTERN.match(phone)


@pytest.mark.parametrize(
    "raw", ["example.com", "HTTP://A.B", "www.x.io/a/b?c=d#e", "example.com#top", "https://x.org:443"]
)
def test_normalized_websites_match_pattern(raw):
    website = normalize_website(raw)
    assert website and WEBSITE_PATTERN.match(website)


@pytest.mark.parametrize("raw", GARBAGE)
def test_phone_and_website_never_raise_on_garbage(raw):
    assert normalize_phone(raw) is None
    assert normalize_website(raw) is None


def test_patterns_reject_unnormalised_values():
    assert not E164_PATTERN.match("+1 512 555 0101")
    assert not E164_PATTERN.match("+0123456789")
    assert not WEBSITE_PATTERN.match("example.com")
    assert not WEBSITE_PATTERN.match("https://localhost")


def week(names="", spans=None, **days):
    """Seven-day dict with `spans` on the space-separated `names`, plus per-day overrides."""
    result = {day: [] for day in ("mo", "tu", "we", "th", "fr", "sa", "su")}
    result.update(dict.fromkeys(names.split(), spans), **days)
    return result


NINE_TO_FIVE = [["09:00", "17:00"]]
ALL_DAY = [["00:00", "24:00"]]
DINNER = [["12:00", "15:00"], ["19:00", "22:30"]]
MORNING = [["09:00", "12:00"]]
WEEKDAYS = "mo tu we th fr"


@pytest.mark.parametrize(
    ("raw", "days", "holidays"),
    [
        ("Mo-Fr 09:00-17:00", week(WEEKDAYS, NINE_TO_FIVE), None),
        ("Fr-Mo 12:00-15:00,19:00-22:30", week("fr sa su mo", DINNER), None),
        ("Mo,We,Fr 09:00-17:00", week("mo we fr", NINE_TO_FIVE), None),
        ("Mo-We,Fr 09:00-17:00; We off", week("mo tu fr", NINE_TO_FIVE), None),
        ("Sa 18:00-02:00", week(sa=[["18:00", "02:00"]]), None),
        ("Fr 18:00-26:00", week(fr=[["18:00", "26:00"]]), None),
        ("10:00-18:00", week(WEEKDAYS + " sa su", [["10:00", "18:00"]]), None),
        ("09:00-17:00; Su closed", week(WEEKDAYS + " sa", NINE_TO_FIVE), None),
        ("Mo-Fr 09:00-17:00; PH off", week(WEEKDAYS, NINE_TO_FIVE), "closed"),
        ("Su,PH off", week(), "closed"),
        ("PH closed", week(), "closed"),
        ("Sa,PH 10:00-14:00", week(sa=[["10:00", "14:00"]]), "open"),
        (
            "  mo-fr 9:00-17:00 ;Sa 10:00\u201312:00;  ",
            week(WEEKDAYS, NINE_TO_FIVE, sa=[["10:00", "12:00"]]),
            None,
        ),
        # "," joins an additional rule that adds to, rather than replaces, earlier ones.
        (
            "Mo-Fr 09:00-12:00, We 14:00-18:00",
            week(WEEKDAYS, MORNING, we=[*MORNING, ["14:00", "18:00"]]),
            None,
        ),
        ("Mo 09:00-17:00; Mo 10:00-11:00", week(mo=[["10:00", "11:00"]]), None),
    ],
)
def test_parse_opening_hours(raw, days, holidays):
    parsed = parse_opening_hours(raw)
    assert parsed == {"always_open": False, "days": days, "public_holidays": holidays}
    assert json.loads(json.dumps(parsed)) == parsed


@pytest.mark.parametrize(
    ("raw", "always_open", "holidays"),
    [
        ("24/7", True, None),
        (" 24/7 ", True, None),
        ("Mo-Su 00:00-24:00", True, None),
        ("24/7; PH off", False, "closed"),
    ],
)
def test_parse_opening_hours_round_the_clock(raw, always_open, holidays):
    parsed = parse_opening_hours(raw)
    assert parsed == {
        "always_open": always_open,
        "days": week(WEEKDAYS + " sa su", ALL_DAY),
        "public_holidays": holidays,
    }


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "Jan-Mar 10:00-18:00",
        "Mo-Fr 08:00-18:00; Dec 25 off",
        "week 1-20 Mo-Fr 09:00-17:00",
        "sunrise-sunset",
        'Mo-Fr 09:00-17:00 "call first"',
        "Fr 18:00+",
        "Sa 20:00-open end",
        "by appointment",
        "Mo-Fr",
        "Mo[1] 09:00-12:00",
        "SH off",
        'Mo-Fr 09:00-17:00 || "on request"',
        "Mo-PH 09:00-17:00",
        "25:00-26:00",
        "09:60-17:00",
        "09:00-17:00,",
        "Mo,",
        *GARBAGE,
    ],
)
def test_parse_opening_hours_unsupported_or_garbage(raw):
    assert parse_opening_hours(raw) is None


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"amenity": "restaurant"}, ("food_and_drink", "restaurant")),
        ({"shop": "bakery"}, ("food_and_drink", "bakery")),
        ({"amenity": "dentist", "healthcare": "dentist"}, ("health", "dentist")),
        ({"healthcare": "physiotherapist"}, ("health", "physiotherapist")),
        ({"shop": "optician"}, ("health", "optician")),
        ({"shop": "hairdresser"}, ("beauty_and_wellness", "hairdresser")),
        ({"leisure": "spa"}, ("beauty_and_wellness", "spa")),
        ({"shop": "books"}, ("retail", "books")),
        ({"shop": "yes"}, ("retail", "yes")),
        ({"tourism": "hotel"}, ("lodging", "hotel")),
        ({"amenity": "bank"}, ("finance", "bank")),
        ({"office": "insurance"}, ("finance", "insurance")),
        ({"shop": "car_repair"}, ("automotive", "car_repair")),
        ({"amenity": "fuel"}, ("automotive", "fuel")),
        ({"leisure": "fitness_centre"}, ("fitness_and_leisure", "fitness_centre")),
        ({"amenity": "driving_school"}, ("education", "driving_school")),
        ({"office": "lawyer"}, ("professional_services", "lawyer")),
        ({"craft": "plumber"}, ("professional_services", "plumber")),
        ({"tourism": "museum"}, ("entertainment", "museum")),
        ({"leisure": "bowling_alley"}, ("entertainment", "bowling_alley")),
        ({"amenity": "restaurant;bar", "cuisine": "mexican"}, ("food_and_drink", "restaurant")),
        ({"amenity": " Cafe "}, ("food_and_drink", "cafe")),
        ({"amenity": "parking", "shop": "convenience"}, ("retail", "convenience")),
        ({"shop": "hairdresser", "amenity": "cafe"}, ("food_and_drink", "cafe")),
        ({"amenity": "parking"}, ("other", "parking")),
        ({"tourism": "viewpoint", "leisure": "park"}, ("other", "viewpoint")),
        ({"shop": "no", "craft": "yes"}, ("professional_services", "yes")),
        ({"name": "Somewhere"}, ("other", "unknown")),
        ({}, ("other", "unknown")),
    ],
)
def test_categorize(tags, expected):
    assert categorize(tags) == expected
    assert expected[0] in CATEGORIES


def test_taxonomy_only_uses_declared_categories():
    used = {category for mapping in CATEGORY_BY_TAG.values() for category in mapping.values()}
    assert used | {"other"} == set(CATEGORIES)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Torchy's Tacos", "torchys tacos"),
        ("Torchys Tacos", "torchys tacos"),
        ("TORCHY’S  TACOS!", "torchys tacos"),
        ("The Salt Lick", "salt lick"),
        ("Theatre Bar", "theatre bar"),
        ("The", "the"),
        ("Café Zürich", "cafe zurich"),
        ("Łódź Straße", "lodz strasse"),
        ("Smith & Sons, Inc.", "smith and sons inc"),
        ("Coca-Cola\tBottling\n", "coca cola bottling"),
        ("Ｆｕｌｌｗｉｄｔｈ", "fullwidth"),
        ("ラーメン一番", "ラーメン一番"),
        ("ブルーボトル", "ブルーボトル"),
        ("Кафе «Пушкинъ»", "кафе пушкинъ"),
        ("Чайхана Й", "чайхана й"),
        ("Ελληνικό", "ελληνικο"),
        ("नमस्ते", "नमस्ते"),
        ("...", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_name(name, expected):
    assert normalize_name(name) == expected


def test_distance_m():
    assert distance_m(30.2672, -97.7431, 30.2672, -97.7431) == 0.0
    # One degree of latitude on the mean sphere.
    assert distance_m(0, 0, 1, 0) == pytest.approx(6_371_008.8 * math.pi / 180)
    assert distance_m(0, 0, 0, 180) == pytest.approx(6_371_008.8 * math.pi)
    assert distance_m(0, 179.9999, 0, -179.9999) == pytest.approx(22.24, abs=0.01)
    # Austin to Dallas is roughly 290 km.
    assert distance_m(30.2672, -97.7431, 32.7767, -96.7970) == pytest.approx(291_000, rel=0.01)


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("30.2661520", "lat", 30.266152),
        (" -97.7431 ", "lon", -97.7431),
        (30.266152, "lat", 30.266152),
        (-180, "lon", -180.0),
        ("90", "lat", 90.0),
        ("90.0001", "lat", None),
        (120.5, "lat", None),
        (120.5, "lon", 120.5),
        ("-180.5", "lon", None),
        ("", "lat", None),
        ("abc", "lat", None),
        ("30,26", "lat", None),
        ("nan", "lat", None),
        (float("inf"), "lon", None),
        (True, "lat", None),
        ([30.2], "lat", None),
        (10**400, "lon", None),
        (None, "lon", None),
    ],
)
def test_parse_coordinate(value, kind, expected):
    assert parse_coordinate(value, kind) == expected


def test_parse_coordinate_rejects_unknown_kind():
    with pytest.raises(ValueError):
        parse_coordinate("1", "latitude")
