"""Esports news and export loading throughput in replay mode (issue 5).

    python -m bench.esports [--quick]

On the bench data folder (`.data/bench`, every seeded asset materialized first), with synthetic
inputs written to a temporary folder:

1. news: N feeds x M items as replay recordings (a tenant of its own lists them); the parse
   alone (feedparser + cleaning, no database), de-duplication alone, and the `esports_news`
   materialization end to end, first on an empty table (all items new) and again on the same
   answers (every item matched and updated): items per second;
2. exports: a players CSV (10,000 rows in --quick, 100,000 in full) and a tournaments JSON
   (entries pointing at those players): whole-file validation alone, and validate + load in
   one transaction + ledger + move to processed (what a sensor-launched run does): rows per
   second.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from bench.api import ROOT, prepare_platform

BENCH_TENANT = "bench_esports"
NOW = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)


def ensure_tenant(admin_url: str, instance, feeds: list[dict]) -> None:
    from psycopg.types.json import Jsonb

    from orchestration import postgres
    from orchestration.partitions import tenant_partitions

    with postgres.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO core.tenants (tenant_id, display_name, kind, parent_tenant_id, tier, domains)
               VALUES (%s, 'Bench esports', 'client', 'bizoholic', 'starter', '{gaming}')
               ON CONFLICT (tenant_id) DO NOTHING""",
            (BENCH_TENANT,),
        )
        conn.execute(
            "UPDATE core.tenants SET settings = jsonb_set(settings, '{gaming}', %s, true)"
            " WHERE tenant_id = %s",
            (Jsonb({"news_feeds": feeds}), BENCH_TENANT),
        )
        # A clean slate for every bench run.
        for table in (
            "core.gaming_tournament_entries",
            "core.gaming_tournaments",
            "core.gaming_players",
            "core.gaming_file_loads",
            "core.gaming_news_items",
            "core.gaming_feed_state",
            "raw.gaming_feed_responses",
        ):
            conn.execute(f"DELETE FROM {table} WHERE tenant_id = %s", (BENCH_TENANT,))
    instance.add_dynamic_partitions(tenant_partitions("gaming").name, [BENCH_TENANT])


# --- news -----------------------------------------------------------------------------------------


def synthetic_feed(feed: int, items: int, rng: random.Random) -> str:
    """WordPress-like RSS; about one story in ten also appears in the next feed (same title)."""
    entries = []
    for i in range(items):
        shared = i % 10 == 0
        story = f"{feed - 1 if shared and feed else feed}-{i}"
        title = f"Story {story}: team {rng.randint(1, 99)} wins the {['cup', 'open', 'major'][i % 3]}"
        if shared:
            title = f"Shared story {i}"
        published = NOW - timedelta(minutes=7 * i + feed)
        link = f"https://feed{feed}.example/news/{i}/?utm_source=rss&amp;utm_medium=rss"
        entries.append(
            f"<item><title>{title}</title><link>{link}</link>"
            f"<dc:creator><![CDATA[Writer {i % 7}]]></dc:creator>"
            f"<pubDate>{format_datetime(published)}</pubDate>"
            f"<category><![CDATA[Game {i % 5}]]></category>"
            f'<guid isPermaLink="false">https://feed{feed}.example/?p={i}</guid>'
            f"<description><![CDATA[<p>{title}. {'Lorem ipsum dolor sit amet. ' * 6}</p>]]></description>"
            "</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<channel><title>Feed {feed}</title>{''.join(entries)}</channel></rss>"
    )


def write_feeds(folder: Path, feeds: int, items: int) -> tuple[list[dict], list[str]]:
    rng = random.Random(5)
    (folder / "feeds").mkdir(parents=True, exist_ok=True)
    settings, bodies = [], []
    for feed in range(feeds):
        url = f"https://feed{feed}.example/feed"
        body = synthetic_feed(feed, items, rng)
        bodies.append(body)
        recording = {
            "request": {"method": "GET", "url": url, "params": {}},
            "responses": [{"status": 200, "headers": {"Content-Type": "application/rss+xml"}, "text": body}],
        }
        (folder / "feeds" / f"feed_{feed}.json").write_text(json.dumps(recording))
        settings.append({"name": f"Feed {feed}", "url": url})
    return settings, bodies


def bench_news(instance, env, admin_url, folder: Path, feeds: int, items: int) -> dict:
    from dagster import AssetKey, AssetRecordsFilter, materialize

    from assets import esports
    from ml.gaming.news import deduplicate, parse_feed
    from orchestration.feed_sources import NewsFeedResource
    from orchestration.warehouse import WarehouseResource

    settings, bodies = write_feeds(folder, feeds, items)
    ensure_tenant(admin_url, instance, settings)
    started = time.perf_counter()
    parsed = [
        i for n, body in enumerate(bodies) for i in parse_feed(body, source=f"Feed {n}", fetched_at=NOW).items
    ]
    parse_s = time.perf_counter() - started
    started = time.perf_counter()
    stories = deduplicate(parsed).items
    dedup_s = time.perf_counter() - started

    def run() -> tuple[float, dict]:
        result = materialize(
            [esports.esports_news],
            partition_key=BENCH_TENANT,
            instance=instance,
            resources={
                "warehouse": WarehouseResource(database_url=env["BIZOSAAS_WRITER_URL"]),
                "feeds": NewsFeedResource(mode="replay", fixtures_dir=str(folder)),
            },
        )
        assert result.success
        seconds = next(
            e.event_specific_data.duration_ms / 1000
            for e in result.all_events
            if e.event_type_value == "STEP_SUCCESS"
        )
        record = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey("esports_news"), asset_partitions=[BENCH_TENANT]), limit=1
        ).records[0]
        return seconds, {k: v.value for k, v in record.event_log_entry.asset_materialization.metadata.items()}

    first_s, first = run()
    again_s, again = run()
    total = feeds * items
    return {
        "feeds": feeds,
        "items_per_feed": items,
        "items": total,
        "stories_after_dedup": len(stories),
        "parse_items_per_s": round(total / parse_s),
        "dedup_items_per_s": round(total / dedup_s),
        "materialize_new_s": round(first_s, 2),
        "materialize_new_items_per_s": round(total / first_s),
        "materialize_again_s": round(again_s, 2),
        "materialize_again_items_per_s": round(total / again_s),
        "stored_items": first["dagster/row_count"],
        "items_new_first_run": first["items_new"],
        "items_already_stored_second_run": again["items_already_stored"],
    }


# --- exports --------------------------------------------------------------------------------------


def players_csv(rows: int) -> bytes:
    rng = random.Random(7)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["player_id", "handle", "country", "team", "joined_at", "last_active_at", "primary_game",
                     "platform", "skill_rating", "status"])  # fmt: skip
    for n in range(rows):
        joined = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 900_000))
        active = joined + timedelta(minutes=rng.randint(60, 100_000))
        writer.writerow([f"BP-{n:07d}", f"player{n:07d}", rng.choice(["GB", "DE", "FR", "US", "SE", "BR"]),
                         rng.choice(["", "Night Owls", "Camden Crows"]), f"{joined:%Y-%m-%dT%H:%M:%SZ}",
                         f"{min(active, NOW):%Y-%m-%dT%H:%M:%SZ}", "Valorant", "pc", rng.randint(0, 4000),
                         "active"])  # fmt: skip
    return out.getvalue().encode()


def tournaments_json(tournaments: int, entries_each: int, players: int) -> bytes:
    rng = random.Random(9)
    records = []
    for n in range(tournaments):
        start = NOW - timedelta(days=rng.randint(1, 300))
        entrants = rng.sample(range(players), entries_each)
        records.append(
            {
                "tournament_id": f"BT-{n:06d}",
                "name": f"Bench Cup {n}",
                "game": ["Valorant", "Counter-Strike 2", "Rocket League"][n % 3],
                "format": "single_elimination",
                "start_at": f"{start:%Y-%m-%dT%H:%M:%SZ}",
                "end_at": f"{start + timedelta(hours=6):%Y-%m-%dT%H:%M:%SZ}",
                "prize_pool": "1000.00",
                "currency": "GBP",
                "status": "completed",
                "max_entrants": entries_each,
                "entries": [
                    {"player_id": f"BP-{p:07d}", "placement": place, "status": "finished"}
                    for place, p in enumerate(entrants, 1)
                ],
            }
        )
    return json.dumps(
        {"export": {"kind": "tournaments", "schema_version": 1}, "tournaments": records}
    ).encode()


def bench_exports(admin_url, env, folder: Path, players: int, tournaments: int, entries_each: int) -> dict:
    from assets import esports
    from ml.gaming.exports import validate_export
    from orchestration.file_drops import DropFolderResource
    from orchestration.warehouse import WarehouseResource

    warehouse = WarehouseResource(database_url=env["BIZOSAAS_WRITER_URL"])
    drops = DropFolderResource(root=str(folder / "drops"), settle_s=0)
    report = {}
    for kind, name, data, rows in [
        ("players", "players.csv", players_csv(players), players),
        (
            "tournaments",
            "tournaments.json",
            tournaments_json(tournaments, entries_each, players),
            tournaments,
        ),
    ]:
        started = time.perf_counter()
        with warehouse.tenant_transaction(BENCH_TENANT) as conn:
            export = validate_export(kind, name, data, lookup=esports._lookup(conn, BENCH_TENANT), now=NOW)
        validate_s = time.perf_counter() - started
        inbox = drops.inbox(BENCH_TENANT, kind)
        inbox.mkdir(parents=True, exist_ok=True)
        (inbox / name).write_bytes(data)
        started = time.perf_counter()
        outcome = esports.process_file(warehouse, drops, BENCH_TENANT, kind, inbox / name, "bench")
        load_s = time.perf_counter() - started
        assert outcome.status == "loaded", outcome
        records = rows + len(export.entries)
        report[kind] = {
            "file_bytes": len(data),
            "records": rows,
            "entries": len(export.entries),
            "validate_s": round(validate_s, 2),
            "validate_rows_per_s": round(records / validate_s),
            "validate_and_load_s": round(load_s, 2),
            "load_rows_per_s": round(records / load_s),
        }
        print(json.dumps({kind: report[kind]}), flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller inputs (what CI and helpers run)")
    args = parser.parse_args()
    env, _ = prepare_platform()
    from dagster import DagsterInstance

    from orchestration import postgres
    from orchestration.settings import load_settings

    admin_url = postgres.admin_url(load_settings())
    feeds, items = (10, 100) if args.quick else (50, 200)
    players, tournaments, entries_each = (10_000, 200, 16) if args.quick else (100_000, 2_000, 32)
    report: dict = {"cores": os.cpu_count(), "quick": args.quick}
    with tempfile.TemporaryDirectory() as tmp, DagsterInstance.get() as instance:
        report["news"] = bench_news(instance, env, admin_url, Path(tmp), feeds, items)
        print(json.dumps({"news": report["news"]}), flush=True)
        report["exports"] = bench_exports(admin_url, env, Path(tmp), players, tournaments, entries_each)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / "esports.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
