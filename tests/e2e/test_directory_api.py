"""Directory routes over real HTTP, on the demo tenant's replayed data (31 businesses in
Austin and Portland), isolated by RLS."""

import pytest

from tests.e2e.test_api import assert_error, get

BUSINESSES = "/api/brain/directory/businesses"
COVERAGE = "/api/brain/analytics/directory"
DOWNTOWN_AUSTIN = "30.2672,-97.7431"


def test_the_directory_tenant_lists_its_businesses_with_attribution(api):
    body = get(api, BUSINESSES, "directory", limit=200).json()
    assert body["page"]["total"] == 31 and len(body["data"]) == 31
    rows = body["data"]
    assert all(r["tenant_id"] == "business_directory" for r in rows)
    assert all("OpenStreetMap contributors" in r["attribution"] for r in rows)
    assert all(r["phone"] is None or r["phone"].startswith("+1") for r in rows)
    assert any(r["opening_hours"] and r["opening_hours"]["days"]["mo"] for r in rows)


def test_text_category_and_paging(api):
    cafe = get(api, BUSINESSES, "directory", q="cafe no se").json()["data"]
    assert [r["name"] for r in cafe] == ["Café No Sé"]  # accents and case do not matter
    health = get(api, BUSINESSES, "directory", category="health").json()
    assert health["page"]["total"] == 11 and {r["category"] for r in health["data"]} == {"health"}
    first = get(api, BUSINESSES, "directory", limit=10, sort="-name").json()
    second = get(api, BUSINESSES, "directory", limit=10, offset=10, sort="-name").json()
    assert first["page"]["next_offset"] == 10 and len(second["data"]) == 10
    assert not {r["business_id"] for r in first["data"]} & {r["business_id"] for r in second["data"]}
    portland = get(api, BUSINESSES, "directory", city="portland").json()
    assert portland["page"]["total"] == 11
    past_the_end = get(api, BUSINESSES, "directory", offset=500).json()
    assert past_the_end["data"] == [] and past_the_end["page"]["total"] == 31
    # words match the start of words in the name, the subcategory or the cuisine
    dentists = get(api, BUSINESSES, "directory", q="dent").json()
    assert dentists["page"]["total"] >= 11 and all(r["category"] == "health" for r in dentists["data"])
    assert get(api, BUSINESSES, "directory", q="torchy").json()["page"]["total"] == 1
    # characters at the edges of Unicode are searched for, not a server error
    for edge in ("\U0010ffff", "a\ud7ff", "z\U0010ffff"):
        response = get(api, BUSINESSES, "directory", q=edge)
        assert response.status_code == 200 and response.json()["page"]["total"] == 0


def test_near_filters_by_distance_and_sorts_nearest_first(api):
    near = get(api, BUSINESSES, "directory", near=DOWNTOWN_AUSTIN, radius_km=3).json()["data"]
    assert near and all(r["distance_m"] <= 3000 for r in near)
    assert [r["distance_m"] for r in near] == sorted(r["distance_m"] for r in near)
    everything_austin = get(api, BUSINESSES, "directory", near=DOWNTOWN_AUSTIN, radius_km=50).json()
    assert everything_austin["page"]["total"] == 20  # 13 restaurants + 7 coffee shops, no Portland
    assert (
        get(api, BUSINESSES, "directory", near="45.5152,-122.6784", radius_km=20).json()["page"]["total"]
        == 11
    )


@pytest.mark.parametrize(
    "params",
    [
        {"near": "91,0"},
        {"near": "abc"},
        {"near": "30.2,-97.7,1"},
        {"radius_km": 2},
        {"near": DOWNTOWN_AUSTIN, "radius_km": 0},
        {"near": DOWNTOWN_AUSTIN, "radius_km": 1000},
        {"category": "casino"},
        {"sort": "distance_m"},
        {"sort": "phone; DROP TABLE core.businesses_master"},
        {"q": "!!!"},
        {"limit": 0},
        {"city": "  "},
    ],
)
def test_bad_parameters_are_clear_422s(api, params):
    body = assert_error(get(api, BUSINESSES, "directory", **params), 422)
    assert body["code"] == "invalid_request"


def test_other_tenants_see_no_businesses_and_the_master_may_narrow(api):
    assert get(api, BUSINESSES, "thrillring").json()["page"]["total"] == 0
    narrowed = get(api, BUSINESSES, "master", {"X-Tenant-ID": "business_directory"}).json()
    assert narrowed["page"]["total"] == 31
    assert_error(get(api, BUSINESSES, "coreldove", {"X-Tenant-ID": "business_directory"}), 403)
    assert_error(get(api, BUSINESSES), 401)


def test_coverage_mart_by_category_and_city(api):
    body = get(api, COVERAGE, "directory", limit=200).json()
    rows = body["data"]
    assert sum(r["businesses"] for r in rows) == 31
    assert {r["category"] for r in rows} >= {"food_and_drink", "health"}
    assert all(0 <= r["share_with_phone"] <= 1 and r["freshness_hours"] >= 0 for r in rows)
    portland = get(api, COVERAGE, "directory", city="Portland").json()["data"]
    assert sum(r["businesses"] for r in portland) == 11
    assert get(api, COVERAGE, "thrillring").json()["page"]["total"] == 0
    past_the_end = get(api, COVERAGE, "directory", offset=500).json()
    assert past_the_end["data"] == [] and past_the_end["page"]["total"] == body["page"]["total"]
    assert_error(get(api, COVERAGE, "directory", sort="nope"), 422)
