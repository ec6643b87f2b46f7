"""ThrillRing's esports community data: news from its RSS/Atom feeds, and the tournaments and
players it exports into its drop folder.

`esports_news` fetches every feed in the tenant's `settings.gaming.news_feeds` (conditional
GET), stores each raw answer first, and merges the parsed items into an accumulating,
de-duplicated table: a feed's rolling window never loses history, and one feed failing (429,
timeout, malformed XML, an HTML page) only fails the run when every feed failed.

`players` and `tournaments` load the tenant's exports (JSON or CSV): a whole file is validated
before anything is written, loaded in one transaction with its ledger row (the same content is
never loaded twice), and only then moved to processed/; a bad file goes to quarantine/ with a
reason file and fails the run, loading nothing. The file-drop sensor launches one run per new
file; without a file in the config, a run loads every pending file of the tenant's inbox.
"""

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
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
from pydantic import Field

from ml.gaming.exports import CURRENCIES, Export, validate_export
from ml.gaming.news import DEFAULT_TITLE_WINDOW, FeedError, NewsItem, deduplicate, parse_feed
from orchestration.feed_sources import NewsFeedResource
from orchestration.file_drops import DropFolderResource, FileOutcome, process_drop
from orchestration.metadata import preview_table
from orchestration.partitions import tenant_partitions
from orchestration.quality import skipped_check, validate
from orchestration.replay import UnrecordedRequestError
from orchestration.sources import Attempt, SourceError
from orchestration.tenant_settings import settings_error, tenant_settings
from orchestration.warehouse import WarehouseResource, append_rows, upsert_rows

NEWS_TABLE = "core.gaming_news_items"
FEED_STATE_TABLE = "core.gaming_feed_state"
RAW_FEEDS_TABLE = "raw.gaming_feed_responses"
PLAYERS_TABLE = "core.gaming_players"
TOURNAMENTS_TABLE = "core.gaming_tournaments"
ENTRIES_TABLE = "core.gaming_tournament_entries"
LEDGER_TABLE = "core.gaming_file_loads"

gaming_partitions = tenant_partitions("gaming")

news_feeds_source = AssetSpec(
    "news_feeds",
    group_name="gaming",
    kinds={"rss"},
    description="The RSS 2.0 / Atom feeds each gaming tenant lists in settings.gaming.news_feeds.",
)
drop_folder_source = AssetSpec(
    "gaming_drop_folder",
    group_name="gaming",
    kinds={"file"},
    description=(
        "The tenant's watched drop folder (<BIZOSAAS_DROPS_DIR>/<tenant>/players|tournaments/) where "
        "it leaves JSON or CSV exports of its players and tournaments."
    ),
)


# --- settings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Feed:
    name: str
    url: str


@dataclass(frozen=True)
class NewsSettings:
    feeds: tuple[Feed, ...]
    title_window: timedelta


def news_settings(tenant_id: str, settings: dict[str, Any]) -> NewsSettings:
    """The tenant's feed settings, or a Failure that names the wrong key."""

    fail = settings_error(tenant_id, "gaming")

    gaming = settings.get("gaming") or {}
    if not isinstance(gaming, dict):
        raise fail("", "an object", gaming)
    entries = gaming.get("news_feeds") or []
    if not isinstance(entries, list):
        raise fail("news_feeds", "a list of {name, url}", entries)
    feeds: dict[str, Feed] = {}
    for index, entry in enumerate(entries):
        name = str(entry.get("name") or "").strip() if isinstance(entry, dict) else ""
        url = str(entry.get("url") or "").strip() if isinstance(entry, dict) else ""
        if not name or not url.startswith(("http://", "https://")):
            raise fail(f"news_feeds[{index}]", "an object with a name and an http(s) url", entry)
        if name in feeds or url in {f.url for f in feeds.values()}:
            raise fail(f"news_feeds[{index}]", "a feed with a name and url of its own", entry)
        feeds[name] = Feed(name, url)
    hours = gaming.get("news_dedup_hours", DEFAULT_TITLE_WINDOW.total_seconds() / 3600)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 <= hours <= 24 * 30:
        raise fail("news_dedup_hours", "a number of hours between 0 and 720", hours)
    return NewsSettings(tuple(feeds.values()), timedelta(hours=hours))


def load_news_settings(warehouse: WarehouseResource, tenant_id: str) -> NewsSettings:
    return news_settings(tenant_id, tenant_settings(warehouse, tenant_id))


# --- news -----------------------------------------------------------------------------------------


class EsportsNewsConfig(Config):
    reparse: bool = Field(
        default=False,
        description="Rebuild the items from every stored feed answer (after a parser fix); no HTTP.",
    )


@dataclass
class FeedOutcome:
    feed: Feed
    status: str  # ok | not_modified | failed
    items: list[NewsItem]
    http_status: int | None = None
    error: str | None = None
    calls: int = 0
    etag: str | None = None
    last_modified: str | None = None
    fetched_at: datetime | None = None


def _store_feed_attempts(warehouse, tenant_id: str, feed: Feed, attempts: list[Attempt], answer, run_id):
    """Raw answers first, in their own transaction: whatever happens next, they are kept."""
    if not attempts:
        return
    rows = [
        {
            "feed_name": feed.name,
            "feed_url": feed.url,
            "request": a.request,
            "status": a.status,
            "body": a.body,
            "etag": answer.etag if answer is not None and a is attempts[-1] else None,
            "last_modified": answer.last_modified if answer is not None and a is attempts[-1] else None,
            "attempt": a.attempt,
            "fetched_at": a.fetched_at,
            "dagster_run_id": run_id,
        }
        for a in attempts
    ]
    with warehouse.tenant_transaction(tenant_id) as conn:
        append_rows(conn, tenant_id, RAW_FEEDS_TABLE, rows)


def _fetch_feed(news_feeds: NewsFeedResource, client, warehouse, tenant_id, feed: Feed, state, run_id):
    attempts: list[Attempt] = []
    answer = None
    # Validators are only sent back for an answer that parsed: a feed that was broken last time
    # is fetched in full, not answered with "not modified".
    validators = state if state and state["last_error"] is None else {}
    try:
        answer = news_feeds.fetch_feed(
            client,
            feed.url,
            etag=validators.get("etag"),
            last_modified=validators.get("last_modified"),
            attempts=attempts,
        )
    except (SourceError, UnrecordedRequestError) as exc:
        return FeedOutcome(
            feed, "failed", [], attempts[-1].status if attempts else None, str(exc), len(attempts)
        )
    finally:
        _store_feed_attempts(warehouse, tenant_id, feed, attempts, answer, run_id)
    fetched_at = attempts[-1].fetched_at
    outcome = FeedOutcome(
        feed,
        "not_modified",
        [],
        answer.status,
        None,
        len(attempts),
        answer.etag,
        answer.last_modified,
        fetched_at,
    )
    if answer.not_modified:
        # A 304 carries no validators of its own; the stored ones stay valid.
        outcome.etag, outcome.last_modified = validators.get("etag"), validators.get("last_modified")
        return outcome
    try:
        parsed = parse_feed(answer.text, source=feed.name, fetched_at=fetched_at)
    except FeedError as exc:
        outcome.status, outcome.error = "failed", str(exc)
        return outcome
    outcome.status, outcome.items = "ok", parsed.items
    return outcome


def _reparse_feeds(warehouse, tenant_id: str, feeds: tuple[Feed, ...]) -> list[FeedOutcome]:
    by_url = {f.url: f for f in feeds}
    rows = warehouse.query(
        tenant_id,
        f"""SELECT feed_url, body, fetched_at FROM {RAW_FEEDS_TABLE}
             WHERE tenant_id = %s AND status = 200 AND feed_url = ANY(%s) ORDER BY response_id""",
        (tenant_id, list(by_url)),
    )
    outcomes = {f.url: FeedOutcome(f, "not_modified", []) for f in feeds}
    for row in rows:
        outcome = outcomes[row["feed_url"]]
        try:
            parsed = parse_feed(row["body"], source=outcome.feed.name, fetched_at=row["fetched_at"])
        except FeedError:
            continue  # the answers that failed then fail now; they were reported when fetched
        outcome.status = "ok"
        outcome.items += parsed.items
    return list(outcomes.values())


_NEWS_UPDATES = {
    # A story keeps its first sighting; its feeds accumulate; its own feed may correct it.
    "last_seen_at": "greatest(t.last_seen_at, EXCLUDED.last_seen_at)",
    "sources": "ARRAY(SELECT DISTINCT s FROM unnest(t.sources || EXCLUDED.sources) AS s ORDER BY 1)",
    "published_at": "CASE WHEN t.published_inferred AND NOT EXCLUDED.published_inferred "
    "THEN EXCLUDED.published_at ELSE t.published_at END",
    "published_inferred": "t.published_inferred AND EXCLUDED.published_inferred",
    **{
        column: f"CASE WHEN t.source = EXCLUDED.source THEN EXCLUDED.{column} ELSE t.{column} END"
        for column in ("title", "title_key", "summary", "author", "tags", "url", "url_key", "guid")
    },
    "dagster_run_id": "EXCLUDED.dagster_run_id",
}


_STATE_UPDATES = {
    # A failed fetch keeps the validators and the last success of the feed's previous answer.
    "etag": "CASE WHEN EXCLUDED.last_error IS NULL THEN EXCLUDED.etag ELSE t.etag END",
    "last_modified": "CASE WHEN EXCLUDED.last_error IS NULL THEN EXCLUDED.last_modified "
    "ELSE t.last_modified END",
    "last_success_at": "coalesce(EXCLUDED.last_success_at, t.last_success_at)",
    "consecutive_failures": "CASE WHEN EXCLUDED.consecutive_failures = 0 THEN 0 "
    "ELSE t.consecutive_failures + 1 END",
}


def merge_news(conn, tenant_id: str, outcomes: list[FeedOutcome], window: timedelta, run_id, now) -> dict:
    """De-duplicate this run's items against each other and the stored ones, and upsert them,
    with the feeds' state, in the caller's transaction."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{NEWS_TABLE}:{tenant_id}",))
    items = [item for outcome in outcomes for item in outcome.items]
    existing = []
    if items:
        cursor = conn.execute(
            f"""SELECT item_key, source, guid, url_key, title_key, published_at FROM {NEWS_TABLE}
                 WHERE tenant_id = %s AND (guid = ANY(%s) OR url_key = ANY(%s) OR title_key = ANY(%s))""",
            (
                tenant_id,
                list({i.guid for i in items if i.guid}),
                list({i.url_key for i in items if i.url_key}),
                list({i.title_key for i in items}),
            ),
        )
        columns = [c.name for c in cursor.description]
        existing = [dict(zip(columns, row, strict=True)) for row in cursor]
    folded = deduplicate(items, existing, window=window)
    rows = [
        {
            "item_key": item.item_key,
            "source": item.source,
            "sources": list(item.sources),
            "guid": item.guid,
            "url": item.url,
            "url_key": item.url_key,
            "title": item.title,
            "title_key": item.title_key,
            "summary": item.summary,
            "author": item.author,
            "tags": list(item.tags),
            "published_at": item.published_at,
            "published_inferred": item.published_inferred,
            "first_seen_at": now,
            "last_seen_at": now,
            "dagster_run_id": run_id,
        }
        for item in folded.items
    ]
    upsert_rows(conn, tenant_id, NEWS_TABLE, rows, key=["item_key"], updates=_NEWS_UPDATES, run_id=run_id)
    states = [
        {
            "feed_url": o.feed.url,
            "feed_name": o.feed.name,
            "etag": o.etag if o.status != "failed" else None,
            "last_modified": o.last_modified if o.status != "failed" else None,
            "last_status": o.http_status,
            "last_fetched_at": o.fetched_at or now,
            "last_success_at": (o.fetched_at or now) if o.status != "failed" else None,
            "consecutive_failures": 1 if o.status == "failed" else 0,
            "last_error": o.error,
            "items_in_last_answer": len(o.items) if o.status == "ok" else None,
            "dagster_run_id": run_id,
        }
        for o in outcomes
        if o.fetched_at is not None or o.status == "failed"
    ]
    state_updates = {c: f"EXCLUDED.{c}" for c in (states[0] if states else {}) if c != "feed_url"}
    state_updates.update(_STATE_UPDATES)
    upsert_rows(
        conn, tenant_id, FEED_STATE_TABLE, states, key=["feed_url"], updates=state_updates, run_id=run_id
    )
    stored = conn.execute(f"SELECT count(*) FROM {NEWS_TABLE} WHERE tenant_id = %s", (tenant_id,)).fetchone()[
        0
    ]
    return {"folded": folded, "rows": rows, "stored": stored}


@asset(
    partitions_def=gaming_partitions,
    group_name="gaming",
    kinds={"postgres", "rss"},
    deps=["tenant_registry", news_feeds_source],
    metadata={"table": NEWS_TABLE},
    description=(
        "Esports news per gaming tenant from its RSS/Atom feeds, de-duplicated across feeds and runs "
        "(same guid, same canonical link, or same title within news_dedup_hours), with source feed, "
        f"published time (UTC), summary, author and tags. Items accumulate; raw answers: {RAW_FEEDS_TABLE}."
    ),
)
def esports_news(
    context: AssetExecutionContext,
    config: EsportsNewsConfig,
    warehouse: WarehouseResource,
    feeds: NewsFeedResource,
) -> MaterializeResult:
    tenant_id = context.partition_key
    run_id = context.run.run_id
    settings = load_news_settings(warehouse, tenant_id)
    if not settings.feeds:
        return MaterializeResult(metadata={"feeds": 0, "note": "no news_feeds in the tenant's settings"})
    started = time.perf_counter()
    now = datetime.now(UTC)
    if config.reparse:
        outcomes = _reparse_feeds(warehouse, tenant_id, settings.feeds)
    else:
        state = {
            r["feed_url"]: r
            for r in warehouse.query(
                tenant_id, f"SELECT * FROM {FEED_STATE_TABLE} WHERE tenant_id = %s", (tenant_id,)
            )
        }
        outcomes = []
        with feeds.http_client() as client:
            for feed in settings.feeds:
                outcome = _fetch_feed(feeds, client, warehouse, tenant_id, feed, state.get(feed.url), run_id)
                outcomes.append(outcome)
                log = context.log.warning if outcome.status == "failed" else context.log.info
                log(
                    f"{feed.name}: {outcome.status}, {len(outcome.items)} items"
                    + (f" ({outcome.error})" if outcome.error else "")
                )
    with warehouse.tenant_transaction(tenant_id) as conn:
        merged = merge_news(conn, tenant_id, outcomes, settings.title_window, run_id, now)
    elapsed = time.perf_counter() - started
    folded = merged["folded"]
    failed = [o for o in outcomes if o.status == "failed"]
    parsed_items = sum(len(o.items) for o in outcomes)
    metadata = {
        "dagster/row_count": MetadataValue.int(merged["stored"]),
        "feeds": MetadataValue.int(len(outcomes)),
        "feeds_ok": MetadataValue.int(sum(o.status == "ok" for o in outcomes)),
        "feeds_not_modified": MetadataValue.int(sum(o.status == "not_modified" for o in outcomes)),
        "feeds_failed": MetadataValue.int(len(failed)),
        "items_parsed": MetadataValue.int(parsed_items),
        "items_new": MetadataValue.int(len(folded.items) - folded.matched_existing),
        "items_already_stored": MetadataValue.int(folded.matched_existing),
        "duplicates_folded": MetadataValue.int(folded.duplicates),
        "duplicates_by_rule": MetadataValue.json(folded.by_rule),
        "http_calls": MetadataValue.int(sum(o.calls for o in outcomes)),
        "items_per_s": MetadataValue.float(round(parsed_items / elapsed, 1) if elapsed else 0.0),
        "feeds_report": preview_table(
            [
                {
                    "feed": o.feed.name,
                    "status": o.status,
                    "http": o.http_status,
                    "items": len(o.items),
                    "error": o.error or "",
                }
                for o in outcomes
            ]
        ),
        "latest": preview_table(
            [
                {
                    "published_at": r["published_at"].isoformat(timespec="minutes"),
                    "source": r["source"],
                    "title": r["title"],
                }
                for r in sorted(merged["rows"], key=lambda r: r["published_at"], reverse=True)
            ]
        ),
    }
    if failed:
        metadata["failed_feeds"] = MetadataValue.text(" | ".join(f"{o.feed.name}: {o.error}" for o in failed))
    if failed and len(failed) == len(outcomes):
        raise Failure(
            description=(
                f"all {len(outcomes)} news feeds failed (stored items are kept; raw answers are in "
                f"{RAW_FEEDS_TABLE}): " + " | ".join(f"{o.feed.name}: {o.error}" for o in failed)
            ),
            metadata=metadata,
        )
    return MaterializeResult(metadata=metadata)


@asset_check(
    asset=esports_news,
    description=(
        "Great Expectations suite on the tenant's news: unique item keys, no two items with the same "
        "canonical link or guid, titles, http(s) links, and no item published more than a day ahead."
    ),
)
def esports_news_valid(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    tenant_id = context.partition_key if context.has_partition_key else None
    if tenant_id is None:
        return skipped_check()
    rows = warehouse.query(
        tenant_id,
        # A bare guid ("12345") is only unique within its feed; a URI-like one everywhere.
        f"""SELECT item_key, url, url_key, title,
                   CASE WHEN guid ~ '://' OR guid ~ '^(urn|tag):' THEN guid
                        ELSE source || '#' || guid END AS guid,
                   extract(epoch FROM published_at - now()) / 3600.0 AS hours_ahead
              FROM {NEWS_TABLE} WHERE tenant_id = %s""",
        (tenant_id,),
    )
    frame = pd.DataFrame(rows, columns=["item_key", "url", "url_key", "guid", "title", "hours_ahead"])
    frame["hours_ahead"] = frame["hours_ahead"].astype(float)
    return validate(
        "esports_news",
        frame,
        lambda gxe: [
            gxe.ExpectColumnValuesToBeUnique(column="item_key"),
            gxe.ExpectColumnValuesToBeUnique(column="url_key"),
            gxe.ExpectColumnValuesToBeUnique(column="guid"),
            gxe.ExpectColumnValueLengthsToBeBetween(column="title", min_value=1),
            gxe.ExpectColumnValuesToMatchRegex(column="url", regex=r"^https?://"),
            gxe.ExpectColumnValuesToBeBetween(column="hours_ahead", max_value=24),
        ],
    )


esports_news_job = define_asset_job(
    "esports_news_refresh",
    selection=[esports_news],
    description="Fetch a gaming tenant's news feeds and merge the new items.",
)


@schedule(job=esports_news_job, cron_schedule="17 * * * *", execution_timezone="UTC")
def esports_news_hourly(context):
    """Every gaming tenant, hourly (feeds are polled politely: conditional GETs, off the hour)."""
    for tenant_id in context.instance.get_dynamic_partitions(gaming_partitions.name):
        yield RunRequest(
            run_key=f"{tenant_id}:{context.scheduled_execution_time:%Y-%m-%dT%H}",
            partition_key=tenant_id,
            tags={"bizosaas/trigger": "hourly_news"},
        )


# --- file drops -----------------------------------------------------------------------------------


class DropConfig(Config):
    file: str | None = Field(
        default=None,
        description="One file of the tenant's inbox to load (the sensor sets it); unset: every pending file.",
    )


def _lookup(conn, tenant_id: str):
    tables = {"players": (PLAYERS_TABLE, "player_id"), "tournaments": (TOURNAMENTS_TABLE, "tournament_id")}

    def lookup(kind: str, ids: set[str]) -> set[str]:
        table, column = tables[kind]
        rows = conn.execute(
            f"SELECT {column} FROM {table} WHERE tenant_id = %s AND {column} = ANY(%s)",
            (tenant_id, list(ids)),
        )
        return {r[0] for r in rows}

    return lookup


_PLAYER_UPDATES = {
    **{
        c: f"EXCLUDED.{c}"
        for c in ("handle", "country", "team", "primary_game", "platform", "skill_rating", "status")
    },
    # An older export arriving late must not make a player look less recently active.
    "last_active_at": "greatest(t.last_active_at, EXCLUDED.last_active_at)",
    "joined_at": "least(t.joined_at, EXCLUDED.joined_at)",
    **{c: f"EXCLUDED.{c}" for c in ("source_file", "source_sha256", "loaded_at", "dagster_run_id")},
}


def load_export(conn, tenant_id: str, kind: str, name: str, sha256: str, export: Export, run_id):
    """Write one validated export in the caller's transaction; returns its ledger columns."""
    provenance = {"source_file": name, "source_sha256": sha256, "dagster_run_id": run_id}
    if kind == "players":
        rows = [{**p, **provenance} for p in export.players]
        upsert_rows(
            conn, tenant_id, PLAYERS_TABLE, rows, key=["player_id"], updates=_PLAYER_UPDATES, run_id=run_id
        )
    else:
        tournaments = [{**t, **provenance} for t in export.tournaments]
        upsert_rows(conn, tenant_id, TOURNAMENTS_TABLE, tournaments, key=["tournament_id"], run_id=run_id)
        entries = [{**e, **provenance} for e in export.entries]
        upsert_rows(
            conn, tenant_id, ENTRIES_TABLE, entries, key=["tournament_id", "player_id"], run_id=run_id
        )
    return {"file_format": export.file_format, "records": export.records, "entries": len(export.entries)}


def process_file(
    warehouse: WarehouseResource,
    drops: DropFolderResource,
    tenant_id: str,
    kind: str,
    path: Path,
    run_id: str | None,
    log=None,
) -> FileOutcome:
    """Validate, load and file away one dropped export; never half-loads it."""
    return process_drop(
        warehouse,
        drops,
        tenant_id,
        kind,
        path,
        ledger_table=LEDGER_TABLE,
        validate=lambda conn, name, data: validate_export(
            kind, name, data, lookup=_lookup(conn, tenant_id), now=datetime.now(UTC)
        ),
        load=lambda conn, name, sha256, size, export: load_export(
            conn, tenant_id, kind, name, sha256, export, run_id
        ),
        run_id=run_id,
    )


def _drop_files(
    context, config: DropConfig, drops: DropFolderResource, tenant_id: str, kind: str
) -> list[Path]:
    inbox = drops.inbox(tenant_id, kind)
    inbox.mkdir(parents=True, exist_ok=True)  # so the tenant knows where to drop
    if config.file is None:
        return [f.path for f in drops.pending(tenant_id, kind)]
    path = Path(config.file)
    if path.parent.resolve() != inbox.resolve():
        raise Failure(
            f"{config.file} is not in {tenant_id}'s {kind} inbox ({inbox}); only inbox files are loaded"
        )
    return [path]


def _drops_result(context, tenant_id: str, kind: str, outcomes: list[FileOutcome], elapsed: float, warehouse):
    table = PLAYERS_TABLE if kind == "players" else TOURNAMENTS_TABLE
    stored = warehouse.query(
        tenant_id, f"SELECT count(*) AS n FROM {table} WHERE tenant_id = %s", (tenant_id,)
    )[0]["n"]
    counts = Counter(o.status for o in outcomes)
    records = sum(o.records for o in outcomes)
    metadata = {
        "dagster/row_count": MetadataValue.int(stored),
        "files_seen": MetadataValue.int(len(outcomes)),
        "files_loaded": MetadataValue.int(counts["loaded"]),
        "files_loaded_before": MetadataValue.int(counts["loaded_before"]),
        "files_duplicate": MetadataValue.int(counts["duplicate"]),
        "files_rejected": MetadataValue.int(counts["rejected"]),
        "records_loaded": MetadataValue.int(records),
        "entries_loaded": MetadataValue.int(sum(o.entries for o in outcomes)),
        "records_per_s": MetadataValue.float(round(records / elapsed, 1) if elapsed and records else 0.0),
        "files": preview_table(
            [
                {
                    "file": o.name,
                    "status": o.status,
                    "records": o.records,
                    "entries": o.entries,
                    "detail": o.detail,
                }
                for o in outcomes
            ]
        ),
    }
    rejected = [o for o in outcomes if o.status == "rejected"]
    if rejected:
        raise Failure(
            description=(
                f"{len(rejected)} {kind} export(s) rejected and moved to quarantine (nothing of them was "
                "loaded; each has a .reason.txt beside it): " + " | ".join(o.detail for o in rejected)
            ),
            metadata=metadata,
        )
    if not outcomes:
        context.log.info(f"no pending {kind} exports in {tenant_id}'s inbox")
    return MaterializeResult(metadata=metadata)


def _run_drops(context, config: DropConfig, warehouse, drops, kind: str) -> MaterializeResult:
    tenant_id = context.partition_key
    started = time.perf_counter()
    outcomes = []
    for path in _drop_files(context, config, drops, tenant_id, kind):
        outcome = process_file(warehouse, drops, tenant_id, kind, path, context.run.run_id)
        log = context.log.error if outcome.status == "rejected" else context.log.info
        log(
            f"{kind} export {outcome.name}: {outcome.status}"
            + (f" ({outcome.detail})" if outcome.detail else "")
        )
        outcomes.append(outcome)
    return _drops_result(context, tenant_id, kind, outcomes, time.perf_counter() - started, warehouse)


@asset(
    partitions_def=gaming_partitions,
    group_name="gaming",
    kinds={"postgres", "file"},
    deps=["tenant_registry", drop_folder_source],
    metadata={"table": PLAYERS_TABLE},
    description=(
        "The tenant's players (handle, country, team, joined/last active, platform, rating), loaded "
        "from the players exports it drops (JSON or CSV), validated whole, upserted by player_id."
    ),
)
def players(
    context: AssetExecutionContext,
    config: DropConfig,
    warehouse: WarehouseResource,
    drops: DropFolderResource,
) -> MaterializeResult:
    return _run_drops(context, config, warehouse, drops, "players")


@asset(
    partitions_def=gaming_partitions,
    group_name="gaming",
    kinds={"postgres", "file"},
    # Entries point at players: in a run of both, players files load first.
    deps=[players, drop_folder_source],
    metadata={"table": TOURNAMENTS_TABLE},
    description=(
        "The tenant's tournaments (game, format, dates, prize pool, status) and their entries (player, "
        "placement, prize), from the tournaments exports it drops; validated whole, every entry's "
        f"player known. Entries: {ENTRIES_TABLE}; loaded files: {LEDGER_TABLE}."
    ),
)
def tournaments(
    context: AssetExecutionContext,
    config: DropConfig,
    warehouse: WarehouseResource,
    drops: DropFolderResource,
) -> MaterializeResult:
    return _run_drops(context, config, warehouse, drops, "tournaments")


def _partition(context) -> str | None:
    return context.partition_key if context.has_partition_key else None


@asset_check(
    asset=players,
    description=(
        "Great Expectations suite: unique player ids and handles, ISO countries, ratings in range, "
        "active only after joining."
    ),
)
def players_valid(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    tenant_id = _partition(context)
    if tenant_id is None:
        return skipped_check()
    rows = warehouse.query(
        tenant_id,
        f"""SELECT player_id, lower(handle) AS handle_key, country, skill_rating,
                   extract(epoch FROM last_active_at - joined_at) / 3600.0 AS active_after_joined_h
              FROM {PLAYERS_TABLE} WHERE tenant_id = %s""",
        (tenant_id,),
    )
    frame = pd.DataFrame(
        rows, columns=["player_id", "handle_key", "country", "skill_rating", "active_after_joined_h"]
    )
    frame["active_after_joined_h"] = frame["active_after_joined_h"].astype(float)
    return validate(
        "gaming_players",
        frame,
        lambda gxe: [
            gxe.ExpectColumnValuesToBeUnique(column="player_id"),
            gxe.ExpectColumnValuesToBeUnique(column="handle_key"),
            gxe.ExpectColumnValuesToMatchRegex(column="country", regex=r"^[A-Z]{2}$"),
            gxe.ExpectColumnValuesToBeBetween(column="skill_rating", min_value=0, max_value=10000),
            gxe.ExpectColumnValuesToBeBetween(column="active_after_joined_h", min_value=0),
        ],
    )


@asset_check(
    asset=tournaments,
    description=(
        "Great Expectations suite: unique tournament ids, end on or after start, prize pools "
        "non-negative in a known currency, known statuses."
    ),
)
def tournaments_valid(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    tenant_id = _partition(context)
    if tenant_id is None:
        return skipped_check()
    rows = warehouse.query(
        tenant_id,
        f"""SELECT tournament_id, prize_pool::float8 AS prize_pool, currency, status,
                   extract(epoch FROM end_at - start_at) / 3600.0 AS duration_h
              FROM {TOURNAMENTS_TABLE} WHERE tenant_id = %s""",
        (tenant_id,),
    )
    frame = pd.DataFrame(rows, columns=["tournament_id", "prize_pool", "currency", "status", "duration_h"])
    frame["duration_h"] = frame["duration_h"].astype(float)
    return validate(
        "gaming_tournaments",
        frame,
        lambda gxe: [
            gxe.ExpectColumnValuesToBeUnique(column="tournament_id"),
            gxe.ExpectColumnValuesToBeBetween(column="duration_h", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="prize_pool", min_value=0),
            gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=sorted(CURRENCIES)),
            gxe.ExpectColumnValuesToBeInSet(
                column="status",
                value_set=["scheduled", "registration_open", "live", "completed", "cancelled"],
            ),
        ],
    )


@asset_check(
    asset=tournaments,
    description="Great Expectations suite on the entries: one per player and tournament, placements from 1.",
)
def tournament_entries_valid(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    tenant_id = _partition(context)
    if tenant_id is None:
        return skipped_check()
    rows = warehouse.query(
        tenant_id,
        f"""SELECT tournament_id, player_id, placement, prize_won::float8 AS prize_won
              FROM {ENTRIES_TABLE} WHERE tenant_id = %s""",
        (tenant_id,),
    )
    frame = pd.DataFrame(rows, columns=["tournament_id", "player_id", "placement", "prize_won"])
    return validate(
        "gaming_tournament_entries",
        frame,
        lambda gxe: [
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["tournament_id", "player_id"]),
            gxe.ExpectColumnValuesToBeBetween(column="placement", min_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="prize_won", min_value=0),
        ],
    )


gaming_drops_job = define_asset_job(
    "gaming_file_drops",
    selection=[players, tournaments],
    description="Load a gaming tenant's dropped players and tournaments exports.",
)


@schedule(job=gaming_drops_job, cron_schedule="30 5 * * *", execution_timezone="UTC")
def gaming_drops_daily_sweep(context):
    """Every gaming tenant, daily: loads whatever is still pending (e.g. a file whose run was
    killed before it committed), players before tournaments. Loaded content is never reloaded."""
    for tenant_id in context.instance.get_dynamic_partitions(gaming_partitions.name):
        yield RunRequest(
            run_key=f"{tenant_id}:sweep:{context.scheduled_execution_time:%Y-%m-%d}",
            partition_key=tenant_id,
            tags={"bizosaas/trigger": "daily_drop_sweep"},
        )
