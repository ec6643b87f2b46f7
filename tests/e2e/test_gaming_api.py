"""The games route over real HTTP, on ThrillRing's replayed catalogue (50 featured games) and
its latest price snapshot, isolated by RLS. Expected sets are derived from the unfiltered list,
so each filter is checked against what the catalogue actually holds."""

import pytest

from tests.e2e.test_api import assert_error, get

GAMES = "/api/brain/gaming/games"


@pytest.fixture(scope="module")
def catalogue(api):
    body = get(api, GAMES, "thrillring", limit=200).json()
    assert body["page"]["total"] == 50 and len(body["data"]) == 50
    return body["data"]


def names(response):
    return {row["name"] for row in response.json()["data"]}


def test_thrillring_sees_its_games_with_prices_scores_and_attribution(catalogue):
    assert all(row["tenant_id"] == "thrillring" for row in catalogue)
    assert [row["popularity_rank"] for row in catalogue] == list(range(1, 51))  # the default order
    assert all("IGDB.com" in row["attribution"] for row in catalogue)
    witcher = next(row for row in catalogue if row["name"] == "The Witcher 3: Wild Hunt")
    assert (witcher["currency"], witcher["price"], witcher["initial_price"]) == ("USD", 7.99, 39.99)
    assert witcher["on_sale"] and witcher["discount_percent"] == 80
    # the latest daily snapshot is newer than the catalogue's fetch: the price comes from it
    assert witcher["price_date"] == "2026-11-24"
    assert witcher["review_score_desc"] == "Overwhelmingly Positive" and witcher["steam_appid"] == 292030
    assert witcher["score"] == witcher["critic_score"] == 92.7
    zelda = next(row for row in catalogue if row["name"] == "The Legend of Zelda: Breath of the Wild")
    assert zelda["steam_status"] == "not_on_steam" and zelda["price"] is None and zelda["price_date"] is None
    # without a critic score, the score is IGDB's total rating
    unscored = [row for row in catalogue if row["critic_score"] is None and row["total_rating"] is not None]
    assert unscored and all(row["score"] == row["total_rating"] for row in unscored)
    free = [row for row in catalogue if row["is_free"]]
    assert len(free) == 6 and all(row["price"] == 0 and not row["on_sale"] for row in free)


def test_name_words_genre_and_platform(api, catalogue):
    assert names(get(api, GAMES, "thrillring", q="witcher")) == {"The Witcher 3: Wild Hunt"}
    assert names(get(api, GAMES, "thrillring", q="hollow")) == {"Hollow Knight", "Hollow Knight: Silksong"}
    assert names(get(api, GAMES, "thrillring", q="silk HOLLOW")) == {"Hollow Knight: Silksong"}
    # roman numerals and digits are one key; accents, case and punctuation do not matter
    assert names(get(api, GAMES, "thrillring", q="elder scrolls 5")) == {"The Elder Scrolls V: Skyrim"}
    assert names(get(api, GAMES, "thrillring", q="grand theft auto v")) == {"Grand Theft Auto V"}
    assert names(get(api, GAMES, "thrillring", q="counter strike")) == {"Counter-Strike 2"}
    assert get(api, GAMES, "thrillring", q="zzzz").json()["page"]["total"] == 0

    rpg = get(api, GAMES, "thrillring", genre="rpg", limit=200).json()["data"]
    tagged = {row["name"] for row in catalogue if "Role-playing (RPG)" in row["genres"]}
    # IGDB's "Role-playing (RPG)" and Steam's "RPG" both count
    assert tagged <= {row["name"] for row in rpg} and len(rpg) >= len(tagged) > 10
    switch = get(api, GAMES, "thrillring", platform="switch", limit=200).json()["data"]
    assert {row["name"] for row in switch} == {
        row["name"] for row in catalogue if "Nintendo Switch" in row["platforms"]
    }
    ps5 = names(get(api, GAMES, "thrillring", platform="PlayStation 5", limit=200))
    assert ps5 == {row["name"] for row in catalogue if "PlayStation 5" in row["platforms"]}
    pc = names(get(api, GAMES, "thrillring", platform="pc", limit=200))
    assert pc == {row["name"] for row in catalogue if "PC (Microsoft Windows)" in row["platforms"]}


def test_score_price_and_sale_filters(api, catalogue):
    def expected(test):
        return {row["name"] for row in catalogue if test(row)}

    good = names(get(api, GAMES, "thrillring", min_score=90, limit=200))
    assert good == expected(lambda r: r["score"] is not None and r["score"] >= 90) and good
    on_sale = names(get(api, GAMES, "thrillring", on_sale="true", limit=200))
    assert on_sale == expected(lambda r: r["discount_percent"] > 0) and len(on_sale) == 8
    full_price = names(get(api, GAMES, "thrillring", on_sale="false", limit=200))
    assert full_price == expected(lambda r: r["discount_percent"] == 0) and not on_sale & full_price
    assert names(get(api, GAMES, "thrillring", is_free="true", limit=200)) == expected(lambda r: r["is_free"])
    cheap = names(get(api, GAMES, "thrillring", max_price=10, limit=200))
    assert cheap == expected(lambda r: r["price"] is not None and r["price"] <= 10)
    assert expected(lambda r: r["is_free"]) < cheap  # free games cost 0
    combined = names(get(api, GAMES, "thrillring", on_sale="true", max_price=10, genre="rpg", limit=200))
    assert combined and combined <= on_sale & cheap


def test_sorting_and_paging(api, catalogue):
    by_price = get(api, GAMES, "thrillring", sort="-price,name", limit=200).json()["data"]
    prices = [row["price"] for row in by_price if row["price"] is not None]
    assert prices == sorted(prices, reverse=True) and by_price[-1]["price"] is None  # NULLS LAST
    by_name = [row["name"] for row in get(api, GAMES, "thrillring", sort="name", limit=200).json()["data"]]
    assert by_name == sorted(by_name)
    critics = get(api, GAMES, "thrillring", sort="-critic_score", limit=5).json()["data"]
    assert critics[0]["critic_score"] == max(r["critic_score"] for r in catalogue if r["critic_score"])
    first = get(api, GAMES, "thrillring", limit=20, sort="-review_score,name").json()
    second = get(api, GAMES, "thrillring", limit=20, offset=20, sort="-review_score,name").json()
    last = get(api, GAMES, "thrillring", limit=20, offset=40, sort="-review_score,name").json()
    assert first["page"] == {"limit": 20, "offset": 0, "total": 50, "next_offset": 20}
    assert last["page"]["next_offset"] is None and len(last["data"]) == 10
    seen = [row["igdb_id"] for page in (first, second, last) for row in page["data"]]
    assert len(seen) == len(set(seen)) == 50
    past_the_end = get(api, GAMES, "thrillring", offset=500).json()
    assert past_the_end["data"] == [] and past_the_end["page"]["total"] == 50


def test_isolation_other_tenants_see_no_games_and_the_master_may_narrow(api):
    assert get(api, GAMES, "coreldove").json()["page"]["total"] == 0
    assert get(api, GAMES, "directory", q="witcher").json()["page"]["total"] == 0
    narrowed = get(api, GAMES, "master", {"X-Tenant-ID": "thrillring"}).json()
    assert narrowed["page"]["total"] == 50
    assert_error(get(api, GAMES, "coreldove", {"X-Tenant-ID": "thrillring"}), 403)
    assert_error(get(api, GAMES), 401)


@pytest.mark.parametrize(
    "params",
    [
        {"min_score": 101},
        {"min_score": -1},
        {"max_price": -5},
        {"on_sale": "maybe"},
        {"is_free": "perhaps"},
        {"sort": "nope"},
        {"sort": "price; DROP TABLE core.gaming_catalogue"},
        {"q": "!!!"},
        {"genre": "  "},
        {"platform": "***"},
        {"limit": 0},
        {"limit": 201},
        {"offset": -1},
    ],
)
def test_bad_parameters_are_clear_422s(api, params):
    body = assert_error(get(api, GAMES, "thrillring", **params), 422)
    assert body["code"] == "invalid_request"
