"""Listings, entity resolution and the master's lifecycle: pure functions on small hand-built
listings (the shape `_place_to_listing` returns, plus `searches` and `seen_at` as the asset
adds them), and on the recorded restaurants answers."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from ml.directory.listings import (
    LOCATIONIQ_ATTRIBUTION,
    OSM_LICENCE,
    apply_overpass,
    attribution,
    build_listings,
    merge_source_listings,
    osm_refs_of,
    parse_places,
)
from ml.directory.merge import (
    build_business,
    cluster_listings,
    content_hash,
    reconcile,
    resolve,
)
from ml.directory.normalize import distance_m
from orchestration.settings import PROJECT_ROOT

FIXTURES = PROJECT_ROOT / "fixtures"
T1 = datetime(2025, 5, 12, 9, 0, tzinfo=UTC)
T2 = T1 + timedelta(days=1)
T3 = T1 + timedelta(days=2)
T4 = T1 + timedelta(days=3)
LAT, LON = 30.295431, -97.7416822  # Guadalupe Street, Austin
METRES_PER_DEGREE_LAT = 111_195.0


def north(metres: float) -> float:
    return LAT + metres / METRES_PER_DEGREE_LAT


def listing(
    ref: str,
    name: str,
    lat: float = LAT,
    lon: float = LON,
    *,
    tags: dict | None = None,
    address: dict | None = None,
    sources: tuple[str, ...] = ("nominatim",),
    verified: bool = False,
    searches: tuple[str, ...] = ("tacos in Austin, TX",),
    seen_at: datetime = T1,
) -> dict:
    return {
        "osm_ref": ref,
        "name": name,
        "lat": lat,
        "lon": lon,
        "tags": dict(tags or {}),
        "address": dict({"city": "Austin", "country_code": "us"} if address is None else address),
        "sources": list(sources),
        "licence": OSM_LICENCE,
        "verified": verified,
        "searches": list(searches),
        "seen_at": seen_at,
    }


def recorded(relative: str):
    """The last recorded answer of a fixture (the one a retrying client ends up with)."""
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))["responses"][-1]["json"]


# --- listings from the sources ----------------------------------------------------------------------


def test_same_osm_object_from_two_sources_is_one_listing():
    nom = listing(
        "way/1",
        "Café Olé",
        tags={"amenity": "cafe", "phone": "+1 512 555 0101"},
        address={"road": "Congress Avenue", "city": "Austin"},
    )
    liq = listing(
        "way/1",
        "Cafe Ole",
        north(5),
        tags={"amenity": "coffee_shop", "phone": "+1 512 555 0199", "website": "ole.example"},
        address={"road": "S Congress Ave", "postcode": "78704"},
        sources=("locationiq",),
    )
    before = copy.deepcopy([nom, liq])
    [merged] = merge_source_listings([nom], [liq])
    assert merged["sources"] == ["locationiq", "nominatim"]
    assert (merged["name"], merged["lat"]) == ("Café Olé", LAT)  # the first source wins
    assert merged["tags"] == {"amenity": "cafe", "phone": "+1 512 555 0101", "website": "ole.example"}
    assert merged["address"] == {"road": "Congress Avenue", "city": "Austin", "postcode": "78704"}
    assert [nom, liq] == before  # inputs untouched
    [swapped] = merge_source_listings([liq], [nom])
    assert swapped["name"] == "Cafe Ole" and swapped["tags"]["phone"] == "+1 512 555 0199"


def test_different_osm_objects_stay_apart_in_order():
    merged = merge_source_listings([listing("node/2", "A")], [listing("node/1", "A"), listing("node/2", "B")])
    assert [m["osm_ref"] for m in merged] == ["node/2", "node/1"]
    assert merged[0]["name"] == "A"


def test_parse_places_keeps_located_osm_objects_and_counts_the_rest():
    def place(osm_type, osm_id, name, lat="30", lon="-97", **extra):
        return {"osm_type": osm_type, "osm_id": osm_id, "name": name, "lat": lat, "lon": lon, **extra}

    places = [
        place(
            "node",
            5,
            " Café ",
            "30.1",
            "-97.7",
            category="amenity",
            type="cafe",
            extratags={"phone": "1", "x": None},
            address={"city": "Austin"},
        ),
        place("way", "6", "", 30, -97, namedetails={"name": "Named"}, **{"class": "shop", "type": "bakery"}),
        place("node", 7, ""),  # no name
        place("node", 8, "No point", lat=None),
        place("node", 9, "Off the map", lat="91"),
        place("postcode", 10, "78701"),  # not an OSM object
        place("node", None, "No id"),
        "not a place",
    ]
    listings, dropped = parse_places(places, "nominatim")
    assert dropped == 6
    first, second = listings
    assert first["osm_ref"] == "node/5" and first["name"] == "Café"
    assert (first["lat"], first["lon"]) == (30.1, -97.7)
    assert first["tags"] == {"phone": "1", "amenity": "cafe"}  # None dropped, main tag from category/type
    assert first["sources"] == ["nominatim"] and first["verified"] is False
    assert first["licence"] == OSM_LICENCE
    assert second["osm_ref"] == "way/6" and second["name"] == "Named" and second["tags"] == {"shop": "bakery"}
    [liq], _ = parse_places(places[:1], "locationiq")
    assert liq["licence"] == f"{OSM_LICENCE}; {LOCATIONIQ_ATTRIBUTION}"


def test_real_coffee_answers_merge_nominatim_and_locationiq():
    nominatim = recorded("nominatim/search_coffee_austin.json")
    locationiq = recorded("locationiq/search_coffee_austin_tx.json")
    listings, stats = build_listings(
        nominatim, locationiq, [recorded("overpass/details_coffee_austin_tx.json")]
    )
    assert stats == {"listings": 8, "dropped": 0, "verified_by_overpass": 8}
    both = [item for item in listings if "nominatim" in item["sources"]]
    assert sorted(item["name"] for item in both) == ["Café Olé Congress", "Hyde Park Roasters"]
    assert all(item["sources"] == ["locationiq", "nominatim", "overpass"] for item in both)
    assert [item["osm_ref"] for item in listings] == sorted(item["osm_ref"] for item in listings)


def test_apply_overpass_overlays_tags_and_counts_each_listing_once():
    listings = [listing("way/1", "Old name", tags={"amenity": "cafe", "phone": "1"}), listing("node/2", "B")]
    answer = {
        "elements": [
            {
                "type": "way",
                "id": 1,
                "center": {"lat": 30.3, "lon": -97.8},
                "tags": {"name": "New", "phone": "2"},
            },
            {"type": "node", "id": 99, "lat": 1, "lon": 1, "tags": {"name": "Not searched"}},
        ]
    }
    assert apply_overpass(listings, [answer, answer]) == 1
    way = listings[0]
    assert (way["name"], way["lat"], way["lon"], way["verified"]) == ("New", 30.3, -97.8, True)
    assert way["tags"] == {"amenity": "cafe", "phone": "2", "name": "New"}
    assert way["sources"] == ["nominatim", "overpass"]
    assert listings[1]["verified"] is False


def test_osm_refs_of():
    assert osm_refs_of([listing("way/12", "A"), listing("node/3", "B")]) == [("way", 12), ("node", 3)]


@pytest.mark.parametrize(
    ("sources", "mentions_locationiq"),
    [
        (["nominatim"], False),
        (["nominatim", "overpass"], False),
        (["locationiq"], True),
        (["locationiq", "nominatim", "overpass"], True),
    ],
)
def test_attribution(sources, mentions_locationiq):
    text = attribution(sources)
    assert text.startswith(OSM_LICENCE)
    assert ("LocationIQ" in text) is mentions_locationiq


# --- clustering ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name_a", "name_b", "metres", "clusters"),
    [
        ("Torchy's Tacos", "Torchys Tacos", 27, 1),
        ("Torchy’s Tacos", "TORCHYS TACOS", 27, 1),
        ("Torchy's Tacos", "Torchy's Tacos", 500, 2),
        ("Torchy's Tacos", "Ramen Tatsu-ya", 0, 2),
    ],
)
def test_name_and_distance_clustering(name_a, name_b, metres, clusters):
    pair = [listing("node/1", name_a), listing("way/2", name_b, north(metres))]
    assert distance_m(LAT, LON, north(metres), LON) == pytest.approx(metres, abs=0.5)
    assert len(cluster_listings(pair)) == clusters
    assert len(resolve(pair)) == clusters


def test_max_distance_is_configurable():
    pair = [listing("node/1", "Torchy's Tacos"), listing("way/2", "Torchys Tacos", north(27))]
    assert len(cluster_listings(pair, max_distance_m=20)) == 2
    assert len(cluster_listings(pair, max_distance_m=30)) == 1


def test_same_osm_object_clusters_whatever_its_name_and_position():
    pair = [listing("node/1", "Old Name"), listing("node/1", "New Name", north(900))]
    assert cluster_listings(pair) == [[0, 1]]


def test_clusters_are_transitive():
    chain = [
        listing("node/1", "Joe's Coffee"),
        listing("node/2", "Joes Coffee", north(60)),  # 60 m from the first
        listing("node/3", "Joe's Coffee", north(120)),  # 60 m from the second, 120 m from the first
        listing("way/4", "Joe's Coffee Roasters", north(3000)),  # same OSM object as the next one
        listing("way/4", "Joe's Coffee Roasters", north(3000)),
        listing("node/5", "Joe's Coffee Roasters", north(3040)),
        listing("node/6", "Someone Else", north(60)),
    ]
    groups = sorted(sorted(group) for group in cluster_listings(chain))
    assert groups == [[0, 1, 2], [3, 4, 5], [6]]


# --- one business from a cluster -------------------------------------------------------------------


def test_build_business_normalises_and_prefers_the_verified_listing():
    richer = listing(
        "node/1",
        "Torchys Tacos",
        north(27),
        tags={
            "amenity": "fast_food",
            "phone": "(512) 555-0100",
            "website": "http://old.example",
            "cuisine": "mexican",
            "addr:street": "Guadalupe Street",
            "addr:housenumber": "2801",
            "email": "hola@torchys.example",
        },
        sources=("locationiq",),
        searches=("tacos in Austin, TX",),
        seen_at=T1,
    )
    verified = listing(
        "way/2",
        "Torchy's Tacos",
        tags={
            "amenity": "restaurant",
            "phone": "512.494.8226",
            "website": "TorchysTacos.EXAMPLE/locations/west-campus",
            "opening_hours": "Mo-Fr 07:00-22:00; Sa 08:00-23:00",
            "cuisine": "tex-mex;mexican",
        },
        address={
            "road": "Guadalupe St",
            "postcode": "78705",
            "city": "Austin",
            "state": "Texas",
            "country_code": "us",
        },
        sources=("nominatim", "overpass"),
        verified=True,
        searches=("restaurants in Austin, TX",),
        seen_at=T2,
    )
    business = build_business([richer, verified])
    assert business["name"] == "Torchy's Tacos"
    assert business["name_key"] == "torchys tacos"
    assert (business["lat"], business["lon"]) == (round(LAT, 7), round(LON, 7))
    assert business["phone"] == "+15124948226"
    assert business["website"] == "https://torchystacos.example/locations/west-campus"
    assert (business["category"], business["subcategory"]) == ("food_and_drink", "restaurant")
    assert business["cuisine"] == ["mexican", "tex-mex"]
    assert business["opening_hours_raw"] == "Mo-Fr 07:00-22:00; Sa 08:00-23:00"
    hours = business["opening_hours"]
    assert hours["days"]["mo"] == [["07:00", "22:00"]] and hours["days"]["sa"] == [["08:00", "23:00"]]
    assert hours["days"]["su"] == [] and hours["always_open"] is False
    # OSM's addr:* tags beat what the geocoder derived; gaps are filled from any listing
    assert (business["street"], business["housenumber"]) == ("Guadalupe Street", "2801")
    assert (business["postcode"], business["city"], business["state"]) == ("78705", "Austin", "Texas")
    assert business["country_code"] == "us"
    assert business["email"] == "hola@torchys.example"
    assert business["osm_refs"] == ["node/1", "way/2"]
    assert business["sources"] == ["locationiq", "nominatim", "overpass"]
    assert business["searches"] == ["restaurants in Austin, TX", "tacos in Austin, TX"]
    assert business["verified"] is True and business["seen_at"] == T2
    assert LOCATIONIQ_ATTRIBUTION in business["attribution"]


@pytest.mark.parametrize(
    ("tags", "address", "phone", "country_code"),
    [
        ({"phone": "220 000 000"}, {"country_code": "pt"}, "+351220000000", "pt"),
        (
            {"contact:phone": "220 000 000", "addr:country": "PT"},
            {"country_code": "us"},
            "+351220000000",
            "pt",
        ),
        ({"phone": "(512) 555-0101"}, {"country_code": "us"}, "+15125550101", "us"),
        ({"phone": "(512) 555-0101"}, {}, "+15125550101", None),  # no country: US by default
        ({"phone": "+354 551 2345"}, {"country_code": "us"}, "+3545512345", "us"),
        ({"phone": "not a phone"}, {"country_code": "us"}, None, "us"),
    ],
)
def test_phone_is_e164_in_the_address_country(tags, address, phone, country_code):
    business = build_business([listing("node/1", "Shop", tags=tags, address=address)])
    assert business["phone"] == phone
    assert business["country_code"] == country_code


@pytest.mark.parametrize(
    ("tags", "website"),
    [
        ({"website": "Example.COM/menu"}, "https://example.com/menu"),
        ({"contact:website": "HTTP://Example.com"}, "http://example.com"),
        ({"website": "not a site", "url": "https://fallback.example"}, "https://fallback.example"),
        ({"website": "mailto:x@y.example"}, None),
    ],
)
def test_website_is_normalised(tags, website):
    assert build_business([listing("node/1", "Shop", tags=tags)])["website"] == website


@pytest.mark.parametrize(
    ("tags", "category"),
    [
        ({"amenity": "cafe"}, ("food_and_drink", "cafe")),
        ({"shop": "florist"}, ("retail", "florist")),
        ({"healthcare": "dentist", "amenity": "dentist"}, ("health", "dentist")),
        ({}, ("other", "unknown")),
    ],
)
def test_category_comes_from_the_tags(tags, category):
    business = build_business([listing("node/1", "Shop", tags=tags)])
    assert (business["category"], business["subcategory"]) == category


def test_unparseable_opening_hours_keep_the_raw_value():
    business = build_business([listing("node/1", "Shop", tags={"opening_hours": "sunrise-sunset"})])
    assert business["opening_hours_raw"] == "sunrise-sunset" and business["opening_hours"] is None


@pytest.mark.parametrize(
    ("sources", "mentions_locationiq"),
    [((("nominatim",), ("nominatim", "overpass")), False), ((("nominatim",), ("locationiq",)), True)],
)
def test_business_attribution_names_locationiq_only_when_it_contributed(sources, mentions_locationiq):
    group = [listing("node/1", "Shop", sources=sources[0]), listing("node/1", "Shop", sources=sources[1])]
    assert ("LocationIQ" in build_business(group)["attribution"]) is mentions_locationiq


def test_content_hash_covers_content_not_bookkeeping():
    business = build_business([listing("node/1", "Shop", tags={"phone": "(512) 555-0101"})])
    assert business["content_hash"] == content_hash(business)
    assert content_hash({**business, "seen_at": T4, "searches": ["x"], "sources": ["y"]}) == content_hash(
        business
    )
    assert content_hash({**business, "phone": "+15125550102"}) != content_hash(business)


# --- the master's lifecycle ------------------------------------------------------------------------


def business(ref: str, name: str, seen_at: datetime, *, phone: str = "(512) 555-0101", refs=()) -> dict:
    group = [listing(ref, name, tags={"amenity": "cafe", "phone": phone}, seen_at=seen_at, verified=True)]
    group += [listing(extra, name, seen_at=seen_at) for extra in refs]
    return build_business(group)


def events(result) -> list[tuple[str, str, list[str]]]:
    return sorted((e["business_id"], e["event"], e["changed_fields"]) for e in result.events)


def row_of(result, business_id: str) -> dict:
    [row] = [r for r in result.rows if r["business_id"] == business_id]
    return row


def test_new_business_appears():
    result = reconcile([business("node/1", "Café", T1)], [], now=T2)
    [row] = result.rows
    assert row["business_id"].startswith("biz_")
    assert (row["status"], row["first_seen"], row["last_seen"], row["changed_at"]) == ("active", T1, T1, T2)
    assert row["verified_at"] == T1
    assert "verified" not in row and "seen_at" not in row
    assert events(result) == [(row["business_id"], "appeared", [])]
    assert result.count("appeared") == 1


def test_unchanged_business_has_no_event_and_keeps_changed_at():
    first = reconcile([business("node/1", "Café", T1)], [], now=T1)
    second = reconcile([business("node/1", "Café", T2)], first.rows, now=T2)
    [row] = second.rows
    assert second.events == []
    assert row["business_id"] == first.rows[0]["business_id"]
    assert (row["first_seen"], row["last_seen"], row["changed_at"]) == (T1, T2, T1)


def test_changed_phone_is_a_change():
    first = reconcile([business("node/1", "Café", T1)], [], now=T1)
    second = reconcile([business("node/1", "Café", T2, phone="(512) 555-0199")], first.rows, now=T2)
    [row] = second.rows
    assert events(second) == [(row["business_id"], "changed", ["phone"])]
    assert row["phone"] == "+15125550199" and row["changed_at"] == T2 and row["first_seen"] == T1
    assert second.events[0]["snapshot"]["phone"] == "+15125550199"


def test_disappearance_reappearance_lifecycle():
    cafe, bakery = business("node/1", "Café", T1), business("node/2", "Bakery", T1)
    run1 = reconcile([cafe, bakery], [], now=T1)
    bakery_id = next(r["business_id"] for r in run1.rows if r["name"] == "Bakery")

    run2 = reconcile([business("node/1", "Café", T2)], run1.rows, now=T2)
    gone = row_of(run2, bakery_id)
    assert len(run2.rows) == 2  # not forgotten
    assert (gone["status"], gone["changed_at"], gone["last_seen"]) == ("missing", T2, T1)
    assert events(run2) == [(bakery_id, "disappeared", [])]

    run3 = reconcile([business("node/1", "Café", T3)], run2.rows, now=T3)
    assert run3.events == []  # already missing: no second "disappeared"
    assert row_of(run3, bakery_id)["status"] == "missing" and row_of(run3, bakery_id)["changed_at"] == T2

    run4 = reconcile([business("node/1", "Café", T4), business("node/2", "Bakery", T4)], run3.rows, now=T4)
    back = row_of(run4, bakery_id)
    assert events(run4) == [(bakery_id, "reappeared", [])]
    assert (back["status"], back["first_seen"], back["last_seen"], back["changed_at"]) == (
        "active",
        T1,
        T4,
        T4,
    )


def test_previous_rows_lose_their_run_bookkeeping_when_missing():
    run1 = reconcile([business("node/2", "Bakery", T1)], [], now=T1)
    stored = [{**row, "tenant_id": "acme", "dagster_run_id": "r1"} for row in run1.rows]
    [row] = reconcile([], stored, now=T2).rows
    assert "tenant_id" not in row and "dagster_run_id" not in row and row["status"] == "missing"


def test_business_id_is_stable_when_one_osm_ref_is_shared():
    run1 = reconcile([business("way/5", "Café", T1)], [], now=T1)
    biz_id = run1.rows[0]["business_id"]
    # the shop is now also mapped as a node that sorts first: the id follows the shared way
    run2 = reconcile([business("way/5", "Café", T2, refs=("node/3",))], run1.rows, now=T2)
    assert [r["business_id"] for r in run2.rows] == [biz_id]
    assert run2.rows[0]["osm_refs"] == ["node/3", "way/5"]
    # and the way is gone, the node stays
    run3 = reconcile([business("node/3", "Café", T3)], run2.rows, now=T3)
    assert [r["business_id"] for r in run3.rows] == [biz_id]
    assert run3.rows[0]["first_seen"] == T1


def test_a_split_business_gets_a_new_id_for_the_second_part():
    run1 = reconcile([business("node/1", "Café", T1, refs=("node/2",))], [], now=T1)
    old_id = run1.rows[0]["business_id"]
    run2 = reconcile(
        [business("node/1", "Café", T2), business("node/2", "Café Annex", T2)], run1.rows, now=T2
    )
    ids = [r["business_id"] for r in run2.rows]
    assert ids[0] == old_id and len(set(ids)) == 2
    assert ("appeared" in [e["event"] for e in run2.events]) and run2.count("disappeared") == 0


def test_snapshots_are_json_serialisable():
    run1 = reconcile([business("node/1", "Café", T1), business("node/2", "Bakery", T1)], [], now=T1)
    run2 = reconcile([business("node/1", "Café", T2, phone="(512) 555-0199")], run1.rows, now=T2)
    for result in (run1, run2):
        for event in result.events:
            text = json.dumps(event)
            assert json.loads(text)["snapshot"]["business_id"] == event["business_id"]
    snapshot = run2.events[0]["snapshot"]
    assert isinstance(snapshot["first_seen"], str) and snapshot["opening_hours"] is None


# --- the recorded restaurants search ---------------------------------------------------------------


def test_restaurants_fixture_end_to_end():
    nominatim = recorded("nominatim/search_restaurants_austin_tx.json")
    answer = recorded("overpass/details_restaurants_austin_tx.json")
    listings, stats = build_listings(nominatim, None, [answer])
    assert stats == {"listings": 14, "dropped": 0, "verified_by_overpass": 13}
    assert [item["osm_ref"] for item in listings if not item["verified"]] == ["node/9102846631"]
    tagged = [{**item, "searches": ["restaurants in Austin, TX"], "seen_at": T1} for item in listings]
    businesses = resolve(tagged)
    assert len(businesses) == 13
    [torchys] = [b for b in businesses if len(b["osm_refs"]) > 1]
    assert torchys["name_key"] == "torchys tacos"
    assert torchys["osm_refs"] == ["node/4982270153", "way/402117863"]
    assert all(b["attribution"] == OSM_LICENCE for b in businesses)
    result = reconcile(businesses, [], now=T1)
    assert result.count("appeared") == 13 and len({r["business_id"] for r in result.rows}) == 13
    again = reconcile(resolve(tagged), result.rows, now=T2)
    assert again.events == [] and [r["business_id"] for r in again.rows] == [
        r["business_id"] for r in result.rows
    ]
