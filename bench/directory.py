"""Business Directory benchmarks (issue 4), each next to its baseline in this one process.

    make bench-directory      (or: python -m bench.directory [--quick])

On the bench data folder (`.data/bench`, every asset materialized first), with synthetic replay
recordings written to a temporary fixtures folder (the real clients replay them):

1. cache hit rate over a replayed workload of repeated searches (60 requests a day for 30
   simulated days, Zipf-distributed over a pool of 40 searches, one refresh a day, 7-day TTL),
   against calling the APIs for every request;
2. API calls per materialization with Overpass batched (the shipped batch of 100) and one
   query per business (the plan's approach, batch_size=1);
3. businesses merged per second: the shipped resolver (name buckets + union-find) against
   all-pairs comparison, and the businesses_master materialization end to end;
4. the wall-clock bound the 1 request/s Nominatim policy puts on a tenant's refresh, measured
   with the policy on and off;
5. latency of GET /api/brain/directory/businesses at 10 and 100 concurrent clients (wrk) on a
   tenant with 2,000 and with 20,000 businesses, with and without the (tenant_id, lat, lon) index.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx

from bench.api import ROOT, ensure_wrk, measure, prepare_platform, start_api
from orchestration.processes import free_port, stop

CITIES = [
    ("Austin, TX", 30.2672, -97.7431),
    ("Portland, OR", 45.5152, -122.6784),
    ("Denver, CO", 39.7392, -104.9903),
    ("Chicago, IL", 41.8781, -87.6298),
    ("Seattle, WA", 47.6062, -122.3321),
]
QUERIES = [
    ("restaurants", "amenity", "restaurant"),
    ("coffee", "amenity", "cafe"),
    ("dentist", "amenity", "dentist"),
    ("bakery", "shop", "bakery"),
    ("gym", "leisure", "fitness_centre"),
    ("pharmacy", "amenity", "pharmacy"),
    ("hair salon", "shop", "hairdresser"),
    ("bookstore", "shop", "books"),
]
PLACES_PER_SEARCH = 20
BENCH_TENANT = "bench_directory"
LARGE_TENANT = "bench_directory_large"
# The index migration 0004 creates, dropped for the baseline and recreated after it.
CREATE_GEO_INDEX = (
    "CREATE INDEX IF NOT EXISTS businesses_master_geo_idx ON core.businesses_master (tenant_id, lat, lon)"
)
LICENCE = "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright"


# --- synthetic recordings ------------------------------------------------------------------


def synthetic_places(query_index: int, city_index: int, count: int = PLACES_PER_SEARCH, block: int = 0):
    """Places of one search. Every 10th is also mapped as its building (a way 20 m away with
    the same name): a duplicate the master must merge. Every 25th belongs to a chain whose
    branches share a name but stand kilometres apart: they must stay separate."""
    query, key, value = QUERIES[query_index]
    city, lat0, lon0 = CITIES[city_index]
    rng = random.Random((block * 100 + query_index) * 100 + city_index)
    places = []
    for i in range(count):
        osm_id = 10_000_000 + block * 1_000_000 + query_index * 100_000 + city_index * 1_000 + i
        lat, lon = lat0 + rng.uniform(-0.05, 0.05), lon0 + rng.uniform(-0.05, 0.05)
        word = ["Café", "Corner", "Haus", "Niño", "Studio"][i % 5]
        osm_type, name = "node", f"{word} {query.title()} {block}-{i}"
        if i % 25 == 3:
            name = f"{word} {query.title()} Express"
        if i % 10 == 9:  # the building of the previous place
            osm_type, osm_id, name = "way", osm_id + 500, places[-1]["name"].upper()
            lat, lon = float(places[-1]["lat"]) + 0.00018, float(places[-1]["lon"])
        places.append(
            {
                "place_id": 400_000_000 + osm_id,
                "licence": LICENCE,
                "osm_type": osm_type,
                "osm_id": osm_id,
                "lat": f"{lat:.7f}",
                "lon": f"{lon:.7f}",
                "category": key,
                "type": value,
                "place_rank": 30,
                "importance": 0.0001,
                "addresstype": key,
                "name": name,
                "display_name": f"{name}, {city}",
                "address": {"city": city.split(",")[0], "country_code": "us"},
                "extratags": {},
                "namedetails": {"name": name},
                "boundingbox": [f"{lat:.7f}", f"{lat:.7f}", f"{lon:.7f}", f"{lon:.7f}"],
            }
        )
    return places


def _element(place: dict, rng: random.Random) -> dict:
    tags = {"name": place["name"], place["category"]: place["type"]}
    if rng.random() < 0.8:
        tags["phone"] = f"+1 512-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}"
    if rng.random() < 0.6:
        tags["website"] = f"www.{place['osm_id']}.example"
    if rng.random() < 0.7:
        tags["opening_hours"] = "Mo-Fr 08:00-18:00; Sa 09:00-13:00; PH off"
    element = {"type": place["osm_type"], "id": place["osm_id"], "tags": tags}
    point = {"lat": float(place["lat"]), "lon": float(place["lon"])}
    if place["osm_type"] == "node":
        element.update(point)
    else:
        element["center"] = point
    return element


def write_recordings(directory: Path, searches: list[tuple[int, int]]) -> None:
    """Nominatim answers and Overpass answers (batched and one-per-object) for `searches`."""
    from orchestration.directory_sources import NominatimResource, OverpassResource, details_query

    nominatim, overpass = NominatimResource(), OverpassResource()
    for folder in ("nominatim", "overpass", "locationiq"):
        (directory / folder).mkdir(parents=True, exist_ok=True)
    written_single: set[str] = set()
    for query_index, city_index in searches:
        places = synthetic_places(query_index, city_index)
        text = f"{QUERIES[query_index][0]} in {CITIES[city_index][0]}"
        params = {"q": text, "format": "jsonv2", "addressdetails": "1", "extratags": "1", "namedetails": "1"}
        params["limit"] = str(nominatim.result_limit)
        _record(
            directory / "nominatim" / f"search_{query_index}_{city_index}.json",
            {"method": "GET", "url": f"{nominatim.base_url}/search", "params": params},
            places,
        )
        rng = random.Random(query_index * 7 + city_index)
        elements = {(p["osm_type"], p["osm_id"]): _element(p, rng) for p in places}
        refs = list(elements)
        for batch in overpass.batches(refs):
            name = f"details_{query_index}_{city_index}_{batch[0][0]}{batch[0][1]}.json"
            _overpass(directory, name, overpass, details_query(batch), [elements[r] for r in batch])
        for ref in refs:  # the unbatched plan: one query per business
            if f"{ref}" not in written_single:
                written_single.add(f"{ref}")
                _overpass(
                    directory,
                    f"single_{ref[0]}{ref[1]}.json",
                    overpass,
                    details_query([ref]),
                    [elements[ref]],
                )


def _record(path: Path, request: dict, body) -> None:
    answer = {"status": 200, "headers": {"Content-Type": "application/json"}, "json": body}
    path.write_text(json.dumps({"request": request, "responses": [answer]}, ensure_ascii=False))


def _overpass(directory: Path, name: str, overpass, query: str, elements: list[dict]) -> None:
    body = {
        "version": 0.6,
        "generator": "Overpass API (bench)",
        "osm3s": {"copyright": "ODbL"},
        "elements": elements,
    }
    _record(
        directory / "overpass" / name,
        {"method": "POST", "url": overpass.endpoint, "form": {"data": query}},
        body,
    )


# --- running refreshes ---------------------------------------------------------------------


def ensure_tenant(admin_url: str, tenant: str, instance) -> None:
    from orchestration import postgres
    from orchestration.partitions import tenant_partitions

    with postgres.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO core.tenants (tenant_id, display_name, kind, parent_tenant_id, tier, domains)
               VALUES (%s, %s, 'client', 'bizoholic', 'starter', '{directory}')
               ON CONFLICT (tenant_id) DO NOTHING""",
            (tenant, tenant.replace("_", " ").title()),
        )
    instance.add_dynamic_partitions(tenant_partitions("directory").name, [tenant])


def set_searches(admin_url: str, tenant: str, searches: list[tuple[int, int]]) -> None:
    from psycopg.types.json import Jsonb

    from orchestration import postgres

    settings = {
        "cache_ttl_hours": 168,
        "searches": [{"query": QUERIES[q][0], "location": CITIES[c][0]} for q, c in searches],
    }
    with postgres.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            """UPDATE core.tenants SET settings = jsonb_set(settings, '{directory}', %s, true)
                WHERE tenant_id = %s""",
            (Jsonb(settings), tenant),
        )


def refresh(instance, env, fixtures: Path, tenant: str, *, config=None, batch_size=100, min_interval_s=0.0):
    """One materialization of the cache and the master; returns both assets' metadata and the
    seconds the cache step took."""
    from dagster import AssetKey, AssetRecordsFilter, materialize

    from assets import directory
    from orchestration.directory_sources import LocationIQResource, NominatimResource, OverpassResource
    from orchestration.warehouse import WarehouseResource

    common = {"mode": "replay", "fixtures_dir": str(fixtures)}
    result = materialize(
        [directory.business_cache, directory.businesses_master],
        partition_key=tenant,
        instance=instance,
        resources={
            "warehouse": WarehouseResource(database_url=env["BIZOSAAS_WRITER_URL"]),
            "nominatim": NominatimResource(min_interval_s=min_interval_s, **common),
            "locationiq": LocationIQResource(min_interval_s=0, **common),
            "overpass": OverpassResource(batch_size=batch_size, **common),
        },
        run_config={"ops": {"business_cache": {"config": config}}} if config else None,
    )
    assert result.success
    metadata = {}
    for key in ("business_cache", "businesses_master"):
        record = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey(key), asset_partitions=[tenant]), limit=1
        ).records[0]
        metadata[key] = {k: v.value for k, v in record.event_log_entry.asset_materialization.metadata.items()}
    step_seconds = {
        e.step_key: e.event_specific_data.duration_ms / 1000
        for e in result.all_events
        if e.event_type_value == "STEP_SUCCESS"
    }
    return metadata, step_seconds["business_cache"]


def age_cache(admin_url: str, tenant: str, days: int = 1) -> None:
    """Simulated time: every entry of the tenant gets `days` closer to expiry."""
    from orchestration import postgres

    with postgres.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            """UPDATE core.business_cache SET expires_at = expires_at - make_interval(days => %s),
                      fetched_at = fetched_at - make_interval(days => %s) WHERE tenant_id = %s""",
            (days, days, tenant),
        )


# --- the benchmarks ----------------------------------------------------------------------


def bench_cache_workload(instance, env, admin_url, fixtures, universe, days, requests_per_day):
    """Search requests arrive all day (Zipf over the pool of searches); each simulated day one
    refresh materializes the distinct searches asked that day. A request is a hit when its
    search is served without calling an API: fresh in the cache, or fetched earlier that day."""
    rng = random.Random(42)
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(universe))]
    hits = misses = api_calls = requests = distinct_daily = 0
    master_rates = []
    for _ in range(days):
        drawn = rng.choices(universe, weights=weights, k=requests_per_day)
        requests += len(drawn)
        searches = list(dict.fromkeys(drawn))
        distinct_daily += len(searches)
        set_searches(admin_url, BENCH_TENANT, searches)
        metadata, _ = refresh(instance, env, fixtures, BENCH_TENANT)
        cache = metadata["business_cache"]
        hits += cache["cache_hits"]
        misses += cache["cache_misses"]
        api_calls += cache["api_calls_total"]
        master_rates.append(metadata["businesses_master"]["listings_merged_per_s"])
        age_cache(admin_url, BENCH_TENANT)
    calls_per_fetch = 2  # one Nominatim search + one batched Overpass query (>= 10 results each)
    return {
        "days": days,
        "search_requests": requests,
        "searches_in_pool": len(universe),
        "ttl_days": 7,
        "refresh_lookups": hits + misses,
        "refresh_hits": hits,
        "refresh_misses": misses,
        "refresh_hit_rate": round(hits / (hits + misses), 4),
        "request_hit_rate": round(1 - misses / requests, 4),
        "api_calls_with_cache": api_calls,
        "api_calls_daily_dedupe_only": distinct_daily * calls_per_fetch,
        "api_calls_without_cache": requests * calls_per_fetch,
        "master_listings_merged_per_s_median": round(statistics.median(master_rates), 1),
    }


def bench_batching(instance, env, admin_url, fixtures, searches):
    set_searches(admin_url, BENCH_TENANT, searches)
    rows = {}
    for label, batch_size in [("batched (shipped, 100 per query)", 100), ("one query per business", 1)]:
        metadata, cache_seconds = refresh(
            instance, env, fixtures, BENCH_TENANT, config={"force_refresh": True}, batch_size=batch_size
        )
        cache = metadata["business_cache"]
        rows[label] = {
            "searches": len(searches),
            "api_calls_total": cache["api_calls_total"],
            "api_calls_overpass": cache["api_calls_overpass"],
            "api_calls_per_search": round(cache["api_calls_total"] / len(searches), 1),
            "cache_step_s": round(cache_seconds, 2),
        }
    return rows


def _naive_clusters(listings, max_distance_m=75.0):
    """Baseline: compare every pair (same object or same name nearby), O(n^2)."""
    from ml.directory.normalize import distance_m, normalize_name

    parent = list(range(len(listings)))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    keys = [normalize_name(item["name"]) for item in listings]
    for i in range(len(listings)):
        for j in range(i + 1, len(listings)):
            a, b = listings[i], listings[j]
            same = a["osm_ref"] == b["osm_ref"] or (
                keys[i] == keys[j] and distance_m(a["lat"], a["lon"], b["lat"], b["lon"]) <= max_distance_m
            )
            if same:
                parent[find(j)] = find(i)
    return len({find(i) for i in range(len(listings))})


def synthetic_listings(n: int) -> list[dict]:
    """`n` listings across blocks of 100 places per query and city, as the cache holds them."""
    from ml.directory.listings import build_listings

    listings, seen_at, block = [], datetime.now(UTC), 0
    while len(listings) < n:
        for q in range(len(QUERIES)):
            for c in range(len(CITIES)):
                found, _ = build_listings(synthetic_places(q, c, 100, block))
                listings += [{**item, "searches": [f"{block}-{q}-{c}"], "seen_at": seen_at} for item in found]
        block += 1
    return listings[:n]


def bench_merge(sizes, baseline_size, repeat):
    from ml.directory.merge import cluster_listings, resolve

    rows = []
    for n in sizes:
        listings = synthetic_listings(n)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            businesses = resolve(listings)
            times.append(time.perf_counter() - started)
        row = {"listings": n, "businesses": len(businesses), "shipped_s": round(statistics.median(times), 3)}
        row["shipped_listings_per_s"] = round(n / statistics.median(times))
        if n <= baseline_size:
            ours, naive = [], []
            for _ in range(repeat):
                started = time.perf_counter()
                clusters = len(cluster_listings(listings))
                ours.append(time.perf_counter() - started)
                started = time.perf_counter()
                naive_clusters = _naive_clusters(listings)
                naive.append(time.perf_counter() - started)
            assert clusters == naive_clusters, (clusters, naive_clusters)
            row["clustering_shipped_s"] = round(statistics.median(ours), 4)
            row["clustering_all_pairs_s"] = round(statistics.median(naive), 3)
            row["clustering_speedup"] = round(statistics.median(naive) / statistics.median(ours), 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def bench_nominatim_policy(instance, env, admin_url, fixtures, searches):
    set_searches(admin_url, BENCH_TENANT, searches)
    rows = {}
    for label, interval in [("policy on (1 request/s)", 1.0), ("policy off (replay, no spacing)", 0.0)]:
        metadata, cache_seconds = refresh(
            instance, env, fixtures, BENCH_TENANT, config={"force_refresh": True}, min_interval_s=interval
        )
        cache = metadata["business_cache"]
        rows[label] = {
            "searches": len(searches),
            "nominatim_calls": cache["api_calls_nominatim"],
            "cache_step_s": round(cache_seconds, 2),
            "rate_limit_wait_s": cache["rate_limit_wait_s"],
        }
    return rows


def load_large_tenant(env, admin_url, instance, n: int) -> tuple[str, int]:

    from assets.directory import write_master
    from ml.directory.merge import reconcile, resolve
    from orchestration import postgres
    from orchestration.runtime import DBT_EXECUTABLE, DBT_PROJECT_DIR
    from orchestration.warehouse import WarehouseResource
    from serving import keys

    ensure_tenant(admin_url, LARGE_TENANT, instance)
    businesses = resolve(synthetic_listings(n))
    reconciled = reconcile(businesses, [], datetime.now(UTC))
    warehouse = WarehouseResource(database_url=env["BIZOSAAS_WRITER_URL"])
    with warehouse.tenant_transaction(LARGE_TENANT) as conn:
        write_master(conn, LARGE_TENANT, reconciled, "bench")
    # The coverage mart is dbt's: rebuild it so the API's analytics route sees this tenant too.
    subprocess.run(
        [DBT_EXECUTABLE, "build", "--select", "stg_businesses+", "--profiles-dir", "."],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    with postgres.connect(admin_url, autocommit=True) as conn:
        for table in ("businesses_master", "business_words", "business_facets"):
            conn.execute(f"VACUUM ANALYZE core.{table}")  # fresh statistics and visibility map
        key, _ = keys.create(conn, LARGE_TENANT, "reader", "bench directory")
    return key, len(reconciled.rows)


def bench_api(env, admin_url, key, duration, repeat):
    from orchestration import postgres

    wrk = ensure_wrk()
    center = f"{CITIES[0][1]},{CITIES[0][2]}"
    endpoints = {
        "list (first page)": "/api/brain/directory/businesses?limit=50",
        "text q=coffee": "/api/brain/directory/businesses?q=coffee&limit=50",
        "near, 2 km": f"/api/brain/directory/businesses?near={quote(center)}&radius_km=2&limit=50",
        "coverage mart": "/api/brain/analytics/directory?limit=50",
    }
    results = []
    for config in ("shipped (geo index)", "baseline (no geo index)"):
        with postgres.connect(admin_url, autocommit=True) as conn:
            if config.startswith("baseline"):
                conn.execute("DROP INDEX IF EXISTS core.businesses_master_geo_idx")
            else:
                conn.execute(CREATE_GEO_INDEX)
            conn.execute("ANALYZE core.businesses_master")
        port = free_port()
        api = start_api(env, port, 2, "30")
        try:
            for name, path in endpoints.items():
                if config.startswith("baseline") and not name.startswith("near"):
                    continue  # the index only serves the distance filter
                url = f"http://127.0.0.1:{port}{path}"
                # A load test of an empty answer measures nothing: check what the route returns.
                answer = httpx.get(url, headers={"X-API-Key": key}, timeout=30)
                assert answer.status_code == 200, answer.text
                matches = answer.json()["page"]["total"]
                assert matches > 0 and answer.json()["data"], f"{name}: no rows"
                results += measure(
                    wrk, url, key, duration, repeat, config=config, endpoint=name, matches=matches
                )
        finally:
            stop(api)
    with postgres.connect(admin_url, autocommit=True) as conn:
        conn.execute(CREATE_GEO_INDEX)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller workload, shorter load runs")
    parser.add_argument(
        "--parts",
        default="cache,batching,policy,merge,api",
        help="comma-separated subset of: cache, batching, policy, merge, api",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    duration, repeat = (3, 1) if args.quick else (8, 3)

    env, _ = prepare_platform()
    from dagster import DagsterInstance

    from orchestration import postgres
    from orchestration.settings import load_settings

    admin_url = postgres.admin_url(load_settings())
    universe = [(q, c) for c in range(len(CITIES)) for q in range(len(QUERIES))]
    report: dict = {"cores": os.cpu_count(), "places_per_search": PLACES_PER_SEARCH}
    with tempfile.TemporaryDirectory() as tmp, DagsterInstance.get() as instance:
        fixtures = Path(tmp)
        write_recordings(fixtures, universe)
        ensure_tenant(admin_url, BENCH_TENANT, instance)
        # A clean slate: the workload starts with an empty cache.
        with postgres.connect(admin_url, autocommit=True) as conn:
            conn.execute("DELETE FROM core.business_cache WHERE tenant_id = %s", (BENCH_TENANT,))

        if "cache" in parts:
            report["cache_workload"] = bench_cache_workload(
                instance,
                env,
                admin_url,
                fixtures,
                universe,
                days=8 if args.quick else 30,
                requests_per_day=60,
            )
            print(json.dumps(report["cache_workload"]), flush=True)
        if "batching" in parts:
            report["batching"] = bench_batching(instance, env, admin_url, fixtures, universe[:5])
            print(json.dumps(report["batching"]), flush=True)
        if "policy" in parts:
            report["nominatim_policy"] = bench_nominatim_policy(
                instance, env, admin_url, fixtures, universe[:8]
            )
            print(json.dumps(report["nominatim_policy"]), flush=True)
    if "merge" in parts:
        report["merge"] = bench_merge(
            sizes=[2_000, 20_000] if args.quick else [2_000, 20_000, 100_000],
            baseline_size=2_000,
            repeat=repeat,
        )
    if "api" in parts:
        # A directory tenant holds up to ~40 businesses per search: 2,000 is a busy tenant
        # (50 searches), 20,000 a stress case (500 searches).
        report["api"] = []
        for size in (2_000, 20_000):
            key, loaded = load_large_tenant(env, admin_url, DagsterInstance.get(), size)
            report["api"] += [
                {"tenant_businesses": loaded, **row}
                for row in bench_api(env, admin_url, key, duration, repeat)
            ]
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / "directory.json"
    # A partial run updates its parts and keeps the others' last figures.
    previous = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**previous, **report}, indent=2, ensure_ascii=False))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
