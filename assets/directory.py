"""Business Directory: searches -> a tenant-isolated API cache -> the de-duplicated businesses master.

Each directory tenant lists the searches it wants (`settings.directory.searches`, query x
location). `business_cache` serves fresh entries from the cache and spends API calls only on
expired or missing ones: Nominatim first (1 request/s for the whole platform), LocationIQ when
Nominatim finds fewer than `fallback_below` results (a tracked daily budget), then one Overpass
query per search for the details of every object found. Raw answers are stored before they are
parsed, so `reparse` rebuilds the cache from them without calling any API.

`businesses_master` merges every cached listing of the tenant into one row per real business
and keeps its history (appeared, changed, disappeared, reappeared).
"""

import json
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetExecutionContext,
    AssetSpec,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    asset,
    asset_check,
    define_asset_job,
    schedule,
)
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import Field

from ml.directory.listings import attribution, build_listings, osm_refs_of
from ml.directory.merge import DEFAULT_MAX_DISTANCE_M, Reconciled, reconcile, resolve
from ml.directory.normalize import E164_PATTERN, WEBSITE_PATTERN
from ml.directory.search import business_words, facet_counts
from orchestration.api_limits import ApiLedger, BudgetExhaustedError
from orchestration.directory_sources import LocationIQResource, NominatimResource, OverpassResource
from orchestration.metadata import preview_table
from orchestration.partitions import tenant_partitions
from orchestration.quality import skipped_check, validate
from orchestration.replay import UnrecordedRequestError
from orchestration.sources import Attempt, SourceError
from orchestration.tenant_settings import settings_error, tenant_settings
from orchestration.warehouse import WarehouseResource, append_rows, write_partition

CACHE_TABLE = "core.business_cache"
MASTER_TABLE = "core.businesses_master"
HISTORY_TABLE = "core.businesses_history"
WORDS_TABLE = "core.business_words"
FACETS_TABLE = "core.business_facets"
RAW_TABLE = "raw.directory_api_responses"
SOURCES = ("nominatim", "locationiq", "overpass")

directory_partitions = tenant_partitions("directory")

# The APIs themselves, so lineage in the UI starts where the data does.
source_apis = [
    AssetSpec(
        f"{name}_api",
        group_name="directory",
        kinds={"api"},
        description=description,
        metadata={"licence": "ODbL 1.0, © OpenStreetMap contributors"},
    )
    for name, description in [
        ("nominatim", "OpenStreetMap Nominatim /search: the primary business search (1 request/s)."),
        ("locationiq", "LocationIQ /v1/search: fallback search (5,000 requests/day on the free tier)."),
        ("overpass", "Overpass API: tags (hours, phone, website) for many OSM objects per query."),
    ]
]


@dataclass(frozen=True)
class Search:
    query: str
    location: str

    @property
    def text(self) -> str:
        return f"{self.query} in {self.location}"


@dataclass(frozen=True)
class DirectorySettings:
    searches: tuple[Search, ...]
    cache_ttl: timedelta
    fallback_below: int
    max_distance_m: float


def directory_settings(tenant_id: str, settings: dict[str, Any]) -> DirectorySettings:
    """The tenant's directory settings, or a Failure that names the wrong key."""

    fail = settings_error(tenant_id, "directory")

    directory = settings.get("directory") or {}
    if not isinstance(directory, dict):
        raise fail("", "an object", directory)
    entries = directory.get("searches") or []
    if not isinstance(entries, list):
        raise fail("searches", "a list of {query, location}", entries)
    searches = []
    for index, entry in enumerate(entries):
        query = str(entry.get("query") or "").strip() if isinstance(entry, dict) else ""
        location = str(entry.get("location") or "").strip() if isinstance(entry, dict) else ""
        if not query or not location:
            raise fail(f"searches[{index}]", "an object with a non-empty query and location", entry)
        searches.append(Search(query, location))

    def number(key: str, default: float, minimum: float) -> float:
        value = directory.get(key, default)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise fail(key, f"a number >= {minimum:g}", value) from None
        if number < minimum:
            raise fail(key, f"a number >= {minimum:g}", value)
        return number

    return DirectorySettings(
        searches=tuple(dict.fromkeys(searches)),
        cache_ttl=timedelta(hours=number("cache_ttl_hours", 168, 1)),
        fallback_below=int(number("fallback_below", 10, 0)),
        max_distance_m=number("max_distance_m", DEFAULT_MAX_DISTANCE_M, 0),
    )


def load_directory_settings(warehouse: WarehouseResource, tenant_id: str) -> DirectorySettings:
    return directory_settings(tenant_id, tenant_settings(warehouse, tenant_id))


class BusinessCacheConfig(Config):
    force_refresh: bool = Field(default=False, description="Call the APIs even for fresh entries.")
    reparse: bool = Field(
        default=False,
        description="Rebuild every entry from its stored raw answers (after a parser fix); no API calls.",
    )


@dataclass
class FetchedSearch:
    nominatim: list[dict]
    locationiq: list[dict] | None
    overpass: list[dict]
    accepted: list[Attempt]


class SearchFetcher:
    """Calls the three APIs for one search under the platform's rate slots and budgets."""

    def __init__(self, nominatim, locationiq, overpass, ledger: ApiLedger, fallback_below: int):
        self.nominatim, self.locationiq, self.overpass = nominatim, locationiq, overpass
        self.ledger = ledger
        self.fallback_below = fallback_below
        self.clients = {r.source: r.http_client() for r in (nominatim, locationiq, overpass)}
        self.skipped_fallbacks: list[str] = []

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def fetch(self, search: Search, attempts: list[Attempt]) -> FetchedSearch:
        accepted: list[Attempt] = []
        nominatim = self.nominatim.search(
            self.clients["nominatim"],
            search.text,
            before_attempt=lambda: self.ledger.wait_for_slot("nominatim", self.nominatim.min_interval_s),
            attempts=attempts,
        )
        accepted.append(attempts[-1])
        locationiq = None
        if len(nominatim) < self.fallback_below:
            locationiq = self._fallback(search, attempts, accepted)
        listings, _ = build_listings(nominatim, locationiq)
        overpass: list[dict] = []
        if listings:
            before = len(attempts)
            overpass = self.overpass.details(
                self.clients["overpass"], osm_refs_of(listings), attempts=attempts
            )
            # The accepted answer of each batch is the last attempt before the next batch began.
            accepted += _last_attempt_per_request(attempts[before:])
        return FetchedSearch(nominatim, locationiq, overpass, accepted)

    def _fallback(
        self, search: Search, attempts: list[Attempt], accepted: list[Attempt]
    ) -> list[dict] | None:
        if not self.locationiq.enabled:
            self.skipped_fallbacks.append(f"{search.text}: LOCATIONIQ_API_KEY is not set")
            return None

        def before_attempt() -> None:
            self.ledger.spend("locationiq", self.locationiq.daily_limit)
            self.ledger.wait_for_slot("locationiq", self.locationiq.min_interval_s)

        try:
            result = self.locationiq.search(
                self.clients["locationiq"], search.text, before_attempt=before_attempt, attempts=attempts
            )
        except (BudgetExhaustedError, SourceError) as exc:
            # The primary's answer still stands: a spent budget, a refused key or a LocationIQ
            # outage costs the fallback's extra results, not the search.
            self.skipped_fallbacks.append(f"{search.text}: {exc}")
            return None
        accepted.append(attempts[-1])
        return result


def _last_attempt_per_request(attempts: list[Attempt]) -> list[Attempt]:
    # Attempts of one request are consecutive, numbered from 1: keep each request's final one.
    runs: list[Attempt] = []
    for attempt in attempts:
        if attempt.attempt == 1:
            runs.append(attempt)
        else:
            runs[-1] = attempt
    return runs


def _store_attempts(warehouse, tenant_id: str, search: Search, attempts: list[Attempt], run_id: str):
    """Raw answers first, in their own transaction: whatever happens next, they are kept."""
    if not attempts:
        return {}
    rows = [
        {
            "search_query": search.query,
            "search_location": search.location,
            "source": a.source,
            "request": a.request,
            "status": a.status,
            "body": a.body,
            "attempt": a.attempt,
            "fetched_at": a.fetched_at,
            "dagster_run_id": run_id,
        }
        for a in attempts
    ]
    with warehouse.tenant_transaction(tenant_id) as conn:
        ids = append_rows(conn, tenant_id, RAW_TABLE, rows, returning="response_id")
    return {id(a): response_id for a, response_id in zip(attempts, ids, strict=True)}


def _reparse(warehouse, tenant_id: str, response_ids: list[int]) -> FetchedSearch:
    rows = warehouse.query(
        tenant_id,
        f"""SELECT source, status, body FROM {RAW_TABLE}
             WHERE tenant_id = %s AND response_id = ANY(%s) ORDER BY response_id""",
        (tenant_id, response_ids),
    )
    by_source: dict[str, list[Any]] = {s: [] for s in SOURCES}
    for row in rows:
        body = json.loads(row["body"]) if row["status"] == 200 else []
        by_source[row["source"]].append(body)
    nominatim = by_source["nominatim"][0] if by_source["nominatim"] else []
    locationiq = by_source["locationiq"][0] if by_source["locationiq"] else None
    return FetchedSearch(nominatim, locationiq, by_source["overpass"], [])


def _cache_row(search: Search, fetched: FetchedSearch, response_ids, fetched_at, ttl, calls, run_id):
    listings, stats = build_listings(fetched.nominatim, fetched.locationiq, fetched.overpass)
    sources = sorted(
        {"nominatim"}
        | ({"locationiq"} if fetched.locationiq is not None else set())
        | ({"overpass"} if fetched.overpass else set())
    )
    row = {
        "search_query": search.query,
        "search_location": search.location,
        "results": Jsonb(listings),
        "result_count": len(listings),
        "api_sources": sources,
        "api_calls": Jsonb(calls),
        "response_ids": response_ids,
        "attribution": attribution(sources),
        "fetched_at": fetched_at,
        "expires_at": fetched_at + ttl,
        "dagster_run_id": run_id,
    }
    return row, stats


def _upsert_cache(warehouse, tenant_id: str, row: dict[str, Any]) -> None:
    columns = list(row)
    updates = ", ".join(
        f"{c} = EXCLUDED.{c}" for c in columns if c not in ("search_query", "search_location")
    )
    with warehouse.tenant_transaction(tenant_id) as conn:
        conn.execute(
            f"""INSERT INTO {CACHE_TABLE} (tenant_id, {", ".join(columns)})
                VALUES (%s, {", ".join(["%s"] * len(columns))})
                ON CONFLICT (tenant_id, search_query, search_location) DO UPDATE SET {updates}""",
            [tenant_id, *row.values()],
        )


@asset(
    partitions_def=directory_partitions,
    group_name="directory",
    kinds={"postgres", "api"},
    # One Nominatim caller at a time across all runs (the pool's limit is 1): with the shared
    # rate slot this keeps the platform inside the 1 request/s policy.
    pool="nominatim",
    deps=["tenant_registry", *source_apis],
    metadata={"table": CACHE_TABLE},
    description=(
        "Per tenant and search (query x location): the listings found by Nominatim, LocationIQ "
        "(fallback) and Overpass (details), cached until expires_at. Raw answers are kept in "
        f"{RAW_TABLE}."
    ),
)
def business_cache(
    context: AssetExecutionContext,
    config: BusinessCacheConfig,
    warehouse: WarehouseResource,
    nominatim: NominatimResource,
    locationiq: LocationIQResource,
    overpass: OverpassResource,
) -> MaterializeResult:
    tenant_id = context.partition_key
    run_id = context.run.run_id
    settings = load_directory_settings(warehouse, tenant_id)
    cached = {
        Search(r["search_query"], r["search_location"]): r
        for r in warehouse.query(
            tenant_id,
            f"""SELECT search_query, search_location, fetched_at, expires_at, response_ids, api_calls
                  FROM {CACHE_TABLE} WHERE tenant_id = %s""",
            (tenant_id,),
        )
    }
    now = datetime.now(UTC)
    ledger = ApiLedger(warehouse)
    fetcher = SearchFetcher(nominatim, locationiq, overpass, ledger, settings.fallback_below)
    hits, misses, failures, entries = 0, 0, [], []
    calls: Counter[str] = Counter()
    stats_total: Counter[str] = Counter()
    try:
        for search in settings.searches:
            entry = cached.get(search)
            if config.reparse:
                if entry is None:
                    continue
                fetched = _reparse(warehouse, tenant_id, entry["response_ids"])
                # The answers are as old as they were; only their parsing is new.
                row, stats = _cache_row(
                    search,
                    fetched,
                    entry["response_ids"],
                    entry["fetched_at"],
                    settings.cache_ttl,
                    entry["api_calls"],
                    run_id,
                )
            elif entry is not None and entry["expires_at"] > now and not config.force_refresh:
                hits += 1
                continue
            else:
                misses += 1
                attempts: list[Attempt] = []
                try:
                    fetched = fetcher.fetch(search, attempts)
                except (SourceError, UnrecordedRequestError) as exc:
                    failures.append(f"{search.text}: {exc}")
                    context.log.error(f"search {search.text!r} failed: {exc}")
                    continue
                finally:
                    ids = _store_attempts(warehouse, tenant_id, search, attempts, run_id)
                    search_calls = Counter(a.source for a in attempts)
                    calls.update(search_calls)
                accepted_ids = [ids[id(a)] for a in fetched.accepted]
                row, stats = _cache_row(
                    search, fetched, accepted_ids, now, settings.cache_ttl, dict(search_calls), run_id
                )
            _upsert_cache(warehouse, tenant_id, row)
            stats_total.update(stats)
            entries.append(
                {
                    "query": search.query,
                    "location": search.location,
                    "results": row["result_count"],
                    "sources": row["api_sources"],
                    "expires_at": row["expires_at"].isoformat(timespec="minutes"),
                }
            )
            context.log.info(
                f"{search.text}: {row['result_count']} listings from {', '.join(row['api_sources'])}"
            )
        removed = _drop_unconfigured(warehouse, tenant_id, settings.searches)
    finally:
        fetcher.close()

    lookups = hits + misses
    metadata = {
        "searches": MetadataValue.int(len(settings.searches)),
        "cache_hits": MetadataValue.int(hits),
        "cache_misses": MetadataValue.int(misses),
        "cache_hit_rate": MetadataValue.float(round(hits / lookups, 4) if lookups else 1.0),
        **{f"api_calls_{source}": MetadataValue.int(calls.get(source, 0)) for source in SOURCES},
        "api_calls_total": MetadataValue.int(sum(calls.values())),
        "rate_limit_wait_s": MetadataValue.float(round(ledger.waited_s, 2)),
        "locationiq_used_today": MetadataValue.int(ledger.used_today("locationiq")),
        "listings_parsed": MetadataValue.int(stats_total["listings"]),
        "places_dropped": MetadataValue.int(stats_total["dropped"]),
        "verified_by_overpass": MetadataValue.int(stats_total["verified_by_overpass"]),
        "expired_entries_dropped": MetadataValue.int(removed),
        "refreshed": preview_table(entries),
    }
    if fetcher.skipped_fallbacks:
        metadata["fallback_skipped"] = MetadataValue.text("; ".join(fetcher.skipped_fallbacks))
    if failures:
        # Entries refreshed before the failure are committed; failed ones keep their old data.
        raise Failure(
            description=(
                f"{len(failures)} of {misses} searches could not be refreshed (their previous cache "
                f"entries are kept): " + " | ".join(failures)
            ),
            metadata=metadata,
        )
    return MaterializeResult(metadata=metadata)


def _drop_unconfigured(warehouse, tenant_id: str, searches: tuple[Search, ...]) -> int:
    """Expired entries of searches the tenant no longer wants are deleted; fresh ones stay, so
    a search removed and added back within its TTL is still a cache hit."""
    with warehouse.tenant_transaction(tenant_id) as conn:
        cursor = conn.execute(
            f"""DELETE FROM {CACHE_TABLE} c WHERE tenant_id = %s AND expires_at <= now()
                AND NOT EXISTS (SELECT 1 FROM unnest(%s::text[], %s::text[]) AS s(q, l)
                                 WHERE s.q = c.search_query AND s.l = c.search_location)""",
            (tenant_id, [s.query for s in searches], [s.location for s in searches]),
        )
        return cursor.rowcount


def tenant_listings(conn, tenant_id: str, searches: tuple[Search, ...]) -> list[dict]:
    """Every cached listing of the tenant's configured searches, tagged with its search and
    fetch time. `conn` is a transaction with the tenant set; the explicit tenant filter matters
    for a master tenant, which may read (but must not merge) its clients' entries."""
    listings = []
    rows = conn.cursor(row_factory=dict_row).execute(
        f"""SELECT search_query, search_location, results, fetched_at FROM {CACHE_TABLE}
             WHERE tenant_id = %s
               AND (search_query, search_location) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
             ORDER BY 1, 2""",
        (tenant_id, [s.query for s in searches], [s.location for s in searches]),
    )
    for row in rows:
        label = f"{row['search_query']} in {row['search_location']}"
        for listing in row["results"]:
            listings.append({**listing, "searches": [label], "seen_at": row["fetched_at"]})
    return listings


@asset_check(
    asset=business_cache,
    blocking=True,
    description=(
        "Great Expectations suite on every cached listing: coordinates in range, a name, an OSM "
        "reference and the ODbL attribution. Blocking: bad listings never reach the master."
    ),
)
def business_cache_listings_valid(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    tenant_id = context.partition_key if context.has_partition_key else None
    if tenant_id is None:
        return skipped_check()
    searches = load_directory_settings(warehouse, tenant_id).searches
    with warehouse.tenant_transaction(tenant_id) as conn:
        listings = tenant_listings(conn, tenant_id, searches)
    frame = pd.DataFrame(listings, columns=["osm_ref", "name", "lat", "lon", "licence"])
    return validate(
        "business_cache_listings",
        frame,
        lambda gxe: [
            gxe.ExpectColumnValuesToNotBeNull(column="name"),
            gxe.ExpectColumnValueLengthsToBeBetween(column="name", min_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="lat", min_value=-90, max_value=90),
            gxe.ExpectColumnValuesToBeBetween(column="lon", min_value=-180, max_value=180),
            gxe.ExpectColumnValuesToNotBeNull(column="lat"),
            gxe.ExpectColumnValuesToNotBeNull(column="lon"),
            gxe.ExpectColumnValuesToMatchRegex(column="osm_ref", regex=r"^(?:node|way|relation)/\d+$"),
            gxe.ExpectColumnValuesToMatchRegex(column="licence", regex="OpenStreetMap|openstreetmap|osm.org"),
        ],
    )


MASTER_COLUMNS = (
    "business_id",
    "name",
    "name_key",
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
    "opening_hours",
    "osm_refs",
    "sources",
    "searches",
    "attribution",
    "status",
    "content_hash",
    "first_seen",
    "last_seen",
    "verified_at",
    "changed_at",
    "dagster_run_id",
)


def write_master(conn, tenant_id: str, reconciled: Reconciled, run_id: str | None) -> int:
    """The tenant's new master, the words and facet counts the API reads it by, and the
    history events, all in the caller's transaction: they can never disagree."""
    rows = [
        {
            **row,
            "dagster_run_id": run_id,
            "opening_hours": Jsonb(row["opening_hours"]) if row["opening_hours"] is not None else None,
        }
        for row in reconciled.rows
    ]
    written = write_partition(conn, tenant_id, MASTER_TABLE, rows, columns=MASTER_COLUMNS, run_id=run_id)
    words = [{"word": w, "business_id": r["business_id"]} for r in reconciled.rows for w in business_words(r)]
    write_partition(conn, tenant_id, WORDS_TABLE, words, columns=("word", "business_id"), run_id=run_id)
    write_partition(
        conn,
        tenant_id,
        FACETS_TABLE,
        facet_counts(reconciled.rows),
        columns=("status", "category", "city_key", "businesses"),
        run_id=run_id,
    )
    append_rows(conn, tenant_id, HISTORY_TABLE, [{**e, "dagster_run_id": run_id} for e in reconciled.events])
    return written


@asset(
    partitions_def=directory_partitions,
    group_name="directory",
    kinds={"postgres"},
    deps=[business_cache],
    metadata={"table": MASTER_TABLE},
    description=(
        "One row per real business per tenant, merged across sources and searches (same OSM "
        "object, or the same normalised name within max_distance_m), with E.164 phones, parsed "
        f"opening hours and a category taxonomy. Changes are kept in {HISTORY_TABLE}."
    ),
)
def businesses_master(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    tenant_id = context.partition_key
    settings = load_directory_settings(warehouse, tenant_id)
    started = time.perf_counter()
    now = datetime.now(UTC)
    with warehouse.tenant_transaction(tenant_id) as conn:
        # Two runs for one tenant must not reconcile against the same previous master, and the
        # listings are read under the lock too, so an older run cannot overwrite a newer master.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{MASTER_TABLE}:{tenant_id}",))
        listings = tenant_listings(conn, tenant_id, settings.searches)
        businesses = resolve(listings, settings.max_distance_m)
        with conn.cursor(row_factory=dict_row) as cur:
            previous = cur.execute(
                f"SELECT * FROM {MASTER_TABLE} WHERE tenant_id = %s", (tenant_id,)
            ).fetchall()
        reconciled = reconcile(businesses, previous, now)
        written = write_master(conn, tenant_id, reconciled, context.run.run_id)
    elapsed = time.perf_counter() - started
    active = [r for r in reconciled.rows if r["status"] == "active"]

    def share(field: str) -> float:
        return round(sum(1 for r in active if r.get(field)) / len(active), 3) if active else 0.0

    return MaterializeResult(
        metadata={
            "dagster/row_count": MetadataValue.int(written),
            "listings_in": MetadataValue.int(len(listings)),
            "businesses_active": MetadataValue.int(len(active)),
            "businesses_missing": MetadataValue.int(written - len(active)),
            "duplicates_merged": MetadataValue.int(len(listings) - len(businesses)),
            **{f"events_{e}": MetadataValue.int(reconciled.count(e)) for e in _EVENTS},
            "share_with_phone": MetadataValue.float(share("phone")),
            "share_with_website": MetadataValue.float(share("website")),
            "share_with_opening_hours": MetadataValue.float(share("opening_hours")),
            "listings_merged_per_s": MetadataValue.float(
                round(len(listings) / elapsed, 1) if elapsed else 0.0
            ),
            "preview": preview_table(
                [
                    {
                        k: r.get(k)
                        for k in ("name", "category", "city", "phone", "website", "sources", "status")
                    }
                    for r in sorted(active, key=lambda r: r["name_key"])
                ]
            ),
        }
    )


_EVENTS = ("appeared", "changed", "disappeared", "reappeared")


@asset_check(
    asset=businesses_master,
    blocking=True,
    description=(
        "Great Expectations suite on the tenant's master: unique business ids, no duplicate "
        "businesses (same name at the same place), coordinates in range, names, E.164 phones, "
        "http(s) websites and the ODbL attribution."
    ),
)
def businesses_master_valid(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    tenant_id = context.partition_key if context.has_partition_key else None
    if tenant_id is None:
        return skipped_check()
    rows = warehouse.query(
        tenant_id,
        f"""SELECT business_id, name, name_key, lat, lon, phone, website, attribution,
                   round(lat::numeric, 3) AS lat_3, round(lon::numeric, 3) AS lon_3
              FROM {MASTER_TABLE} WHERE tenant_id = %s AND status = 'active'""",
        (tenant_id,),
    )
    frame = pd.DataFrame(
        rows,
        columns=[
            "business_id",
            "name",
            "name_key",
            "lat",
            "lon",
            "phone",
            "website",
            "attribution",
            "lat_3",
            "lon_3",
        ],
    )
    return validate(
        "businesses_master",
        frame,
        lambda gxe: [
            gxe.ExpectColumnValuesToBeUnique(column="business_id"),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["name_key", "lat_3", "lon_3"]),
            gxe.ExpectColumnValueLengthsToBeBetween(column="name", min_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="lat", min_value=-90, max_value=90),
            gxe.ExpectColumnValuesToBeBetween(column="lon", min_value=-180, max_value=180),
            gxe.ExpectColumnValuesToMatchRegex(column="phone", regex=E164_PATTERN.pattern),
            gxe.ExpectColumnValuesToMatchRegex(column="website", regex=WEBSITE_PATTERN.pattern),
            gxe.ExpectColumnValuesToMatchRegex(column="attribution", regex="OpenStreetMap contributors"),
        ],
    )


directory_refresh_job = define_asset_job(
    "directory_refresh",
    selection=[business_cache, businesses_master],
    description="Refresh a directory tenant's cache (expired or missing searches only) and its master.",
)


@schedule(job=directory_refresh_job, cron_schedule="0 4 * * *", execution_timezone="UTC")
def directory_daily_refresh(context):
    """Every directory tenant, daily: fresh cache entries cost nothing, expired ones are refetched."""
    for tenant_id in context.instance.get_dynamic_partitions(directory_partitions.name):
        yield RunRequest(
            run_key=f"{tenant_id}:{context.scheduled_execution_time:%Y-%m-%d}",
            partition_key=tenant_id,
            tags={"bizosaas/trigger": "daily_refresh"},
        )
