"""Entity resolution for the businesses master, and its lifecycle against the previous master.

Two listings are the same business when they are the same OSM object (across searches and
sources) or when their normalised names match within `max_distance_m` (a shop mapped both as a
node and as its building, or found by two sources as different objects). Clusters are built
with union-find, so matching is transitive.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ml.directory.listings import attribution
from ml.directory.normalize import (
    categorize,
    distance_m,
    normalize_name,
    normalize_phone,
    normalize_website,
    parse_opening_hours,
)

DEFAULT_MAX_DISTANCE_M = 75.0
# The fields whose change is a change of the business (history is written for them).
CONTENT_FIELDS = (
    "name",
    "category",
    "subcategory",
    "cuisine",
    "lat",
    "lon",
    "street",
    "housenumber",
    "postcode",
    "city",
    "state",
    "country_code",
    "phone",
    "website",
    "email",
    "opening_hours_raw",
)


def cluster_listings(listings: Sequence[Mapping[str, Any]], max_distance_m: float = DEFAULT_MAX_DISTANCE_M):
    """Groups of listing indexes that describe one business."""
    parent = list(range(len(listings)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    by_ref: dict[str, int] = {}
    by_name: dict[str, list[int]] = defaultdict(list)
    for i, listing in enumerate(listings):
        if (j := by_ref.setdefault(listing["osm_ref"], i)) != i:
            union(i, j)
        if key := normalize_name(listing["name"]):
            by_name[key].append(i)
    # Same name is rare enough that comparing within a name bucket stays cheap.
    for members in by_name.values():
        for a, i in enumerate(members):
            for j in members[a + 1 :]:
                li, lj = listings[i], listings[j]
                if distance_m(li["lat"], li["lon"], lj["lat"], lj["lon"]) <= max_distance_m:
                    union(i, j)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(listings)):
        groups[find(i)].append(i)
    return list(groups.values())


def _first(values: Iterable[Any]) -> Any:
    return next((v for v in values if v not in (None, "", [], {})), None)


def _address(listings: Sequence[Mapping[str, Any]], key: str, *address_keys: str) -> str | None:
    # OSM's own addr:* tags first, then what the geocoder derived for the point.
    return _first(
        [listing["tags"].get(key) for listing in listings]
        + [listing["address"].get(k) for listing in listings for k in address_keys]
    )


def build_business(listings: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One business from the listings of a cluster, with normalised fields.

    Values come from the best listing first: verified by Overpass, then the richest tag set."""
    ranked = sorted(listings, key=lambda item: (not item["verified"], -len(item["tags"]), item["osm_ref"]))
    best = ranked[0]
    tags: dict[str, str] = {}
    for listing in reversed(ranked):
        tags.update(listing["tags"])
    country_code = (_address(ranked, "addr:country", "country_code") or "").lower() or None
    category, subcategory = categorize(tags)
    hours_raw = _first(listing["tags"].get("opening_hours") for listing in ranked)
    phone = _first(
        normalize_phone(listing["tags"].get(key), country_code)
        for listing in ranked
        for key in ("phone", "contact:phone")
    )
    website = _first(
        normalize_website(listing["tags"].get(key))
        for listing in ranked
        for key in ("website", "contact:website", "url")
    )
    cuisine = sorted({c.strip() for c in (tags.get("cuisine") or "").split(";") if c.strip()})
    sources = sorted({s for listing in listings for s in listing["sources"]})
    business = {
        "name": best["name"],
        "name_key": normalize_name(best["name"]),
        "category": category,
        "subcategory": subcategory,
        "cuisine": cuisine or None,
        "lat": round(best["lat"], 7),
        "lon": round(best["lon"], 7),
        "street": _address(ranked, "addr:street", "road"),
        "housenumber": _address(ranked, "addr:housenumber", "house_number"),
        "postcode": _address(ranked, "addr:postcode", "postcode"),
        "city": _address(ranked, "addr:city", "city", "town", "village", "hamlet"),
        "state": _address(ranked, "addr:state", "state"),
        "country_code": country_code,
        "phone": phone,
        "website": website,
        "email": _first(listing["tags"].get(k) for listing in ranked for k in ("email", "contact:email")),
        "opening_hours_raw": hours_raw,
        "opening_hours": parse_opening_hours(hours_raw),
        "osm_refs": sorted({listing["osm_ref"] for listing in listings}),
        "sources": sources,
        "searches": sorted({s for listing in listings for s in listing.get("searches", ())}),
        "attribution": attribution(sources),
        "verified": any(listing["verified"] for listing in listings),
        "seen_at": max(listing["seen_at"] for listing in listings),
    }
    business["content_hash"] = content_hash(business)
    return business


def content_hash(business: Mapping[str, Any]) -> str:
    payload = json.dumps([business.get(f) for f in CONTENT_FIELDS], default=str, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def resolve(
    listings: Sequence[Mapping[str, Any]], max_distance_m: float = DEFAULT_MAX_DISTANCE_M
) -> list[dict]:
    """Every listing of a tenant (each carrying `searches` and `seen_at`) -> businesses."""
    return [
        build_business([listings[i] for i in group]) for group in cluster_listings(listings, max_distance_m)
    ]


@dataclass
class Reconciled:
    rows: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)

    def count(self, event: str) -> int:
        return sum(1 for e in self.events if e["event"] == event)


def _new_business_id(osm_refs: Sequence[str]) -> str:
    return "biz_" + hashlib.sha256(osm_refs[0].encode()).hexdigest()[:16]


def _snapshot(row: Mapping[str, Any]) -> dict:
    return json.loads(json.dumps(dict(row), default=str))


def reconcile(
    businesses: Sequence[Mapping[str, Any]], previous: Sequence[Mapping[str, Any]], now: datetime
) -> Reconciled:
    """The new master from this run's businesses and the previous master rows.

    A business keeps its id (and first_seen) when it shares an OSM object with a previous row;
    a previous row nothing matches is kept with status `missing`, so a business that vanished
    from the sources is not forgotten. Every appearance, change, disappearance and
    reappearance becomes a history event."""
    result = Reconciled()
    owner = {ref: row["business_id"] for row in previous for ref in row["osm_refs"]}
    previous_by_id = {row["business_id"]: row for row in previous}
    claimed: set[str] = set()
    for business in sorted(businesses, key=lambda b: b["osm_refs"][0]):
        candidates = [owner[ref] for ref in business["osm_refs"] if ref in owner]
        prev_id = next((c for c in candidates if c not in claimed), None)
        row = {k: v for k, v in business.items() if k not in ("verified", "seen_at")}
        row["status"] = "active"
        row["last_seen"] = business["seen_at"]
        if prev_id is None:
            business_id = _new_business_id(business["osm_refs"])
            while business_id in previous_by_id or business_id in claimed:
                business_id = _new_business_id([business_id])
            row.update(business_id=business_id, first_seen=business["seen_at"], changed_at=now)
            row["verified_at"] = business["seen_at"] if business["verified"] else None
            event, changed = "appeared", []
        else:
            prev = previous_by_id[prev_id]
            changed = [f for f in CONTENT_FIELDS if _comparable(prev.get(f)) != _comparable(row.get(f))]
            row.update(
                business_id=prev_id,
                first_seen=min(prev["first_seen"], business["seen_at"]),
                changed_at=now if changed or prev["status"] != "active" else prev["changed_at"],
                verified_at=business["seen_at"] if business["verified"] else prev.get("verified_at"),
            )
            event = "reappeared" if prev["status"] != "active" else ("changed" if changed else None)
        claimed.add(row["business_id"])
        result.rows.append(row)
        if event:
            result.events.append(
                {
                    "business_id": row["business_id"],
                    "event": event,
                    "changed_fields": changed,
                    "snapshot": _snapshot(row),
                }
            )
    for prev in previous:
        if prev["business_id"] in claimed:
            continue
        row = {k: v for k, v in prev.items() if k not in ("tenant_id", "dagster_run_id")}
        if prev["status"] == "active":
            row.update(status="missing", changed_at=now)
            result.events.append(
                {
                    "business_id": row["business_id"],
                    "event": "disappeared",
                    "changed_fields": [],
                    "snapshot": _snapshot(row),
                }
            )
        result.rows.append(row)
    return result


def _comparable(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 7)
    if isinstance(value, tuple):
        return list(value)
    return value
