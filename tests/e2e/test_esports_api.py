"""Gaming community routes over real HTTP, on ThrillRing's replayed feeds and bundled exports
(28 stories, 240 players, 18 tournaments), isolated by RLS."""

from datetime import datetime

import pytest

from tests.e2e.test_api import assert_error, get

NEWS = "/api/brain/gaming/news"
TOURNAMENTS = "/api/brain/gaming/tournaments"
PLAYERS = "/api/brain/gaming/players"
ACTIVITY = "/api/brain/analytics/gaming"
PLAYER_ACTIVITY = "/api/brain/analytics/gaming/players"


def all_rows(api, path, key="thrillring", **params):
    rows, offset = [], 0
    while offset is not None:
        body = get(api, path, key, limit=200, offset=offset, **params).json()
        rows += body["data"]
        offset = body["page"]["next_offset"]
    return rows


def test_thrillring_reads_its_news_newest_first(api):
    body = get(api, NEWS, "thrillring", limit=10).json()
    assert body["page"]["total"] == 28 and len(body["data"]) == 10 and body["page"]["next_offset"] == 10
    published = [r["published_at"] for r in body["data"]]
    assert published == sorted(published, reverse=True)
    rows = all_rows(api, NEWS)
    assert len(rows) == 28 and len({r["item_key"] for r in rows}) == 28
    assert all(r["tenant_id"] == "thrillring" for r in rows)
    vitality = [r for r in rows if "Vitality win IEM Chengdu" in r["title"]]
    assert len(vitality) == 1 and vitality[0]["sources"] == ["Dot Esports", "Esports Insider"]
    assert all(r["url"] is None or "utm_" not in r["url"] for r in rows)


def test_news_filters(api):
    hltv = get(api, NEWS, "thrillring", source="HLTV", limit=200).json()
    assert hltv["page"]["total"] == 10 and all("HLTV" in r["sources"] for r in hltv["data"])
    chengdu = get(api, NEWS, "thrillring", q="chengdu").json()["data"]
    assert chengdu and all("chengdu" in (r["title"] + (r["summary"] or "")).lower() for r in chengdu)
    assert (
        get(api, NEWS, "thrillring", q="100%").json()["page"]["total"] == 0
    )  # % is a character, not a wildcard
    cs2 = get(api, NEWS, "thrillring", tag="cs2").json()["data"]
    assert cs2 and all("CS2" in r["tags"] for r in cs2)
    since = get(api, NEWS, "thrillring", since="2026-11-24T12:00:00Z", limit=200).json()["data"]
    assert since and all(r["published_at"] >= "2026-11-24T12:00:00" for r in since)
    window = get(api, NEWS, "thrillring", since="2026-11-23", until="2026-11-24").json()["page"]["total"]
    assert 0 < window < 28
    by_title = get(api, NEWS, "thrillring", sort="title", limit=200).json()["data"]
    assert [r["title"] for r in by_title] == sorted(r["title"] for r in by_title)


def test_tournaments_with_entrant_counts_and_filters(api):
    rows = all_rows(api, TOURNAMENTS)
    assert len(rows) == 18 and all(r["tenant_id"] == "thrillring" for r in rows)
    starts = [r["start_at"] for r in rows]
    assert starts == sorted(starts, reverse=True)
    completed = get(api, TOURNAMENTS, "thrillring", status="completed", limit=200).json()["data"]
    assert len(completed) == 13 and all(
        r["status"] == "completed" and r["end_at"] >= r["start_at"] for r in completed
    )
    assert all(r["entrants"] >= r["finished"] > 0 for r in completed)
    december = next(r for r in rows if r["tournament_id"] == "TR-2026-0109")
    assert december["entrants"] == 18  # 12 from October's export, 6 late registrations from November's
    november = get(api, TOURNAMENTS, "thrillring", **{"from": "2026-11-01", "to": "2026-11-30"}).json()
    assert november["page"]["total"] == 6
    valorant = get(api, TOURNAMENTS, "thrillring", game="valorant", limit=200).json()["data"]
    assert valorant and {r["game"] for r in valorant} == {"Valorant"}
    by_entrants = get(api, TOURNAMENTS, "thrillring", sort="-entrants", limit=200).json()["data"]
    assert [r["entrants"] for r in by_entrants] == sorted((r["entrants"] for r in by_entrants), reverse=True)
    detail = get(api, f"{TOURNAMENTS}/{completed[0]['tournament_id']}", "thrillring").json()
    assert len([e for e in detail["entries"] if e["status"] != "withdrawn"]) == completed[0]["entrants"]
    placements = [e["placement"] for e in detail["entries"] if e["placement"] is not None]
    assert placements == sorted(placements) and placements[0] == 1
    assert_error(get(api, f"{TOURNAMENTS}/TR-0000-0000", "thrillring"), 404)
    # The master finds in detail what its list shows it; another client does not.
    as_master = get(api, f"{TOURNAMENTS}/{completed[0]['tournament_id']}", "master").json()
    assert as_master["tenant_id"] == "thrillring" and as_master["entries"] == detail["entries"]
    assert_error(get(api, f"{TOURNAMENTS}/{completed[0]['tournament_id']}", "coreldove"), 404)


def test_players_filters_and_sorting(api):
    body = get(api, PLAYERS, "thrillring", limit=5).json()
    assert body["page"]["total"] == 240
    active = [r["last_active_at"] for r in body["data"]]
    assert active == sorted(active, reverse=True)
    british = all_rows(api, PLAYERS, country="gb")
    assert british and all(r["country"] == "GB" for r in british)
    team = british[0]["team"] or "Night Owls"
    owls = all_rows(api, PLAYERS, team=team.upper())
    assert owls and all(r["team"] == team for r in owls)
    recent = all_rows(api, PLAYERS, active_since="2026-11-01")
    assert 30 <= len(recent) < 240 and all(r["last_active_at"] >= "2026-11-01" for r in recent)
    rated = get(api, PLAYERS, "thrillring", sort="-skill_rating,handle", limit=50).json()["data"]
    assert [r["skill_rating"] for r in rated] == sorted((r["skill_rating"] for r in rated), reverse=True)
    entered = sum(r["tournaments_entered"] for r in all_rows(api, PLAYERS))
    assert entered == sum(r["entrants"] for r in all_rows(api, TOURNAMENTS))


def test_gaming_activity_marts(api):
    rows = all_rows(api, ACTIVITY)
    totals = [r for r in rows if r["game"] == "all games"]
    assert totals and all(r["tenant_id"] == "thrillring" for r in rows)
    assert sum(r["entrants"] for r in totals) == sum(r["entrants"] for r in all_rows(api, TOURNAMENTS))
    assert sum(r["tournaments"] for r in totals) == 18
    assert sum(r["new_players"] for r in totals) == 240
    for week in {r["week_start"] for r in totals}:
        per_game = [r for r in rows if r["week_start"] == week and r["game"] != "all games"]
        total = next(r for r in totals if r["week_start"] == week)
        assert total["entrants"] == sum(r["entrants"] for r in per_game)
        assert total["active_players"] <= sum(r["active_players"] for r in per_game)
    done = [r for r in totals if r["tournaments_completed"]]
    assert done and all(0 < r["completion_rate"] <= 1 for r in done)
    november = get(api, ACTIVITY, "thrillring", game="all games", **{"from": "2026-11-01"}).json()["data"]
    assert november and all(r["week_start"] >= "2026-11-01" for r in november)
    players = all_rows(api, PLAYER_ACTIVITY)
    assert len(players) == 240 and any(r["active_last_30d"] for r in players)
    # whole days: day 30 may be just inside or just outside the window
    assert all(r["days_since_active"] <= 30 for r in players if r["active_last_30d"])
    assert all(r["active_last_30d"] for r in players if r["days_since_active"] < 30)
    best = get(api, PLAYER_ACTIVITY, "thrillring", sort="-wins,handle", limit=1).json()["data"][0]
    assert best["wins"] >= 1 and best["best_placement"] == 1 and best["prize_won"]
    lately = get(api, PLAYER_ACTIVITY, "thrillring", active_last_30d="true").json()["page"]["total"]
    assert lately == sum(1 for r in players if r["active_last_30d"])


def test_other_tenants_see_none_of_it_and_the_master_may_narrow(api):
    for path in (NEWS, TOURNAMENTS, PLAYERS, ACTIVITY, PLAYER_ACTIVITY):
        assert get(api, path, "coreldove").json()["page"]["total"] == 0, path
        assert get(api, path, "directory").json()["page"]["total"] == 0, path
        assert_error(get(api, path), 401)
    narrowed = get(api, NEWS, "master", {"X-Tenant-ID": "thrillring"}).json()
    assert narrowed["page"]["total"] == 28
    assert_error(get(api, NEWS, "coreldove", {"X-Tenant-ID": "thrillring"}), 403)
    assert_error(get(api, f"{TOURNAMENTS}/TR-2026-0109", "coreldove"), 404)


def test_paging_past_the_end_keeps_the_total(api):
    body = get(api, PLAYERS, "thrillring", offset=1000).json()
    assert body["data"] == [] and body["page"]["total"] == 240 and body["page"]["next_offset"] is None
    first = get(api, NEWS, "thrillring", limit=14).json()["data"]
    second = get(api, NEWS, "thrillring", limit=14, offset=14).json()["data"]
    assert len(first) == len(second) == 14
    assert not {r["item_key"] for r in first} & {r["item_key"] for r in second}
    assert datetime.fromisoformat(first[-1]["published_at"]) >= datetime.fromisoformat(
        second[0]["published_at"]
    )


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (NEWS, {"since": "yesterday"}),
        (NEWS, {"since": "2026-11-24", "until": "2026-11-23"}),
        (NEWS, {"sort": "summary"}),
        (NEWS, {"source": "   "}),
        (NEWS, {"limit": 500}),
        (TOURNAMENTS, {"status": "finished"}),
        (TOURNAMENTS, {"from": "2026-13-01"}),
        (TOURNAMENTS, {"from": "2026-11-30", "to": "2026-11-01"}),
        (TOURNAMENTS, {"sort": "prize_pool; DROP TABLE core.gaming_tournaments"}),
        (PLAYERS, {"country": "GBR"}),
        (PLAYERS, {"country": "1A"}),
        (PLAYERS, {"active_since": "2026-02-30"}),
        (PLAYERS, {"status": "retired"}),
        (PLAYERS, {"offset": -1}),
        (ACTIVITY, {"sort": "revenue"}),
        (ACTIVITY, {"from": "soon"}),
        (PLAYER_ACTIVITY, {"active_last_30d": "maybe"}),
    ],
)
def test_bad_parameters_are_clear_422s(api, path, params):
    body = assert_error(get(api, path, "thrillring", **params), 422)
    assert body["code"] == "invalid_request"


def test_the_ui_shows_esports_lineage_schedules_and_the_drop_sensor(dagster_webserver):
    from tests.e2e.test_dagster_ui import graphql

    data = graphql(
        dagster_webserver,
        """{ assetNodes { assetKey { path } dependencyKeys { path } groupName hasAssetChecks }
             repositoriesOrError { ... on RepositoryConnection { nodes {
               sensors { name sensorState { status } } schedules { name } } } } }""",
    )
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    deps = {key: {"/".join(d["path"]) for d in n["dependencyKeys"]} for key, n in nodes.items()}
    assert deps["esports_news"] == {"tenant_registry", "news_feeds"}
    assert deps["tournaments"] == {"players", "gaming_drop_folder"}
    assert deps["staging/stg_esports_entries"] == {"tournaments"}
    assert {"staging/stg_esports_entries", "staging/stg_esports_players"} <= deps["marts/gaming_activity"]
    assert all(
        nodes[k]["groupName"] == "gaming" and nodes[k]["hasAssetChecks"]
        for k in ("esports_news", "players", "tournaments")
    )
    repo = data["repositoriesOrError"]["nodes"][0]
    assert {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}[
        "gaming_file_drops_sensor"
    ] == "RUNNING"
    assert {"esports_news_hourly", "gaming_drops_daily_sweep"} <= {s["name"] for s in repo["schedules"]}
