"""From raw API answers to listings: one listing per OSM object found by a search.

Nominatim (`format=jsonv2`) and LocationIQ (`format=json`) speak the same dialect with small
differences (`category` vs `class`, ids as numbers vs strings); Overpass adds the object's
full tag set. Parsing is a pure function of the stored raw answers, so a parser fix is
replayed from the warehouse without calling any API again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ml.directory.normalize import parse_coordinate

OSM_LICENCE = "Data © OpenStreetMap contributors, ODbL 1.0. https://osm.org/copyright"
LOCATIONIQ_ATTRIBUTION = "Search by LocationIQ.com"
OSM_TYPES = ("node", "way", "relation")


def osm_ref(osm_type: str, osm_id: int | str) -> str:
    return f"{osm_type}/{int(osm_id)}"


def _place_to_listing(place: Mapping[str, Any], source: str) -> dict | None:
    """One Nominatim-style place as a listing; None when it cannot name a located business."""
    osm_type = place.get("osm_type")
    try:
        osm_id = int(place.get("osm_id"))
    except (TypeError, ValueError):
        return None
    if osm_type not in OSM_TYPES:
        return None
    lat, lon = parse_coordinate(place.get("lat"), "lat"), parse_coordinate(place.get("lon"), "lon")
    namedetails = place.get("namedetails") or {}
    name = (place.get("name") or namedetails.get("name") or "").strip()
    if not name or lat is None or lon is None:
        return None
    key = place.get("category") or place.get("class") or ""
    tags = {str(k): str(v) for k, v in (place.get("extratags") or {}).items() if v is not None}
    if key and place.get("type"):
        tags.setdefault(key, str(place["type"]))
    return {
        "osm_ref": osm_ref(osm_type, osm_id),
        "name": name,
        "lat": lat,
        "lon": lon,
        "tags": tags,
        "address": {str(k): str(v) for k, v in (place.get("address") or {}).items()},
        "sources": [source],
        # LocationIQ's `licence` is its own attribution URL; the data is still OpenStreetMap's.
        "licence": str(place.get("licence") or OSM_LICENCE)
        if source == "nominatim"
        else f"{OSM_LICENCE}; {LOCATIONIQ_ATTRIBUTION}",
        "verified": False,
    }


def parse_places(places: Iterable[Mapping[str, Any]], source: str) -> tuple[list[dict], int]:
    """Listings from a Nominatim or LocationIQ answer, and how many places were dropped
    (no name, no coordinates, or not an OSM object such as a postcode area)."""
    listings, dropped = [], 0
    for place in places:
        listing = _place_to_listing(place, source) if isinstance(place, Mapping) else None
        if listing is None:
            dropped += 1
        else:
            listings.append(listing)
    return listings, dropped


def merge_source_listings(*groups: Sequence[dict]) -> list[dict]:
    """Listings of the same OSM object from several sources become one (first source wins
    for values; sources are combined)."""
    merged: dict[str, dict] = {}
    for listing in (item for group in groups for item in group):
        existing = merged.get(listing["osm_ref"])
        if existing is None:
            merged[listing["osm_ref"]] = {**listing, "sources": list(listing["sources"])}
            continue
        existing["tags"] = {**listing["tags"], **existing["tags"]}
        existing["address"] = {**listing["address"], **existing["address"]}
        existing["sources"] = sorted(set(existing["sources"]) | set(listing["sources"]))
    return list(merged.values())


def apply_overpass(listings: list[dict], answers: Iterable[Mapping[str, Any]]) -> int:
    """Overlay the Overpass tags (the authoritative, complete tag set) onto the listings they
    describe; returns how many listings were verified this way."""
    by_ref = {listing["osm_ref"]: listing for listing in listings}
    verified = 0
    for answer in answers:
        for element in answer.get("elements") or []:
            listing = by_ref.get(osm_ref(element.get("type", ""), element.get("id", -1)))
            if listing is None:
                continue
            tags = {str(k): str(v) for k, v in (element.get("tags") or {}).items()}
            listing["tags"] = {**listing["tags"], **tags}
            if tags.get("name"):
                listing["name"] = tags["name"].strip()
            point = element.get("center") or element
            lat, lon = parse_coordinate(point.get("lat"), "lat"), parse_coordinate(point.get("lon"), "lon")
            if lat is not None and lon is not None:
                listing["lat"], listing["lon"] = lat, lon
            if "overpass" not in listing["sources"]:
                listing["sources"] = sorted([*listing["sources"], "overpass"])
            if not listing["verified"]:
                listing["verified"] = True
                verified += 1
    return verified


def osm_refs_of(listings: Iterable[Mapping[str, Any]]) -> list[tuple[str, int]]:
    refs = []
    for listing in listings:
        osm_type, osm_id = listing["osm_ref"].split("/")
        refs.append((osm_type, int(osm_id)))
    return refs


def build_listings(
    nominatim: Sequence[Mapping[str, Any]],
    locationiq: Sequence[Mapping[str, Any]] | None = None,
    overpass: Iterable[Mapping[str, Any]] = (),
) -> tuple[list[dict], dict[str, int]]:
    """All listings of one search from its raw answers, with parse statistics."""
    primary, dropped_primary = parse_places(nominatim, "nominatim")
    fallback, dropped_fallback = parse_places(locationiq or [], "locationiq")
    listings = merge_source_listings(primary, fallback)
    verified = apply_overpass(listings, overpass)
    listings.sort(key=lambda item: item["osm_ref"])
    return listings, {
        "listings": len(listings),
        "dropped": dropped_primary + dropped_fallback,
        "verified_by_overpass": verified,
    }


def attribution(sources: Iterable[str]) -> str:
    """The attribution the data's licences require, for the sources that contributed."""
    text = OSM_LICENCE
    if "locationiq" in set(sources):
        text += f"; {LOCATIONIQ_ATTRIBUTION}"
    return text
