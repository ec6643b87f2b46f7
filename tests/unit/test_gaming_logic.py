"""Pure logic of the game catalogue (ml/gaming): parsing each source's answers, game-name keys
and match confidence, fusing the sources into catalogue rows, price changes."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from ml.gaming.catalogue import (
    assign_steam_ids,
    content_hash,
    critic_action,
    critic_from_detail,
    critic_no_match,
    empty_steam,
    fuse,
    kept_critic,
    unique_critic_ids,
)
from ml.gaming.igdb import parse_game, parse_games, steam_appid
from ml.gaming.names import best_match, game_name_key, match_confidence
from ml.gaming.opencritic import parse_game as parse_critic
from ml.gaming.opencritic import search_hits
from ml.gaming.prices import ISO_4217, minor_to_major, price_changes
from ml.gaming.steam import (
    entry_for,
    parse_appdetails,
    parse_price_entry,
    parse_release_date,
    parse_review_summary,
)

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)

# --- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("The Witcher® 3: Wild Hunt", "witcher 3 wild hunt"),
        ("FINAL FANTASY VII REMAKE", "final fantasy 7 remake"),
        ("Grand Theft Auto V", "grand theft auto 5"),
        ("Counter-Strike 2", "counter strike 2"),
        ("Tom Clancy’s Rainbow Six® Siege", "tom clancys rainbow six siege"),
        ("Pokémon™ Scarlet", "pokemon scarlet"),
        ("I Am Bread", "i am bread"),  # a lone "I" is a word, not a numeral
        ("Ratchet & Clank", "ratchet and clank"),
        ("", ""),
        (None, ""),
    ],
)
def test_game_name_key(name, key):
    assert game_name_key(name) == key


def test_match_confidence_is_certain_only_for_equal_keys():
    assert match_confidence("Mass Effect Legendary Edition", "Mass Effect: Legendary Edition", 0.2) == 1.0
    assert match_confidence("Final Fantasy 7", "FINAL FANTASY VII", 0.6) == 1.0
    close = match_confidence("God of War", "God of War (2018)", 0.14)
    assert 0.75 <= close < 1.0
    sequel = match_confidence("Hades", "Hades II", 0.3)
    assert sequel < 0.75
    assert match_confidence("Portal 2", "Portal Knights", 0.47) < 0.5
    assert match_confidence("", "Anything", 0.0) == 0.0
    # without the search engine's distance, only the shared words count
    assert match_confidence("Elden Ring", "Elden Ring Nightreign", None) == pytest.approx(0.667, abs=1e-3)


def test_best_match_prefers_equal_names_then_smaller_distance_and_keeps_near_misses():
    hits = [
        {"id": 1, "name": "The Last of Us Part II", "dist": 0.31},
        {"id": 2, "name": "The Last of Us Part I", "dist": 0.29},
    ]
    miss = best_match("The Last of Us", hits)
    assert not miss.matched and miss.matched_id is None
    assert (miss.candidate_id, miss.candidate_name) == (2, "The Last of Us Part I")
    assert 0.5 < miss.confidence < 0.75
    assert best_match("The Last of Us", hits, min_confidence=0.5).matched_id == 2

    exact = best_match("Elden Ring", [{"id": 7, "name": "Elden Ring Soundtrack", "dist": 0.3},
                                       {"id": 8, "name": "ELDEN RING", "dist": 0.1}])  # fmt: skip
    assert exact.matched and exact.matched_id == 8 and exact.confidence == 1.0
    # hits without an int id or a name are ignored; no usable hit is a no-match
    none = best_match("Dota 2", [{"id": "3", "name": "Dota 2"}, {"name": "Dota 2"}, "junk", {"id": True}])
    assert none == best_match("Dota 2", []) and not none.matched and none.candidate_name is None


# --- IGDB --------------------------------------------------------------------------------------------


def test_igdb_record_with_the_new_external_game_source():
    game = parse_game(
        {
            "id": 1942,
            "name": " The Witcher 3: Wild Hunt ",
            "slug": "the-witcher-3-wild-hunt",
            "first_release_date": 1431993600,
            "updated_at": 1714600123,
            "genres": [{"id": 12, "name": "Role-playing (RPG)"}, {"id": 31, "name": "Adventure"}],
            "platforms": [{"id": 6, "name": "PC (Microsoft Windows)"}],
            "total_rating": 93.4,
            "total_rating_count": 4012,
            "external_games": [
                {"id": 1, "uid": "1207664663", "external_game_source": 5},
                {"id": 2, "uid": "292030", "external_game_source": 1, "category": 1},
            ],
        }
    )
    assert game["name"] == "The Witcher 3: Wild Hunt" and game["igdb_id"] == 1942
    assert game["release_date"] == date(2015, 5, 19)
    assert game["igdb_updated_at"] == datetime(2024, 5, 1, 21, 48, 43, tzinfo=UTC)
    assert game["genres"] == ["Role-playing (RPG)", "Adventure"]
    assert game["steam_appid"] == 292030 and game["total_rating"] == 93.4


def test_igdb_legacy_category_omitted_fields_and_unexpanded_ids():
    game = parse_game(
        {"id": 72, "name": "Portal 2", "genres": [9, 8], "external_games": [{"uid": "620", "category": 1}]}
    )
    assert game["steam_appid"] == 620
    assert game["genres"] == [] and game["platforms"] == []  # bare ids carry no names
    assert game["release_date"] is None and game["total_rating"] is None and game["slug"] is None
    # an expanded source object, a non-Steam store, a non-numeric uid
    assert steam_appid({"external_games": [{"uid": "1", "external_game_source": {"id": 1}}]}) == 1
    assert steam_appid({"external_games": [{"uid": "620", "external_game_source": 5, "category": 1}]}) is None
    assert steam_appid({"external_games": [{"uid": "abc", "external_game_source": 1}, 17]}) is None
    assert steam_appid({"external_games": "oops"}) is None


def test_igdb_records_without_id_or_name_and_repeats_are_dropped():
    games, dropped = parse_games(
        [
            {"id": 1, "name": "A"},
            {"id": 1, "name": "A again"},
            {"name": "no id"},
            {"id": 2},
            "x",
            {"id": 3, "name": "C"},
        ]
    )
    assert [g["igdb_id"] for g in games] == [1, 3] and games[0]["name"] == "A" and dropped == 4
    assert parse_game({"id": True, "name": "bool id"}) is None
    assert parse_game({"id": 5, "name": "x", "first_release_date": 10**20})["release_date"] is None


# --- Steam -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("18 May, 2015", date(2015, 5, 18)),
        ("May 18, 2015", date(2015, 5, 18)),
        ("4 Sept, 2025", date(2025, 9, 4)),
        ("September 4, 2025", date(2025, 9, 4)),
        ("  18  May 2015 ", date(2015, 5, 18)),
        ("2015-05-18", date(2015, 5, 18)),
        ("May 2026", date(2026, 5, 1)),
        ("2027", date(2027, 1, 1)),
        ("Q3 2026", date(2026, 7, 1)),
        ("Coming soon", None),
        ("To be announced", None),
        ("", None),
        (None, None),
        (20150518, None),
    ],
)
def test_store_release_dates_are_parsed_defensively(text, day):
    assert parse_release_date(text) == day


def test_appdetails_entry_prices_in_major_units_and_odd_types():
    body = {
        "292030": {
            "success": True,
            "data": {
                "type": "game",
                "name": "The Witcher 3: Wild Hunt",
                "required_age": "18",
                "is_free": False,
                "genres": [{"id": "3", "description": "RPG"}, {"id": "3", "description": "RPG"}],
                "price_overview": {"currency": "usd", "initial": 3999, "final": 799, "discount_percent": 80},
                "release_date": {"coming_soon": False, "date": "18 May, 2015"},
                "developers": ["CD PROJEKT RED", None],
            },
        }
    }
    details = parse_appdetails(entry_for(body, 292030))
    assert details["steam_available"] and details["required_age"] == 18
    assert (details["currency"], details["initial_price"], details["final_price"]) == (
        "USD",
        Decimal("39.99"),
        Decimal("7.99"),
    )
    assert details["discount_percent"] == 80 and details["steam_genres"] == ["RPG"]
    assert details["steam_release_date"] == date(2015, 5, 18) and details["developers"] == ["CD PROJEKT RED"]
    assert entry_for(body, 1) is None and entry_for(None, 292030) is None


def test_success_false_free_games_and_the_batched_price_form():
    assert parse_appdetails({"success": False}) == {
        "steam_available": False,
        "currency": None,
        "initial_price": None,
        "final_price": None,
        "discount_percent": None,
    }
    free = parse_appdetails({"success": True, "data": {"is_free": True, "required_age": 0}})
    assert free["is_free"] and free["final_price"] is None and free["required_age"] == 0
    assert parse_price_entry({"success": True, "data": []}) == {
        "available": True,
        "currency": None,
        "initial_price": None,
        "final_price": None,
        "discount_percent": None,
    }
    assert parse_price_entry({"success": False})["available"] is False
    assert parse_price_entry(None)["available"] is False
    priced = parse_price_entry(
        {"success": True, "data": {"price_overview": {"currency": "JPY", "initial": 498000, "final": 498000}}}
    )
    # Steam scales every currency by 100, yen included
    assert priced["final_price"] == Decimal("4980.00") and priced["discount_percent"] == 0
    broken = parse_price_entry(
        {"success": True, "data": {"price_overview": {"currency": "USD", "final": "9.99"}}}
    )
    assert broken["final_price"] is None


def test_review_summary():
    summary = parse_review_summary(
        {
            "success": 1,
            "query_summary": {
                "num_reviews": 0,
                "review_score": 8,
                "review_score_desc": "Very Positive",
                "total_positive": 41210,
                "total_negative": 3120,
                "total_reviews": 44330,
            },
        }
    )
    assert summary == {
        "review_score": 8,
        "review_score_desc": "Very Positive",
        "reviews_positive": 41210,
        "reviews_negative": 3120,
        "reviews_total": 44330,
    }
    assert parse_review_summary({"success": 2}) is None and parse_review_summary([]) is None
    assert (
        parse_review_summary({"success": 1, "query_summary": {"total_reviews": -1}})["reviews_total"] is None
    )


# --- OpenCritic and prices -------------------------------------------------------------------------


def test_opencritic_minus_one_means_no_score():
    detail = parse_critic({"id": 15580, "name": "Counter-Strike 2", "topCriticScore": -1, "tier": "",
                           "percentRecommended": -1, "numReviews": 4})  # fmt: skip
    assert detail["critic_score"] is None and detail["percent_recommended"] is None
    assert detail["critic_tier"] is None and detail["critic_reviews"] == 4
    scored = parse_critic({"id": 1, "topCriticScore": 95.123, "tier": "Mighty", "percentRecommended": 97.8})
    assert scored["critic_score"] == 95.12 and scored["critic_tier"] == "Mighty"
    assert parse_critic({"name": "no id"}) is None and parse_critic([]) is None
    hits = search_hits([{"id": 1, "name": "A", "dist": 0}, {"id": 2, "name": "B", "relation": "company"},
                        {"id": "3", "name": "C"}, None])  # fmt: skip
    assert [h["id"] for h in hits] == [1] and search_hits({"error": "x"}) == []


def test_minor_units_and_currencies():
    assert minor_to_major(1999) == Decimal("19.99") and minor_to_major(0) == Decimal("0.00")
    assert minor_to_major(-1) is None and minor_to_major(True) is None and minor_to_major("1999") is None
    assert {"USD", "GBP", "EUR", "JPY", "BRL"} <= ISO_4217 and "GBX" not in ISO_4217 and len(ISO_4217) > 150


def test_price_changes_name_what_changed():
    before = [
        {
            "igdb_id": 1,
            "currency": "USD",
            "final_price": Decimal("59.99"),
            "discount_percent": 0,
            "available": True,
        },
        {
            "igdb_id": 2,
            "currency": "USD",
            "final_price": Decimal("9.99"),
            "discount_percent": 50,
            "available": True,
        },
        {
            "igdb_id": 3,
            "currency": "USD",
            "final_price": Decimal("5"),
            "discount_percent": 0,
            "available": True,
        },
        {
            "igdb_id": 4,
            "currency": "EUR",
            "final_price": Decimal("5"),
            "discount_percent": 0,
            "available": True,
        },
        {
            "igdb_id": 5,
            "currency": "USD",
            "final_price": Decimal("5"),
            "discount_percent": 0,
            "available": True,
        },
    ]
    after = [
        {
            "igdb_id": 1,
            "currency": "USD",
            "final_price": Decimal("29.99"),
            "discount_percent": 50,
            "available": True,
        },
        {
            "igdb_id": 2,
            "currency": "USD",
            "final_price": Decimal("19.99"),
            "discount_percent": 0,
            "available": True,
        },
        {"igdb_id": 3, "currency": None, "final_price": None, "discount_percent": None, "available": False},
        {
            "igdb_id": 4,
            "currency": "USD",
            "final_price": Decimal("6"),
            "discount_percent": 0,
            "available": True,
        },
        {
            "igdb_id": 5,
            "currency": "USD",
            "final_price": Decimal("5"),
            "discount_percent": 0,
            "available": True,
        },
        {
            "igdb_id": 6,
            "currency": "USD",
            "final_price": Decimal("5"),
            "discount_percent": 0,
            "available": True,
        },
    ]
    kinds = {c["igdb_id"]: c["kind"] for c in price_changes(before, after)}
    assert kinds == {
        1: "price_down,discount_started",
        2: "price_up,discount_ended",
        3: "delisted",
        # another currency is not a price change
    }


# --- fusing -------------------------------------------------------------------------------------------


def _game(igdb_id, rank, steam=None, **extra):
    return {
        "igdb_id": igdb_id,
        "name": f"Game {igdb_id}",
        "popularity_rank": rank,
        "steam_appid": steam,
        "genres": ["Shooter"],
        "platforms": ["PC (Microsoft Windows)"],
        "total_rating": 81.456,
        **extra,
    }


def test_a_shared_steam_id_stays_with_the_most_popular_game():
    games = assign_steam_ids([_game(1, 1, 730), _game(2, 2, 730), _game(3, 3, 570), _game(4, 4)])
    assert [g["steam_appid"] for g in games] == [730, None, 570, None]
    assert games[1]["flags"] == ["steam_id_shared"] and "flags" not in games[0]


def test_critic_action_by_id_by_name_or_not_again_too_soon():
    week = timedelta(days=28)
    assert critic_action(None, NOW, week) == "search"
    assert critic_action({"opencritic_id": 5}, NOW, week) == "detail"
    recent = {"opencritic_id": None, "opencritic_searched_at": NOW - timedelta(days=3)}
    assert critic_action(recent, NOW, week) == "keep"
    stale = {"opencritic_id": None, "opencritic_searched_at": NOW - timedelta(days=40)}
    assert critic_action(stale, NOW, week) == "search"


def test_critic_fields_kept_matched_and_unmatched():
    assert kept_critic(None, "budget_spent")["opencritic_status"] == "not_searched"
    assert kept_critic(None, "budget_spent")["flags"] == ["opencritic_budget_spent"]
    previous = {"opencritic_id": 9, "opencritic_status": "matched", "critic_score": Decimal("90.10"),
                "opencritic_match_name": "X", "opencritic_match_confidence": Decimal("0.9")}  # fmt: skip
    kept = kept_critic(previous, "offline")
    assert kept["critic_score"] == Decimal("90.10") and kept["flags"] == ["opencritic_offline"]
    match = best_match("Game 1", [{"id": 9, "name": "Game 1", "dist": 0}])
    detail = {"opencritic_id": 9, "opencritic_name": "Game 1", "critic_score": 91.0, "critic_reviews": 50,
              "critic_tier": "Mighty", "percent_recommended": 95.0, "opencritic_url": None}  # fmt: skip
    fresh = critic_from_detail(detail, None, NOW, match)
    assert fresh["opencritic_status"] == "matched" and fresh["opencritic_match_confidence"] == 1.0
    assert fresh["opencritic_searched_at"] == NOW and fresh["critic_score"] == 91.0
    refreshed = critic_from_detail(detail, previous, NOW)
    assert refreshed["opencritic_match_name"] == "X" and refreshed["opencritic_match_confidence"] == Decimal(
        "0.9"
    )
    unreadable = critic_from_detail(None, previous, NOW)
    assert unreadable["critic_score"] == Decimal("90.10") and unreadable["flags"] == [
        "opencritic_detail_unreadable"
    ]
    miss = critic_no_match(best_match("Game 1", [{"id": 4, "name": "Other thing", "dist": 0.6}]), NOW)
    assert miss["opencritic_status"] == "no_match" and miss["opencritic_id"] is None
    assert miss["opencritic_match_name"] == "Other thing"


def test_two_games_matched_to_one_opencritic_game():
    critics = [
        {"opencritic_id": 9, "critic_score": 90},
        {"opencritic_id": 9, "critic_score": 90, "flags": []},
        {"opencritic_id": None},
    ]
    assert unique_critic_ids(critics) == 1
    assert critics[0]["opencritic_id"] == 9 and critics[1]["opencritic_id"] is None
    assert critics[1]["opencritic_status"] == "no_match" and critics[1]["flags"] == ["opencritic_id_shared"]


def test_fuse_keys_flags_hash_and_change_tracking():
    steam = {
        "steam_status": "ok",
        "steam_name": "Game 1",
        "is_free": False,
        "currency": "USD",
        "initial_price": Decimal("20.00"),
        "final_price": Decimal("10.00"),
        "discount_percent": 50,
        "steam_genres": ["Action"],
        "steam_release_date": date(2020, 1, 2),
        "review_score": None,
    }
    critic = critic_no_match(best_match("Game 1", []), NOW)
    row = fuse(_game(1, 1, 730), steam, critic, None, igdb_fetched_at=NOW, steam_fetched_at=NOW, now=NOW)
    assert row["steam_appid"] == 730 and row["total_rating"] == Decimal("81.46")
    assert row["release_date"] == date(2020, 1, 2)  # IGDB had none: the store's date fills the gap
    assert row["flags"] == ["no_steam_reviews", "opencritic_no_match"]
    assert row["genre_keys"] == ["action", "shooter"] and row["platform_keys"] == ["pc microsoft windows"]
    assert row["first_seen"] == row["changed_at"] == NOW

    later = NOW + timedelta(days=7)
    again = fuse(
        _game(1, 2, 730), steam, critic, row, igdb_fetched_at=later, steam_fetched_at=later, now=later
    )
    # fetch times and the popularity rank are not content: unchanged
    assert again["content_hash"] == row["content_hash"] and again["changed_at"] == NOW
    cheaper = fuse(_game(1, 1, 730), {**steam, "final_price": Decimal("5.00")}, critic, row,
                   igdb_fetched_at=later, steam_fetched_at=later, now=later)  # fmt: skip
    assert cheaper["content_hash"] != row["content_hash"]
    assert cheaper["changed_at"] == later and cheaper["first_seen"] == NOW

    off_steam = fuse(_game(2, 3), empty_steam("not_on_steam"), kept_critic(None, "budget_spent"), None,
                     igdb_fetched_at=NOW, steam_fetched_at=None, now=NOW)  # fmt: skip
    assert off_steam["flags"] == ["no_steam_id", "opencritic_budget_spent"]
    assert off_steam["final_price"] is None and off_steam["opencritic_status"] == "not_searched"


def test_content_hash_ignores_number_representation():
    assert content_hash({"a": Decimal("95.10")}) == content_hash({"a": 95.1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})


def test_a_live_price_snapshot_only_writes_today_or_yesterday():
    from datetime import date

    from dagster import Failure

    from assets.gaming import check_snapshot_day

    today = date(2026, 11, 26)
    check_snapshot_day(date(2026, 11, 25), today, "live")  # the day that just ended
    check_snapshot_day(today, today, "live")
    with pytest.raises(Failure, match="Steam only tells today's prices"):
        check_snapshot_day(date(2026, 11, 12), today, "live")  # a backfill would overwrite history
    check_snapshot_day(date(2026, 11, 12), today, "replay")  # recorded days replay as recorded
