"""ThrillRing's esports news, tournaments and players end to end on the real Postgres and Dagster
instance: recorded feed answers replayed through the real client, real files in a drop folder,
the real sensor evaluated tick by tick."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, build_sensor_context, materialize
from psycopg.types.json import Jsonb

from assets import esports
from orchestration import tenants
from orchestration.feed_sources import NewsFeedResource
from orchestration.file_drops import DropFolderResource, file_sha256
from orchestration.settings import PROJECT_ROOT
from orchestration.warehouse import WarehouseResource, set_tenant
from sensors.file_drops import gaming_file_drops_sensor

FIXTURES = PROJECT_ROOT / "fixtures"
BUNDLED = FIXTURES / "drops" / "thrillring"
MALFORMED = FIXTURES / "drops_malformed" / "thrillring" / "tournaments" / "tournaments_2026-11-22.csv"
EDGE = "esports_edge"
GOOD_FEEDS = [
    {"name": "Dot Esports", "url": "https://dotesports.com/feed"},
    {"name": "HLTV", "url": "https://www.hltv.org/rss/news"},
    {"name": "Esports Insider", "url": "https://esportsinsider.com/feed/atom"},
]
BAD_FEEDS = [
    {"name": "Broken", "url": "https://feeds.example-esports.net/broken.xml"},
    {"name": "Challenge page", "url": "https://www.example-esports.net/rss"},
    {"name": "Rate limited", "url": "https://ratelimited.example-esports.net/feed"},
    {"name": "Gone", "url": "https://gone.example-esports.net/feed"},
]


def _query(platform, tenant, sql, params=()):
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, tenant)
        return conn.execute(sql, params).fetchall()


def _metadata(instance, key, tenant, first=False):
    """The latest (or, with `first`, the earliest) materialization's metadata."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(key), asset_partitions=[tenant]), limit=1, ascending=first
    ).records
    return {k: v.value for k, v in records[0].event_log_entry.asset_materialization.metadata.items()}


def _set_feeds(platform, tenant, feeds):
    with platform.admin() as conn:
        conn.execute(
            """UPDATE core.tenants SET settings = jsonb_set(settings, '{gaming}', %s, true)
                WHERE tenant_id = %s""",
            (Jsonb({"news_feeds": feeds}), tenant),
        )


def _failure_message(result) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.event_specific_data.error.message


@pytest.fixture(scope="module")
def edge(platform, dagster_instance: DagsterInstance):
    with platform.admin() as conn:
        conn.execute(
            """INSERT INTO core.tenants (tenant_id, display_name, kind, parent_tenant_id, tier, domains)
               VALUES (%s, 'Esports edge cases', 'client', 'bizoholic', 'starter', '{gaming}')
               ON CONFLICT (tenant_id) DO NOTHING""",
            (EDGE,),
        )
    dagster_instance.add_dynamic_partitions(esports.gaming_partitions.name, [EDGE])
    yield EDGE
    with platform.admin() as conn:
        tenants.offboard(conn, EDGE)
    dagster_instance.delete_dynamic_partition(esports.gaming_partitions.name, EDGE)


@pytest.fixture
def drops(tmp_path) -> DropFolderResource:
    return DropFolderResource(root=str(tmp_path / "drops"), settle_s=5)


def _drop(drops: DropFolderResource, tenant: str, kind: str, source: Path, name: str | None = None, age_s=60):
    inbox = drops.inbox(tenant, kind)
    inbox.mkdir(parents=True, exist_ok=True)
    target = inbox / (name or source.name)
    shutil.copyfile(source, target)
    stamp = time.time() - age_s
    os.utime(target, (stamp, stamp))
    return target


def _news(platform, instance, tenant, *, fixtures_dir=FIXTURES, config=None):
    return materialize(
        [esports.esports_news, esports.esports_news_valid],
        partition_key=tenant,
        instance=instance,
        resources={
            "warehouse": WarehouseResource(database_url=platform.writer_url),
            "feeds": NewsFeedResource(fixtures_dir=str(fixtures_dir), backoff_s=0.01, max_attempts=2),
        },
        run_config={"ops": {"esports_news": {"config": config}}} if config else None,
        raise_on_error=False,
    )


def _drops_run(platform, instance, tenant, drops, kind=None, file=None):
    assets = {
        "players": [esports.players, esports.players_valid],
        "tournaments": [esports.tournaments, esports.tournaments_valid, esports.tournament_entries_valid],
    }
    selected = [a for k in ([kind] if kind else ["players", "tournaments"]) for a in assets[k]]
    run_config = {"ops": {kind: {"config": {"file": str(file)}}}} if file else None
    return materialize(
        selected,
        partition_key=tenant,
        instance=instance,
        resources={"warehouse": WarehouseResource(database_url=platform.writer_url), "drops": drops},
        run_config=run_config,
        raise_on_error=False,
    )


# --- the demo tenant ------------------------------------------------------------------------------


def test_thrillring_news_is_merged_from_three_feeds(platform, dagster_instance, materialized):
    rows = _query(
        platform,
        "thrillring",
        """SELECT title, url, source, sources, summary, published_inferred, guid, tags
             FROM core.gaming_news_items""",
    )
    # 13 + 10 + 9 items: a sticky post repeated (guid), a partner re-post (canonical link), two
    # stories with the same title within 48 h (title) fold into 28 stories
    assert len(rows) == 28
    by_title = {r[0]: r for r in rows}
    vitality = by_title["Team Vitality win IEM Chengdu 2026 after reverse sweep against MOUZ!"]
    assert set(vitality[3]) == {"Dot Esports", "Esports Insider"}
    blast = by_title["BLAST Premier World Final 2026 groups drawn"]
    assert set(blast[3]) == {"Dot Esports", "HLTV"}
    # the same title a week apart is two stories
    assert sum(1 for r in rows if r[0] == "Esports Insider Weekly Roundup") == 2
    assert all("utm_" not in (r[1] or "") and "ref=" not in (r[1] or "") for r in rows)
    assert all(r[4] is None or ("<" not in r[4] and len(r[4]) <= 500) for r in rows)
    undated = [r for r in rows if r[5]]
    assert [r[0] for r in undated] == ["Interview: the organisers keeping grassroots esports alive"]
    assert any("CS2" in r[7] for r in rows)

    raw = _query(
        platform,
        "thrillring",
        "SELECT feed_name, status, count(*) FROM raw.gaming_feed_responses GROUP BY 1, 2",
    )
    counts = {(name, status): n for name, status, n in raw}
    assert counts[("HLTV", 429)] >= 1 and counts[("HLTV", 200)] >= 1  # the 429 was retried, and kept
    state = dict(_query(platform, "thrillring", "SELECT feed_name, etag FROM core.gaming_feed_state"))
    assert state["Dot Esports"] == '"a9f1c3d2e7b84f05"'  # validators kept for the next conditional GET

    # the session's first refresh (the demo test may have refreshed it since)
    meta = _metadata(dagster_instance, "esports_news", "thrillring", first=True)
    assert meta["feeds_ok"] == 3 and meta["feeds_failed"] == 0 and meta["http_calls"] == 4
    assert meta["duplicates_by_rule"] == {"guid": 1, "url": 1, "title": 2}
    assert meta["items_parsed"] == 32 and meta["items_new"] == 28 and meta["duplicates_folded"] == 4


def test_thrillring_exports_were_loaded_once_and_filed_away(platform, materialized):
    players = _query(
        platform, "thrillring", "SELECT count(*), count(DISTINCT source_file) FROM core.gaming_players"
    )
    assert players[0] == (240, 2)  # 210 in October, 30 new in November (45 updated)
    tournaments = _query(
        platform, "thrillring", "SELECT status, count(*) FROM core.gaming_tournaments GROUP BY 1"
    )
    assert sum(n for _, n in tournaments) == 18
    assert dict(tournaments)["completed"] == 13
    entries = _query(platform, "thrillring", "SELECT count(*) FROM core.gaming_tournament_entries")[0][0]
    assert entries == 146 + 129  # the late registrations of the November JSON included
    late = _query(
        platform,
        "thrillring",
        "SELECT count(*) FROM core.gaming_tournament_entries WHERE tournament_id = 'TR-2026-0109'",
    )[0][0]
    assert late == 12 + 6
    updated = _query(
        platform,
        "thrillring",
        "SELECT count(*) FROM core.gaming_players WHERE source_file = 'players_2026-11-24.json'",
    )[0][0]
    assert updated == 75
    ledger = _query(
        platform, "thrillring", "SELECT kind, file_name, records FROM core.gaming_file_loads ORDER BY 2"
    )
    assert [(k, n) for k, n, _ in ledger] == [
        ("players", "players_2026-10-01.csv"),
        ("players", "players_2026-11-24.json"),
        ("tournaments", "tournaments_2026-10.csv"),
        ("tournaments", "tournaments_2026-11.json"),
    ]
    drops_dir = platform.settings.drops_dir / "thrillring"
    assert not [p for p in (drops_dir / "players").iterdir()] and not list(
        (drops_dir / "tournaments").iterdir()
    )
    assert sorted(p.name for p in (drops_dir / "processed" / "tournaments").iterdir()) == [
        "tournaments_2026-10.csv",
        "tournaments_2026-11.json",
    ]


# --- news: failing feeds, rolling windows, reparse ------------------------------------------------


def test_failing_feeds_are_reported_and_history_accumulates(platform, dagster_instance, edge):
    _set_feeds(platform, edge, [GOOD_FEEDS[0], *BAD_FEEDS])
    result = _news(platform, dagster_instance, edge)
    assert result.success
    meta = _metadata(dagster_instance, "esports_news", edge)
    assert meta["feeds_ok"] == 1 and meta["feeds_failed"] == 4
    failed = meta["failed_feeds"]
    assert "Broken: malformed XML (<unknown>:2:" in failed
    assert "an HTML page instead of a feed ('Just a moment...')" in failed
    assert "HTTP 429 (gave up after 2 attempts" in failed
    assert "HTTP 404: the feed is gone" in failed
    state = {
        r[0]: r[1:]
        for r in _query(
            platform,
            edge,
            "SELECT feed_name, last_status, consecutive_failures, last_error FROM core.gaming_feed_state",
        )
    }
    assert state["Dot Esports"] == (200, 0, None)
    assert state["Rate limited"][0] == 429 and state["Rate limited"][1] == 1
    raw = dict(_query(platform, edge, "SELECT feed_name, count(*) FROM raw.gaming_feed_responses GROUP BY 1"))
    assert raw["Rate limited"] == 2 and raw["Broken"] == 1  # every answer kept as evidence
    first = dict(_query(platform, edge, "SELECT item_key, first_seen_at FROM core.gaming_news_items"))
    assert len(first) == 12

    # A day later the feed's window has moved on: five new posts, five old ones gone from it.
    _set_feeds(platform, edge, [GOOD_FEEDS[0]])
    assert _news(platform, dagster_instance, edge, fixtures_dir=FIXTURES / "esports_later").success
    after = dict(_query(platform, edge, "SELECT item_key, first_seen_at FROM core.gaming_news_items"))
    assert len(after) == 17 and set(first) <= set(after)
    assert all(after[key] == seen for key, seen in first.items())  # first sighting kept
    again = _query(
        platform, edge, "SELECT count(*) FROM core.gaming_feed_state WHERE consecutive_failures = 0"
    )
    assert again[0][0] >= 1

    # Every feed failing fails the run clearly; the stored items stay.
    _set_feeds(platform, edge, BAD_FEEDS[:2])
    result = _news(platform, dagster_instance, edge)
    assert not result.success
    assert "all 2 news feeds failed" in _failure_message(result)
    assert len(_query(platform, edge, "SELECT 1 FROM core.gaming_news_items")) == 17


def test_reparse_rebuilds_items_from_raw_answers_without_fetching(platform, dagster_instance, edge):
    _set_feeds(platform, edge, GOOD_FEEDS[2:])
    assert _news(platform, dagster_instance, edge).success
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, edge)  # what a buggy parser might have left behind
        conn.execute(
            "UPDATE core.gaming_news_items SET title = 'garbled', tags = '{}'"
            " WHERE source = 'Esports Insider'"
        )
    raw_before = _query(platform, edge, "SELECT count(*) FROM raw.gaming_feed_responses")[0][0]
    assert _news(platform, dagster_instance, edge, config={"reparse": True}).success
    titles = [
        r[0]
        for r in _query(
            platform, edge, "SELECT title FROM core.gaming_news_items WHERE source = 'Esports Insider'"
        )
    ]
    assert titles and "garbled" not in titles
    assert _query(platform, edge, "SELECT count(*) FROM raw.gaming_feed_responses")[0][0] == raw_before
    assert _metadata(dagster_instance, "esports_news", edge)["http_calls"] == 0


# --- file drops -----------------------------------------------------------------------------------


def _tick(instance, platform, drops, cursor=None):
    context = build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"warehouse": WarehouseResource(database_url=platform.writer_url), "drops": drops},
    )
    result = gaming_file_drops_sensor(context)
    return result.run_requests or [], result.cursor


def _load_players(platform, instance, tenant, drops):
    for source in sorted((BUNDLED / "players").iterdir()):
        _drop(drops, tenant, "players", source)
    assert _drops_run(platform, instance, tenant, drops, "players").success


def test_sensor_launches_each_file_exactly_once(platform, dagster_instance, edge, drops):
    players_csv = _drop(drops, edge, "players", BUNDLED / "players" / "players_2026-10-01.csv")
    # still being written: too recent, a dotfile, a .part download
    writing = _drop(drops, edge, "players", BUNDLED / "players" / "players_2026-11-24.json", age_s=0)
    _drop(drops, edge, "players", players_csv, name=".players_2026-10-02.csv")
    _drop(drops, edge, "players", players_csv, name="players_2026-10-03.csv.part")
    tournaments_csv = _drop(drops, edge, "tournaments", BUNDLED / "tournaments" / "tournaments_2026-10.csv")

    requests, cursor = _tick(dagster_instance, platform, drops)
    sha = file_sha256(players_csv)
    assert [(r.partition_key, r.run_key) for r in requests] == [(edge, f"{edge}:players:{sha}")]
    request = requests[0]
    assert request.asset_selection == [AssetKey("players")]
    assert request.run_config == {"ops": {"players": {"config": {"file": str(players_csv)}}}}

    # second tick: nothing new (the tournaments file waits for the pending players file)
    assert _tick(dagster_instance, platform, drops, cursor)[0] == []
    writing.unlink()  # it would be picked up once settled, seconds from now

    result = _drops_run(platform, dagster_instance, edge, drops, "players", file=players_csv)
    assert result.success and not players_csv.exists()
    requests, cursor = _tick(dagster_instance, platform, drops, cursor)
    assert [r.run_key for r in requests] == [f"{edge}:tournaments:{file_sha256(tournaments_csv)}"]
    assert _drops_run(platform, dagster_instance, edge, drops, "tournaments", file=tournaments_csv).success

    # the same content dropped again under another name: filed away, no run, nothing loaded twice
    ledger_before = _query(platform, edge, "SELECT count(*) FROM core.gaming_file_loads")[0][0]
    copy = _drop(
        drops, edge, "players", BUNDLED / "players" / "players_2026-10-01.csv", name="players_again.csv"
    )
    requests, cursor = _tick(dagster_instance, platform, drops, cursor)
    assert requests == [] and not copy.exists()
    note = drops.folder(edge, "processed", "players") / "players_again.csv.note.txt"
    assert "same content" in note.read_text() and "players_2026-10-01.csv" in note.read_text()
    assert _query(platform, edge, "SELECT count(*) FROM core.gaming_file_loads")[0][0] == ledger_before
    # a run asked to load identical content anyway (a stale request) loads nothing either
    again = _drop(
        drops, edge, "players", BUNDLED / "players" / "players_2026-10-01.csv", name="players_third.csv"
    )
    assert _drops_run(platform, dagster_instance, edge, drops, "players", file=again).success
    assert _metadata(dagster_instance, "players", edge)["files_duplicate"] == 1
    assert _query(platform, edge, "SELECT count(*) FROM core.gaming_file_loads")[0][0] == ledger_before

    # only tenants with gaming partitions are watched
    _drop(drops, "coreldove", "players", BUNDLED / "players" / "players_2026-10-01.csv")
    assert _tick(dagster_instance, platform, drops, cursor)[0] == []


COUNTS = """SELECT (SELECT count(*) FROM core.gaming_tournaments),
                   (SELECT count(*) FROM core.gaming_tournament_entries),
                   (SELECT count(*) FROM core.gaming_file_loads)"""


def test_a_malformed_export_is_quarantined_with_its_reason_and_nothing_is_loaded(
    platform, dagster_instance, edge, drops
):
    _load_players(platform, dagster_instance, edge, drops)
    before = _query(platform, edge, COUNTS)[0]
    bad = _drop(drops, edge, "tournaments", MALFORMED)
    result = _drops_run(platform, dagster_instance, edge, drops, "tournaments")
    assert not result.success
    message = _failure_message(result)
    assert "tournaments_2026-11-22.csv" in message and "line 3" in message and "end_at" in message
    quarantined = drops.folder(edge, "quarantine", "tournaments") / bad.name
    assert quarantined.exists() and not bad.exists()
    reason = (quarantined.parent / f"{bad.name}.reason.txt").read_text()
    for expected in [
        "line 3 (tournament_id TR-2026-0301): end_at 2026-11-21 22:00 is before start_at",
        "placement 0 is not positive",
        "start_at: '22/11/2026 18:00' is not an ISO 8601 date-time",
        "currency 'USDT' is not a known ISO 4217 code",
        "prize_pool -50 is out of range",
        "player TRP-99999 is not a known player",
        "name 'A different name' differs from the tournament's first row",
    ]:
        assert expected in reason, expected
    after = _query(platform, edge, COUNTS)[0]
    assert after == before  # not even the file's valid first row


KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
from assets import esports
from orchestration.file_drops import DropFolderResource
from orchestration.warehouse import WarehouseResource

where, root, path = sys.argv[1], sys.argv[2], Path(sys.argv[3])
drops = DropFolderResource(root=root, settle_s=0)
die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
if where == "mid-transaction":
    real = esports.upsert_rows
    def upsert(conn, tenant_id, table, rows, **kwargs):
        real(conn, tenant_id, table, rows, **kwargs)
        if table == esports.ENTRIES_TABLE:  # tournaments written, entries written, ledger not yet
            die()
    esports.upsert_rows = upsert
else:
    DropFolderResource.archive = die
esports.process_file(WarehouseResource(database_url=os.environ["BIZOSAAS_WRITER_URL"]), drops,
                     sys.argv[4], "tournaments", path, "killed-run")
"""


def test_a_run_killed_midway_loses_nothing_and_loads_once(platform, dagster_instance, edge, drops):
    _load_players(platform, dagster_instance, edge, drops)
    count_sql = """SELECT (SELECT count(*) FROM core.gaming_tournament_entries),
                          (SELECT count(*) FROM core.gaming_file_loads WHERE kind = 'tournaments')"""
    before = _query(platform, edge, count_sql)[0]
    path = _drop(
        drops, edge, "tournaments", BUNDLED / "tournaments" / "tournaments_2026-11.json", name="nov.json"
    )
    # the November file's late entries point at a tournament of the October file: load it first
    _drop(drops, edge, "tournaments", BUNDLED / "tournaments" / "tournaments_2026-10.csv", age_s=120)
    october = drops.inbox(edge, "tournaments") / "tournaments_2026-10.csv"
    assert _drops_run(platform, dagster_instance, edge, drops, "tournaments", file=october).success
    before = _query(platform, edge, count_sql)[0]

    def killed(where):
        proc = subprocess.run(
            [sys.executable, "-c", KILL_SCRIPT, where, drops.root, str(path), edge],
            cwd=PROJECT_ROOT,
            env=os.environ.copy(),
            capture_output=True,
            timeout=300,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]

    killed("mid-transaction")
    assert _query(platform, edge, count_sql)[0] == before  # rolled back with the connection
    assert path.exists()

    killed("after-commit")
    entries, loads = _query(platform, edge, count_sql)[0]
    assert loads == before[1] + 1 and entries > before[0]  # committed, but the file never moved
    assert path.exists()

    assert _drops_run(platform, dagster_instance, edge, drops, "tournaments").success
    assert not path.exists() and (drops.folder(edge, "processed", "tournaments") / "nov.json").exists()
    assert _metadata(dagster_instance, "tournaments", edge)["files_loaded_before"] == 1
    assert _query(platform, edge, count_sql)[0] == (entries, loads)  # not loaded a second time


def test_checks_catch_bad_rows_written_around_the_loader(platform, dagster_instance, edge, drops):
    _load_players(platform, dagster_instance, edge, drops)
    _drop(drops, edge, "tournaments", BUNDLED / "tournaments" / "tournaments_2026-10.csv")
    assert _drops_run(platform, dagster_instance, edge, drops, "tournaments").success
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, edge)
        conn.execute(
            "UPDATE core.gaming_tournaments SET currency = 'XYZ' WHERE tournament_id = 'TR-2026-0101'"
        )
    result = _drops_run(platform, dagster_instance, edge, drops, "tournaments")
    checks = {
        e.event_specific_data.check_name: e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert checks["tournament_entries_valid"].passed
    assert not checks["tournaments_valid"].passed
    failed = checks["tournaments_valid"].metadata["failed_expectations"].value
    assert any("currency" in name for name in failed)
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, edge)
        conn.execute(
            "UPDATE core.gaming_tournaments SET currency = 'GBP' WHERE tournament_id = 'TR-2026-0101'"
        )
    repaired = _drops_run(platform, dagster_instance, edge, drops, "tournaments")
    evaluations = [e for e in repaired.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert len(evaluations) == 2 and all(e.event_specific_data.passed for e in evaluations)


def test_tenants_never_see_each_others_community_data(platform, materialized, edge):
    for table in ("core.gaming_news_items", "core.gaming_players", "core.gaming_tournaments"):
        assert (
            _query(platform, edge, f"SELECT count(*) FROM {table} WHERE tenant_id = 'thrillring'")[0][0] == 0
        )
    with psycopg.connect(platform.serving_url) as conn:
        for table in ("core.gaming_news_items", "core.gaming_players", "core.gaming_tournament_entries"):
            with conn.transaction():
                set_tenant(conn, "coreldove")
                assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
            with conn.transaction():
                set_tenant(conn, "thrillring")
                ids = {r[0] for r in conn.execute(f"SELECT DISTINCT tenant_id FROM {table}")}
                assert ids == {"thrillring"}
        for private in ("core.gaming_file_loads", "raw.gaming_feed_responses", "core.gaming_feed_state"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                set_tenant(conn, "thrillring")
                conn.execute(f"SELECT count(*) FROM {private}")
    # a write for another tenant is refused by the database, not by the loader
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        psycopg.connect(platform.writer_url) as conn,
        conn.transaction(),
    ):
        set_tenant(conn, edge)
        conn.execute(
            """INSERT INTO core.gaming_file_loads (tenant_id, sha256, kind, file_name, file_format,
                                                   size_bytes, records)
               VALUES ('thrillring', repeat('a', 64), 'players', 'x.csv', 'csv', 1, 1)"""
        )


def test_bad_feed_settings_fail_with_the_key_to_fix(platform, dagster_instance, edge):
    _set_feeds(platform, edge, [{"name": "No URL"}])
    result = _news(platform, dagster_instance, edge)
    assert not result.success
    assert (
        "settings.gaming.news_feeds[0] must be an object with a name and an http(s) url"
        in _failure_message(result)
    )
    _set_feeds(platform, edge, [])
    assert _news(platform, dagster_instance, edge).success


def test_the_file_path_must_be_in_the_tenants_inbox(platform, dagster_instance, edge, drops, tmp_path):
    outside = tmp_path / "players.csv"
    shutil.copyfile(BUNDLED / "players" / "players_2026-10-01.csv", outside)
    loads = _query(platform, edge, "SELECT count(*) FROM core.gaming_file_loads")[0][0]
    result = _drops_run(platform, dagster_instance, edge, drops, "players", file=outside)
    assert not result.success and "is not in esports_edge's players inbox" in _failure_message(result)
    assert outside.exists()  # neither loaded nor moved
    assert _query(platform, edge, "SELECT count(*) FROM core.gaming_file_loads")[0][0] == loads
    # the inbox itself still loads (and its check runs again)
    assert _drops_run(platform, dagster_instance, edge, drops, "players").success


def test_schedules_request_every_gaming_tenant_once_per_slot(platform, dagster_instance, materialized, edge):
    from datetime import UTC, datetime

    from dagster import build_schedule_context

    from orchestration.definitions import defs

    gaming = set(dagster_instance.get_dynamic_partitions(esports.gaming_partitions.name))
    assert {"thrillring", edge} <= gaming and "coreldove" not in gaming
    at = datetime(2026, 11, 25, 10, 17, tzinfo=UTC)
    for schedule, slot in [
        (esports.esports_news_hourly, "2026-11-25T10"),
        (esports.gaming_drops_daily_sweep, "sweep:2026-11-25"),
    ]:
        context = build_schedule_context(
            instance=dagster_instance, scheduled_execution_time=at, repository_def=defs.get_repository_def()
        )
        requests = list(schedule.evaluate_tick(context).run_requests)
        assert {r.partition_key for r in requests} == gaming
        assert all(r.run_key == f"{r.partition_key}:{slot}" for r in requests)
