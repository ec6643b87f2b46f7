"""The game catalogue end to end on the real Postgres and Dagster instance, replaying the
recorded IGDB, Twitch, Steam and OpenCritic answers in fixtures/ through the real clients.

ThrillRing (50 featured games) is materialized by the session's `materialized` fixture with the
shipped resources; the edge cases run on a tenant of their own (`gaming_edge`: 8 games, 4 per
IGDB page, Steam country gb) whose recordings sit in fixtures/*/edge/."""

import json
import shutil
from datetime import date, timedelta
from decimal import Decimal

import psycopg
import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    MultiPartitionKey,
    SkipReason,
    materialize,
)
from psycopg.types.json import Jsonb

from assets import gaming
from orchestration import tenants
from orchestration.api_limits import ApiLedger
from orchestration.gaming_sources import (
    IgdbResource,
    OpenCriticResource,
    SteamStoreResource,
    clear_token_cache,
)
from orchestration.settings import PROJECT_ROOT
from orchestration.warehouse import WarehouseResource, set_tenant

CATALOGUE, PRICES = AssetKey("game_catalogue"), AssetKey("game_price_snapshots")
EDGE_TENANT = "gaming_edge"
LATEST_DAY = "2026-11-24"  # replay mode's last complete day
NOT_ON_STEAM = {
    "The Last of Us",
    "Minecraft: Java Edition",
    "Fortnite",
    "The Legend of Zelda: Breath of the Wild",
    "Super Mario Odyssey",
    "Rocket League",
    "Valorant",
    "League of Legends",
}
FREE = {"Counter-Strike 2", "Dota 2", "Apex Legends", "Destiny 2", "Warframe", "Overwatch 2"}


def _query(platform, tenant, sql, params=()):
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, tenant)
        return conn.execute(sql, params).fetchall()


def _metadata(instance, key, partition, first=False):
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1, ascending=first
    ).records
    return {k: v.value for k, v in records[0].event_log_entry.asset_materialization.metadata.items()}


def _ledger(platform):
    return ApiLedger(WarehouseResource(database_url=platform.writer_url))


def _resources(platform, fixtures=None, *, searches=100, requests=200, **overrides):
    """Resources for the edge tenant: no spacing (the spacing has tests of its own), tiny
    backoffs, 4 games per IGDB page, and OpenCritic budgets with room left today."""
    ledger = _ledger(platform)
    common = {"backoff_s": 0.01, **({"fixtures_dir": str(fixtures)} if fixtures else {})}
    return {
        "warehouse": WarehouseResource(database_url=platform.writer_url),
        "igdb": overrides.get("igdb") or IgdbResource(page_size=4, min_interval_s=0, **common),
        "steam": overrides.get("steam")
        or SteamStoreResource(min_interval_s=0, throttle_pause_s=0.01, **common),
        "opencritic": overrides.get("opencritic")
        or OpenCriticResource(
            search_daily_limit=ledger.used_today("opencritic_search") + searches,
            daily_limit=ledger.used_today("opencritic") + requests,
            **common,
        ),
    }


def _catalogue(platform, instance, tenant=EDGE_TENANT, config=None, **kwargs):
    return materialize(
        [gaming.game_catalogue, gaming.game_catalogue_valid],
        partition_key=tenant,
        instance=instance,
        resources=_resources(platform, **kwargs),
        run_config={"ops": {"game_catalogue": {"config": config}}} if config else None,
        raise_on_error=False,
    )


def _prices(platform, instance, day, tenant=EDGE_TENANT, **kwargs):
    resources = _resources(platform, **kwargs)
    return materialize(
        [gaming.game_price_snapshots, gaming.game_price_snapshots_valid],
        partition_key=MultiPartitionKey({"tenant": tenant, "date": day}),
        instance=instance,
        resources={"warehouse": resources["warehouse"], "steam": resources["steam"]},
        raise_on_error=False,
    )


def _failure(result) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.event_specific_data.error.message


def _set_gaming(platform, tenant, **settings):
    with platform.admin() as conn:
        conn.execute(
            """UPDATE core.tenants SET settings = jsonb_set(settings, '{gaming}', %s, true)
                WHERE tenant_id = %s""",
            (Jsonb(settings), tenant),
        )


@pytest.fixture(scope="module")
def edge_tenant(platform, dagster_instance: DagsterInstance):
    with platform.admin() as conn:
        conn.execute(
            """INSERT INTO core.tenants (tenant_id, display_name, kind, parent_tenant_id, tier, domains)
               VALUES (%s, 'Gaming edge cases', 'client', 'bizoholic', 'starter', '{gaming}')
               ON CONFLICT (tenant_id) DO NOTHING""",
            (EDGE_TENANT,),
        )
    _set_gaming(platform, EDGE_TENANT, featured_games=8, steam_country="gb")
    dagster_instance.add_dynamic_partitions(gaming.gaming_partitions.name, [EDGE_TENANT])
    yield EDGE_TENANT
    # Leave the registry as the seed made it, for the tests that compare against it.
    with platform.admin() as conn:
        tenants.offboard(conn, EDGE_TENANT)
    dagster_instance.delete_dynamic_partition(gaming.gaming_partitions.name, EDGE_TENANT)


@pytest.fixture
def edge_settings(platform, edge_tenant):
    _set_gaming(platform, edge_tenant, featured_games=8, steam_country="gb")
    yield edge_tenant
    _set_gaming(platform, edge_tenant, featured_games=8, steam_country="gb")


# --- ThrillRing, as the demo materializes it -----------------------------------------------------


def test_thrillring_catalogue_fuses_igdb_steam_and_opencritic(platform, materialized):
    rows = _query(
        platform,
        "thrillring",
        """SELECT name, popularity_rank, steam_appid, steam_status, is_free, currency, initial_price,
                  final_price, discount_percent, required_age, review_score, review_score_desc,
                  opencritic_status, opencritic_id, critic_score, opencritic_match_confidence,
                  opencritic_match_name, genres, platforms, flags, release_date
             FROM core.gaming_catalogue ORDER BY popularity_rank""",
    )
    by_name = {row[0]: row for row in rows}
    assert len(rows) == 50 and [row[1] for row in rows] == list(range(1, 51))
    assert {n for n, row in by_name.items() if row[3] == "not_on_steam"} == NOT_ON_STEAM
    assert all(by_name[n][2] is None and "no_steam_id" in by_name[n][19] for n in NOT_ON_STEAM)
    # delisted apps answer success:false: kept in the catalogue, without Steam data, flagged
    unavailable = {n for n, row in by_name.items() if row[3] == "unavailable"}
    assert unavailable == {"Forza Horizon 4", "The Crew"}
    assert by_name["Forza Horizon 4"][2] == 1293830 and by_name["Forza Horizon 4"][7] is None
    assert "steam_unavailable" in by_name["The Crew"][19]
    # free games have no price_overview: free, no price
    assert {n for n, row in by_name.items() if row[4]} == FREE
    assert all(by_name[n][7] is None and by_name[n][5] is None for n in FREE)
    # prices in major units, from minor units
    witcher = by_name["The Witcher 3: Wild Hunt"]
    assert witcher[5:9] == ("USD", Decimal("39.99"), Decimal("7.99"), 80)
    assert by_name["Grand Theft Auto V"][9] == 18  # required_age arrived as the string "18"
    assert witcher[10:12] == (9, "Overwhelmingly Positive")
    assert "Role-playing (RPG)" in witcher[17] and "PC (Microsoft Windows)" in witcher[18]
    assert witcher[20] == date(2015, 5, 19)
    # legacy `category` external games carry Steam ids too
    assert by_name["Portal 2"][2] == 620 and by_name["Dota 2"][2] == 570

    # OpenCritic: the free plan's 25 searches went to the 25 most popular games
    searched = [row for row in rows if row[1] <= 25]
    assert all(row[12] in ("matched", "no_match") for row in searched)
    assert all(row[12] == "not_searched" and "opencritic_budget_spent" in row[19] for row in rows[25:])
    assert by_name["Elden Ring"][12:15] == ("matched", 12090, Decimal("95.10"))
    assert by_name["Elden Ring"][15] == Decimal("1.000")
    # -1 means "not enough reviews": matched, but no score
    assert by_name["Counter-Strike 2"][12:15] == ("matched", 15580, None)
    # a name OpenCritic does not know, and near misses below the threshold, are no-matches
    assert by_name["Dota 2"][12:14] == ("no_match", None) and by_name["Dota 2"][16] is None
    last_of_us = by_name["The Last of Us"]
    assert last_of_us[12:14] == ("no_match", None) and last_of_us[16] == "The Last of Us Part I"
    assert Decimal("0.5") < last_of_us[15] < Decimal("0.75")
    # a different spelling of the same game is matched with a confidence below 1
    god_of_war = by_name["God of War"]
    assert god_of_war[12] == "matched" and god_of_war[16] == "God of War (2018)"
    assert Decimal("0.75") <= god_of_war[15] < 1


def test_thrillring_catalogue_metadata_counts_calls_per_source(dagster_instance, materialized):
    meta = _metadata(dagster_instance, CATALOGUE, "thrillring", first=True)
    assert meta["games"] == 50 and meta["games_new"] == 50
    assert meta["api_calls_igdb"] == 1 and meta["api_calls_twitch"] <= 1
    # 42 appdetails + 40 review summaries (not for success:false apps) + one 429 retried
    assert meta["api_calls_steam"] == 83
    assert meta["api_calls_opencritic"] == 25 + 20  # 25 searches, 20 of them matched: 20 details
    assert meta["opencritic_searches"] == 25 and meta["opencritic_skipped_budget"] == 25
    assert meta["opencritic_matched"] == 20 and meta["opencritic_no_match"] == 5
    assert meta["steam_ok"] == 40 and meta["steam_unavailable"] == 2 and meta["not_on_steam"] == 8
    assert meta["share_on_steam"] == 0.8 and meta["free_games"] == 6
    assert meta["requests_per_game"] == pytest.approx((1 + meta["api_calls_twitch"] + 83 + 45) / 50, abs=1e-3)
    assert meta["opencritic_plan_requests_remaining"].isdigit()
    assert "Elden Ring" in meta["preview"]


def test_thrillring_price_snapshot_is_one_batched_request(platform, dagster_instance, materialized):
    rows = _query(
        platform,
        "thrillring",
        """SELECT g.name, s.currency, s.initial_price, s.final_price, s.discount_percent, s.is_free,
                  s.available, s.snapshot_date
             FROM core.gaming_price_snapshots s JOIN core.gaming_catalogue g USING (tenant_id, igdb_id)
            WHERE s.snapshot_date = %s""",
        (date.fromisoformat(LATEST_DAY),),
    )
    # (`bizosaas demo` in the e2e tests builds earlier days too; this is the session's day.)
    by_name = {row[0]: row for row in rows}
    assert len(rows) == 42 and len(by_name) == 42
    assert by_name["The Witcher 3: Wild Hunt"][1:7] == (
        "USD",
        Decimal("39.99"),
        Decimal("7.99"),
        80,
        False,
        True,
    )
    assert {n for n, row in by_name.items() if row[5]} == FREE  # `data: []` and free in the catalogue
    assert {n for n, row in by_name.items() if not row[6]} == {"Forza Horizon 4", "The Crew"}
    partition = MultiPartitionKey({"tenant": "thrillring", "date": LATEST_DAY})
    meta = _metadata(dagster_instance, PRICES, partition, first=True)
    assert meta["api_calls_steam"] == 1 and meta["dagster/row_count"] == 42
    assert meta["games_priced"] == 34 and meta["unavailable"] == 2 and meta["free_games"] == 6
    assert meta["previous_day_rows"] == 0 and meta["price_changes"] == 0


def test_checks_passed_for_thrillring(dagster_instance, materialized):
    for key, check in [(CATALOGUE, "game_catalogue_valid"), (PRICES, "game_price_snapshots_valid")]:
        records = dagster_instance.event_log_storage.get_asset_check_execution_history(
            AssetCheckKey(key, check), limit=5
        )
        assert records and all(r.status.value == "SUCCEEDED" for r in records), check


# --- edge cases -------------------------------------------------------------------------------------


def test_token_expiry_and_429s_are_handled_and_every_answer_is_kept(
    platform, dagster_instance, edge_settings
):
    clear_token_cache()
    result = _catalogue(platform, dagster_instance)
    assert result.success
    raw = _query(
        platform,
        edge_settings,
        """SELECT source, status, igdb_id, body FROM raw.gaming_api_responses
            WHERE dagster_run_id = %s ORDER BY response_id""",
        (result.run_id,),
    )
    sequence = [(source, status) for source, status, _, _ in raw]
    # a token, IGDB refuses it (expired), a fresh token, the page; then a 429 and the next page
    assert sequence[:6] == [("twitch", 200), ("igdb", 401), ("twitch", 200), ("igdb", 200), ("igdb", 429),
                            ("igdb", 200)]  # fmt: skip
    tokens = [json.loads(body) for source, _, _, body in raw if source == "twitch"]
    assert all(t["access_token"] == "[redacted]" and t["expires_in"] > 0 for t in tokens)
    # Steam's 429 on Elden Ring's appdetails was waited out and retried
    elden = [(s, st) for s, st, igdb_id, _ in raw if igdb_id == 119133 and s == "steam"]
    assert elden[:2] == [("steam", 429), ("steam", 200)]

    rows = dict(
        _query(platform, edge_settings, "SELECT name, steam_status FROM core.gaming_catalogue ORDER BY 1")
    )
    assert len(rows) == 8 and rows["Forza Horizon 4"] == "unavailable"
    assert rows["The Legend of Zelda: Breath of the Wild"] == "not_on_steam"
    prices = dict(
        _query(
            platform,
            edge_settings,
            "SELECT name, currency FROM core.gaming_catalogue WHERE currency IS NOT NULL",
        )
    )
    assert set(prices.values()) == {"GBP"} and "Counter-Strike 2" not in prices
    meta = _metadata(dagster_instance, CATALOGUE, edge_settings)
    assert meta["api_calls_twitch"] == 2 and meta["api_calls_igdb"] == 4


def test_an_unchanged_refresh_changes_no_game(platform, dagster_instance, edge_settings):
    assert _catalogue(platform, dagster_instance).success
    before = _query(
        platform, edge_settings, "SELECT igdb_id, content_hash, changed_at FROM core.gaming_catalogue"
    )
    assert _catalogue(platform, dagster_instance).success
    after = _query(
        platform, edge_settings, "SELECT igdb_id, content_hash, changed_at FROM core.gaming_catalogue"
    )
    assert sorted(after) == sorted(before)
    meta = _metadata(dagster_instance, CATALOGUE, edge_settings)
    assert meta["games_changed"] == 0 and meta["games_new"] == 0 and meta["games_dropped"] == 0
    # known OpenCritic ids are read directly; recent no-matches are not searched again
    assert meta["opencritic_searches"] == 0 and meta["opencritic_details"] == 6
    assert meta["opencritic_recent_no_match_kept"] == 2  # Portal 2 and Dota 2


@pytest.mark.parametrize(
    ("featured", "fragment", "recorded"),
    [
        (9, "malformed response body from igdb (HTTP 200)", (200, '[{"id": 1203, "name": "Hades II"')),
        (
            10,
            "IGDB rejected the query (HTTP 400 Invalid Field: external_games.category",
            (400, "Invalid Field"),
        ),
    ],
)
def test_a_bad_igdb_answer_keeps_the_previous_catalogue(
    platform, dagster_instance, edge_settings, featured, fragment, recorded
):
    assert _catalogue(platform, dagster_instance).success
    before = _query(
        platform, edge_settings, "SELECT igdb_id, content_hash, refreshed_at FROM core.gaming_catalogue"
    )
    _set_gaming(platform, edge_settings, featured_games=featured, steam_country="gb")
    result = _catalogue(platform, dagster_instance)
    assert not result.success
    message = _failure(result)
    assert "was not refreshed (the previous one is kept)" in message and fragment in message
    after = _query(
        platform, edge_settings, "SELECT igdb_id, content_hash, refreshed_at FROM core.gaming_catalogue"
    )
    assert sorted(after) == sorted(before)
    # the bad answer itself is kept, with every page fetched before it
    raw = _query(
        platform,
        edge_settings,
        "SELECT source, status, body FROM raw.gaming_api_responses WHERE dagster_run_id = %s",
        (result.run_id,),
    )
    assert any(
        status == recorded[0] and recorded[1] in body for source, status, body in raw if source == "igdb"
    )
    assert sum(1 for source, status, _ in raw if source == "igdb" and status == 200) >= 2


def test_a_steam_block_fails_the_run_without_touching_the_catalogue(
    platform, dagster_instance, edge_settings, tmp_path
):
    assert _catalogue(platform, dagster_instance).success
    before = _query(platform, edge_settings, "SELECT igdb_id, content_hash FROM core.gaming_catalogue")
    fixtures = tmp_path / "fixtures"
    shutil.copytree(PROJECT_ROOT / "fixtures", fixtures)
    blocked = fixtures / "steam" / "edge" / "appdetails_1293830_gb.json"
    doc = json.loads(blocked.read_text())
    doc["responses"] = [{"status": 403, "text": "<html><body>Access Denied</body></html>"}]
    blocked.write_text(json.dumps(doc))
    result = _catalogue(platform, dagster_instance, fixtures=fixtures)
    assert not result.success
    assert "Steam blocked this IP (HTTP 403)" in _failure(result)
    assert sorted(
        _query(platform, edge_settings, "SELECT igdb_id, content_hash FROM core.gaming_catalogue")
    ) == (sorted(before))


def test_opencritic_out_of_budget_or_refusing_keeps_previous_critic_data(
    platform, dagster_instance, edge_settings, tmp_path
):
    assert _catalogue(platform, dagster_instance).success
    critics = "SELECT name, opencritic_status, opencritic_id, critic_score FROM core.gaming_catalogue"
    before = sorted(_query(platform, edge_settings, critics))
    ledger = _ledger(platform)
    used = ledger.used_today("opencritic")
    # the daily request budget is spent: no call, previous critic data kept, not a failure
    result = _catalogue(platform, dagster_instance, requests=0)
    assert result.success
    assert sorted(_query(platform, edge_settings, critics)) == before
    meta = _metadata(dagster_instance, CATALOGUE, edge_settings)
    assert meta["api_calls_opencritic"] == 0 and meta["opencritic_skipped_budget"] >= 1
    assert "daily budget of" in meta["opencritic_note"]
    assert ledger.used_today("opencritic") == used
    flags = _query(
        platform, edge_settings, "SELECT flags FROM core.gaming_catalogue WHERE opencritic_id IS NOT NULL"
    )
    assert all("opencritic_budget_spent" in row[0] for row in flags)

    # RapidAPI refuses the key: OpenCritic goes offline for the run, nothing else changes
    fixtures = tmp_path / "fixtures"
    shutil.copytree(PROJECT_ROOT / "fixtures", fixtures)
    for path in (fixtures / "opencritic").glob("*.json"):
        doc = json.loads(path.read_text())
        doc["responses"] = [{"status": 403, "json": {"message": "You are not subscribed to this API."}}]
        path.write_text(json.dumps(doc))
    result = _catalogue(platform, dagster_instance, fixtures=fixtures)
    assert result.success
    meta = _metadata(dagster_instance, CATALOGUE, edge_settings)
    assert meta["api_calls_opencritic"] == 1  # the first refusal; no call after it
    assert "You are not subscribed to this API." in meta["opencritic_note"]
    assert "OPENCRITIC_RAPIDAPI_KEY" in meta["opencritic_note"]
    assert sorted(_query(platform, edge_settings, critics)) == before


def test_opencritic_search_budget_covers_the_most_popular_games_first(
    platform, dagster_instance, edge_settings
):
    # a new tenant's worth of games: forget the edge tenant's matches
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, edge_settings)
        conn.execute("DELETE FROM core.gaming_catalogue WHERE tenant_id = %s", (edge_settings,))
    assert _catalogue(platform, dagster_instance, searches=3).success
    rows = _query(
        platform,
        edge_settings,
        "SELECT popularity_rank, opencritic_status FROM core.gaming_catalogue ORDER BY 1",
    )
    assert [status for _, status in rows[:3]] != ["not_searched"] * 3
    assert all(status != "not_searched" for _, status in rows[:3])
    assert all(status == "not_searched" for _, status in rows[3:])
    meta = _metadata(dagster_instance, CATALOGUE, edge_settings)
    assert meta["opencritic_searches"] == 3 and meta["opencritic_skipped_budget"] == 5
    # the next day's run (a fresh budget) searches the rest; matched games keep their ids
    assert _catalogue(platform, dagster_instance).success
    assert _metadata(dagster_instance, CATALOGUE, edge_settings)["opencritic_searches"] == 5


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        (
            {"featured_games": 0, "steam_country": "gb"},
            "settings.gaming.featured_games must be a whole number",
        ),
        ({"featured_games": "lots"}, "settings.gaming.featured_games must be a whole number"),
        (
            {"featured_games": 8, "steam_country": "Britain"},
            "settings.gaming.steam_country must be a two-letter",
        ),
    ],
)
def test_bad_settings_fail_clearly(platform, dagster_instance, edge_settings, settings, fragment):
    _set_gaming(platform, edge_settings, **settings)
    result = _catalogue(platform, dagster_instance)
    assert not result.success and fragment in _failure(result)


def test_price_snapshots_compare_with_the_previous_day(platform, dagster_instance, edge_settings):
    assert _catalogue(platform, dagster_instance).success
    day, previous = date.fromisoformat(LATEST_DAY), date.fromisoformat(LATEST_DAY) - timedelta(days=1)
    result = _prices(platform, dagster_instance, previous.isoformat())
    assert result.success
    raw = _query(
        platform,
        edge_settings,
        "SELECT status FROM raw.gaming_api_responses WHERE dagster_run_id = %s ORDER BY response_id",
        (result.run_id,),
    )
    assert [r[0] for r in raw] == [429, 200]  # Steam's 429, waited out, then the batched answer
    # yesterday, Elden Ring was on sale and Hades cost more
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, edge_settings)
        conn.execute(
            """UPDATE core.gaming_price_snapshots SET discount_percent = 40, final_price = initial_price * 0.6
                WHERE snapshot_date = %s AND steam_appid = 1245620""",
            (previous,),
        )
        conn.execute(
            """UPDATE core.gaming_price_snapshots
                  SET final_price = final_price + 5, initial_price = initial_price + 5
                WHERE snapshot_date = %s AND steam_appid = 1145360""",
            (previous,),
        )
    assert _prices(platform, dagster_instance, day.isoformat()).success
    meta = _metadata(
        dagster_instance, PRICES, MultiPartitionKey({"tenant": edge_settings, "date": LATEST_DAY})
    )
    assert meta["previous_day_rows"] == 7 and meta["dagster/row_count"] == 7
    assert meta["price_changes"] == 2
    assert (
        meta["changes_price_down"] == 1
        and meta["changes_price_up"] == 1
        and meta["changes_discount_ended"] == 1
    )
    assert "Elden Ring" in meta["changes"] and "Hades" in meta["changes"]
    # each day is its own partition: yesterday's rows were not replaced by today's
    days = _query(
        platform, edge_settings, "SELECT snapshot_date, count(*) FROM core.gaming_price_snapshots GROUP BY 1"
    )
    assert dict(days) == {previous: 7, day: 7}


def test_price_snapshot_without_a_catalogue_fails_clearly(platform, dagster_instance, edge_settings):
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, edge_settings)
        conn.execute("DELETE FROM core.gaming_catalogue WHERE tenant_id = %s", (edge_settings,))
    result = _prices(platform, dagster_instance, LATEST_DAY)
    assert not result.success and "materialize game_catalogue first" in _failure(result)
    # with the catalogue back, the day's snapshot (and its check) succeed again
    assert _catalogue(platform, dagster_instance).success
    assert _prices(platform, dagster_instance, LATEST_DAY).success


def test_blocking_checks_catch_out_of_range_ratings_and_unknown_currencies(
    platform, dagster_instance, edge_settings, tmp_path
):
    fixtures = tmp_path / "fixtures"
    shutil.copytree(PROJECT_ROOT / "fixtures", fixtures)
    page = fixtures / "igdb" / "edge" / "games_page2_rate_limited.json"
    doc = json.loads(page.read_text())
    doc["responses"][-1]["json"][0]["total_rating"] = 120.5  # IGDB's scale is 0-100
    page.write_text(json.dumps(doc))
    details = fixtures / "steam" / "edge" / "appdetails_1145360_gb.json"
    doc = json.loads(details.read_text())
    doc["responses"][-1]["json"]["1145360"]["data"]["price_overview"]["currency"] = "GBX"
    details.write_text(json.dumps(doc))
    result = _catalogue(platform, dagster_instance, fixtures=fixtures)
    assert not result.success  # the blocking check failed the run
    check = next(e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION")
    assert not check.event_specific_data.passed
    failed = check.event_specific_data.metadata["failed_expectations"].value
    assert failed["expect_column_values_to_be_between(total_rating)"]["sample"] == ["120.5"]
    assert failed["expect_column_values_to_be_in_set(currency)"]["sample"] == ["GBX"]
    # a clean refresh repairs it
    assert _catalogue(platform, dagster_instance).success


def test_tenants_never_see_each_others_games(platform, materialized, edge_tenant):
    with psycopg.connect(platform.serving_url) as conn:
        for tenant, expected in [("thrillring", {"thrillring"}), ("coreldove", set()), (edge_tenant, None)]:
            with conn.transaction():
                set_tenant(conn, tenant)
                seen = {r[0] for r in conn.execute("SELECT DISTINCT tenant_id FROM core.gaming_catalogue")}
                prices = {
                    r[0] for r in conn.execute("SELECT DISTINCT tenant_id FROM core.gaming_price_snapshots")
                }
                assert seen <= {tenant} and prices <= {tenant}
                if expected is not None:
                    assert seen == expected
            with conn.transaction(), pytest.raises(psycopg.errors.InsufficientPrivilege):
                set_tenant(conn, tenant)
                conn.execute("SELECT count(*) FROM raw.gaming_api_responses")


def test_steam_and_igdb_requests_are_spaced_by_the_shared_rate_slot(
    platform, dagster_instance, edge_settings
):
    # The live defaults (IGDB 0.25 s, Steam 1.5 s) with short intervals, so the test stays quick.
    interval = 0.2
    result = _catalogue(
        platform,
        dagster_instance,
        igdb=IgdbResource(page_size=4, min_interval_s=interval, backoff_s=0.01),
        steam=SteamStoreResource(min_interval_s=interval, throttle_pause_s=0.01),
    )
    assert result.success
    for source in ("steam", "igdb"):
        times = [
            row[0]
            for row in _query(
                platform,
                edge_settings,
                """SELECT extract(epoch FROM fetched_at) FROM raw.gaming_api_responses
                    WHERE dagster_run_id = %s AND source = %s ORDER BY fetched_at""",
                (result.run_id, source),
            )
        ]
        gaps = [float(b - a) for a, b in zip(times, times[1:], strict=False)]
        assert len(times) >= 4 and min(gaps) >= interval * 0.9, (source, gaps)
    assert _metadata(dagster_instance, CATALOGUE, edge_settings)["rate_limit_wait_s"] > 0


def test_schedules_request_every_gaming_tenant(dagster_instance, materialized, edge_tenant):
    from datetime import UTC, datetime

    from dagster import build_schedule_context

    def evaluate(schedule, when):
        # As a context manager: the schedule's own instance is closed (and unregistered) after.
        with build_schedule_context(instance=dagster_instance, scheduled_execution_time=when) as context:
            result = schedule(context)
            return result if isinstance(result, SkipReason) else list(result)

    weekly = evaluate(gaming.gaming_weekly_catalogue, datetime(2026, 11, 23, 5, tzinfo=UTC))
    assert {r.partition_key for r in weekly} >= {"thrillring", edge_tenant}
    assert "coreldove" not in {r.partition_key for r in weekly}  # not a gaming tenant
    assert all(r.run_key.endswith(":2026-11-23") for r in weekly)

    daily = evaluate(gaming.gaming_daily_prices, datetime(2026, 11, 25, 6, tzinfo=UTC))
    keys = {r.partition_key for r in daily}
    assert MultiPartitionKey({"tenant": "thrillring", "date": LATEST_DAY}) in keys
    assert all(k.keys_by_dimension["date"] == LATEST_DAY for k in keys)
    # replay data ends before the real calendar's yesterday: nothing to request then
    later = evaluate(gaming.gaming_daily_prices, datetime(2027, 3, 2, 6, tzinfo=UTC))
    assert "outside the price partitions" in later.skip_message


def test_reparse_rebuilds_the_catalogue_from_stored_answers_without_calling_any_api(
    platform, dagster_instance, edge_settings, tmp_path
):
    assert _catalogue(platform, dagster_instance).success
    columns = "igdb_id, content_hash, final_price, review_score, critic_score, opencritic_status, first_seen"
    good = sorted(_query(platform, edge_settings, f"SELECT {columns} FROM core.gaming_catalogue"))
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, edge_settings)  # what an old, buggy parser might have left behind
        conn.execute(
            "UPDATE core.gaming_catalogue SET final_price = NULL, critic_score = NULL, content_hash = 'stale'"
        )
    raw = "SELECT count(*) FROM raw.gaming_api_responses"
    raw_before = _query(platform, edge_settings, raw)[0][0]
    nowhere = tmp_path / "no-recordings"  # any request would fail: nothing is recorded here
    for source in ("igdb", "steam", "opencritic"):
        (nowhere / source).mkdir(parents=True)
    for _ in range(2):  # a reparse can be reparsed: the rows keep pointing at the answers they used
        result = _catalogue(platform, dagster_instance, config={"reparse": True}, fixtures=nowhere)
        assert result.success
        assert sorted(_query(platform, edge_settings, f"SELECT {columns} FROM core.gaming_catalogue")) == good
    meta = _metadata(dagster_instance, CATALOGUE, edge_settings)
    assert meta["api_calls_total"] == 0 and "reparsed from the answers of run" in meta["opencritic_note"]
    assert meta["opencritic_details"] == 6 and meta["games"] == 8  # the six matched games
    assert _query(platform, edge_settings, raw)[0][0] == raw_before
