"""Game catalogue benchmarks (issue 5), each next to its baseline in this one process.

    make bench-gaming      (or: python -m bench.gaming [--quick])

On the bench data folder (`.data/bench`, every seeded asset materialized first), with synthetic
replay recordings for a large tenant written to a temporary fixtures folder (the real clients
replay them):

1. API requests per refreshed game: a full catalogue refresh per source, and the daily price
   snapshot batched (100 apps per `filters=price_overview` request, shipped) against one
   request per game;
2. the wall-clock lower bound the published rate limits put on a 1,000-game catalogue, derived
   from the request plan the clients actually ran (IGDB 4 requests/s, Steam ~200 requests per
   5 minutes, OpenCritic's free-plan 25 searches and 200 requests a day);
3. replay-mode rows per second of `game_catalogue` and `game_price_snapshots` on the synthetic
   tenant (1,000 games; 300 with --quick), and the demo's share: ThrillRing's catalogue and
   latest snapshot through the CLI's code path with the shipped definitions;
4. latency of GET /api/brain/gaming/games at 10 and 100 concurrent clients (wrk): the default
   page, a name search, and filters sorted by price.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx

from bench.api import ROOT, ensure_wrk, measure, prepare_platform, start_api
from orchestration.processes import free_port, stop

BENCH_TENANT = "bench_gaming"
COUNTRY = "us"
WORDS = ["Iron", "Neon", "Hollow", "Crimson", "Star", "Shadow", "Pixel", "Echo", "Rogue", "Frontier", "Void"]
NOUNS = ["Legends", "Odyssey", "Tactics", "Drift", "Kingdom", "Protocol", "Saga", "Arena", "Quest", "Forge"]
GENRES = [(12, "Role-playing (RPG)"), (5, "Shooter"), (31, "Adventure"), (15, "Strategy"), (32, "Indie")]
PLATFORMS = [
    (6, "PC (Microsoft Windows)"),
    (167, "PlayStation 5"),
    (169, "Xbox Series X|S"),
    (130, "Nintendo Switch"),
]
# The published limits the bound is computed from (SOURCES.md sections 4-6).
IGDB_PER_S = 4.0
STEAM_INTERVAL_S = 300 / 200
OPENCRITIC_SEARCHES_PER_DAY = 25
OPENCRITIC_REQUESTS_PER_DAY = 200
REVIEW_PARAMS = {"json": "1", "num_per_page": "0", "language": "all", "purchase_type": "all"}


# --- synthetic recordings ------------------------------------------------------------------


def synthetic_games(n: int) -> list[dict]:
    """`n` games: 85% on Steam (3% of those delisted, 10% free), OpenCritic knows 70% by their
    exact name, 20% only as near misses, 10% not at all."""
    rng = random.Random(5)
    games = []
    for i in range(n):
        name = f"{WORDS[i % len(WORDS)]} {NOUNS[(i // len(WORDS)) % len(NOUNS)]} {i // 110 + 1}"
        on_steam = rng.random() < 0.85
        games.append(
            {
                "igdb_id": 500_000 + i,
                "name": name,
                "steam": 3_000_000 + i if on_steam else None,
                "delisted": on_steam and rng.random() < 0.03,
                "free": rng.random() < 0.10,
                "cents": rng.choice([499, 999, 1499, 1999, 2999, 3999, 5999, 6999]),
                "discount": rng.choice([0, 0, 0, 25, 50, 75]),
                "oc": rng.choices(["exact", "near", "none"], weights=[70, 20, 10])[0],
                "oc_id": 200_000 + i,
                "rating": round(rng.uniform(55, 96), 2),
            }
        )
    return games


def _record(folder: Path, name: str, request: dict, body, status: int = 200) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    answer = {"status": status, "headers": {"Content-Type": "application/json"}, "json": body}
    (folder / f"{name}.json").write_text(json.dumps({"request": request, "responses": [answer]}))


def _price(game: dict) -> dict:
    final = game["cents"] * (100 - game["discount"]) // 100
    return {"currency": "USD", "initial": game["cents"], "final": final, "discount_percent": game["discount"]}


def _price_entry(game: dict) -> dict:
    if game["delisted"]:
        return {"success": False}
    return {"success": True, "data": [] if game["free"] else {"price_overview": _price(game)}}


def write_recordings(directory: Path, games: list[dict]) -> None:
    from orchestration.gaming_sources import IgdbResource, OpenCriticResource, SteamStoreResource

    igdb, steam, oc = IgdbResource(), SteamStoreResource(), OpenCriticResource()
    token = {"access_token": "bench", "expires_in": 5183942, "token_type": "bearer"}
    params = {"client_id": "replay", "grant_type": "client_credentials"}
    _record(directory / "igdb", "token", {"method": "POST", "url": igdb.token_url, "params": params}, token)
    for limit, offset in igdb.pages(len(games)):
        records = []
        for game in games[offset : offset + limit]:
            record = {
                "id": game["igdb_id"],
                "name": game["name"],
                "slug": game["name"].lower().replace(" ", "-"),
                "first_release_date": 1_500_000_000 + game["igdb_id"] * 997 % 250_000_000,
                "genres": [{"id": g, "name": n} for g, n in GENRES[: 1 + game["igdb_id"] % 3]],
                "platforms": [{"id": p, "name": n} for p, n in PLATFORMS[: 1 + game["igdb_id"] % 4]],
                "total_rating": game["rating"],
                "total_rating_count": 100_000 - game["igdb_id"],
            }
            if game["steam"]:
                shape = {"external_game_source": 1} if game["igdb_id"] % 2 else {"category": 1}
                record["external_games"] = [{"id": game["igdb_id"], "uid": str(game["steam"]), **shape}]
            records.append(record)
        body = {"method": "POST", "url": f"{igdb.base_url}/games", "body": igdb.games_query(limit, offset)}
        _record(directory / "igdb", f"games_{offset}", body, records)

    appdetails = f"{steam.base_url}/api/appdetails"
    on_steam = [g for g in games if g["steam"]]
    for game in on_steam:
        appid = game["steam"]
        data = {
            "type": "game",
            "name": game["name"],
            "steam_appid": appid,
            "required_age": "0",
            "is_free": game["free"],
            "genres": [{"id": "1", "description": "Action"}],
            "release_date": {"coming_soon": False, "date": "18 May, 2021"},
        }
        if not game["free"]:
            data["price_overview"] = _price(game)
        entry = {"success": False} if game["delisted"] else {"success": True, "data": data}
        request = {"url": appdetails, "params": {"appids": str(appid), "cc": COUNTRY, "l": steam.language}}
        _record(directory / "steam", f"app_{appid}", request, {str(appid): entry})
        summary = {"review_score": 8, "review_score_desc": "Very Positive", "total_positive": 900,
                   "total_negative": 100, "total_reviews": 1000, "num_reviews": 0}  # fmt: skip
        request = {"url": f"{steam.base_url}/appreviews/{appid}", "params": REVIEW_PARAMS}
        _record(directory / "steam", f"reviews_{appid}", request, {"success": 1, "query_summary": summary})
        # the unbatched baseline: one price_overview request per game
        request = {
            "url": appdetails,
            "params": {"appids": str(appid), "cc": COUNTRY, "filters": "price_overview"},
        }
        _record(directory / "steam", f"price_{appid}", request, {str(appid): _price_entry(game)})
    by_appid = {g["steam"]: g for g in on_steam}
    for index, batch in enumerate(steam.price_batches(list(by_appid))):
        request = {
            "url": appdetails,
            "params": {"appids": ",".join(map(str, batch)), "cc": COUNTRY, "filters": "price_overview"},
        }
        _record(
            directory / "steam",
            f"prices_{index}",
            request,
            {str(a): _price_entry(by_appid[a]) for a in batch},
        )

    for game in games:
        if game["oc"] == "exact":
            hits = [{"id": game["oc_id"], "name": game["name"], "dist": 0.0, "relation": "game"}]
        elif game["oc"] == "near":
            hits = [{"id": game["oc_id"], "name": f"{game['name']} Remastered Deluxe", "dist": 0.45}]
        else:
            hits = []
        request = {"url": f"{oc.base_url}/game/search", "params": {"criteria": game["name"]}}
        _record(directory / "opencritic", f"search_{game['igdb_id']}", request, hits)
        if game["oc"] == "exact":
            detail = {"id": game["oc_id"], "name": game["name"], "topCriticScore": game["rating"],
                      "tier": "Strong", "numReviews": 80, "percentRecommended": 80.0}  # fmt: skip
            _record(
                directory / "opencritic",
                f"game_{game['oc_id']}",
                {"url": f"{oc.base_url}/game/{game['oc_id']}"},
                detail,
            )


# --- running the assets ----------------------------------------------------------------------


def ensure_tenant(admin_url: str, instance, featured: int) -> None:
    from psycopg.types.json import Jsonb

    from orchestration import postgres
    from orchestration.partitions import tenant_partitions

    settings = {"gaming": {"featured_games": featured, "steam_country": COUNTRY}}
    with postgres.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO core.tenants
                      (tenant_id, display_name, kind, parent_tenant_id, tier, domains, settings)
               VALUES (%s, 'Bench Gaming', 'client', 'bizoholic', 'starter', '{gaming}', %s)
               ON CONFLICT (tenant_id) DO UPDATE SET settings = EXCLUDED.settings""",
            (BENCH_TENANT, Jsonb(settings)),
        )
        # A clean slate: a first refresh searches OpenCritic for every game.
        conn.execute("DELETE FROM core.gaming_catalogue WHERE tenant_id = %s", (BENCH_TENANT,))
    instance.add_dynamic_partitions(tenant_partitions("gaming").name, [BENCH_TENANT])


def _step_seconds(result, step: str) -> float:
    return next(
        e.event_specific_data.duration_ms / 1000
        for e in result.all_events
        if e.event_type_value == "STEP_SUCCESS" and e.step_key == step
    )


def _metadata(instance, key: str, partition: str) -> dict:
    from dagster import AssetKey, AssetRecordsFilter

    record = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(key), asset_partitions=[partition]), limit=1
    ).records[0]
    return {k: v.value for k, v in record.event_log_entry.asset_materialization.metadata.items()}


def _resources(env, fixtures: Path, **steam_config) -> dict:
    from orchestration.gaming_sources import IgdbResource, OpenCriticResource, SteamStoreResource
    from orchestration.warehouse import WarehouseResource

    common = {"mode": "replay", "fixtures_dir": str(fixtures)}
    return {
        "warehouse": WarehouseResource(database_url=env["BIZOSAAS_WRITER_URL"]),
        # No spacing: this measures the platform's own throughput; the spacing's cost is part 2.
        "igdb": IgdbResource(min_interval_s=0, **common),
        "steam": SteamStoreResource(min_interval_s=0, **common, **steam_config),
        # Budgets out of the way for the same reason (part 2 applies the free plan's).
        "opencritic": OpenCriticResource(search_daily_limit=10**6, daily_limit=10**6, **common),
    }


def run_catalogue(instance, env, fixtures: Path) -> tuple[dict, float]:
    from dagster import materialize

    from assets import gaming

    result = materialize(
        [gaming.game_catalogue],
        partition_key=BENCH_TENANT,
        instance=instance,
        resources=_resources(env, fixtures),
    )
    assert result.success
    return _metadata(instance, "game_catalogue", BENCH_TENANT), _step_seconds(result, "game_catalogue")


def run_prices(instance, env, fixtures: Path, day: str, batch_size: int) -> tuple[dict, float]:
    from dagster import MultiPartitionKey, materialize

    from assets import gaming

    partition = MultiPartitionKey({"tenant": BENCH_TENANT, "date": day})
    resources = _resources(env, fixtures, price_batch_size=batch_size)
    result = materialize(
        [gaming.game_price_snapshots],
        partition_key=partition,
        instance=instance,
        resources={"warehouse": resources["warehouse"], "steam": resources["steam"]},
    )
    assert result.success
    return _metadata(instance, "game_price_snapshots", partition), _step_seconds(
        result, "game_price_snapshots"
    )


# --- the benchmarks ----------------------------------------------------------------------


def rate_limit_bound(meta: dict, games: int, scale_to: int = 1000) -> dict:
    """The minimum wall-clock time the published limits allow for `scale_to` games: the
    clients' own request plan (IGDB pages, Steam price batches) and the per-game calls they
    made for `games` games (Steam details and reviews, OpenCritic), scaled linearly."""
    from orchestration.gaming_sources import IgdbResource, SteamStoreResource

    scale = scale_to / games
    igdb_calls = len(IgdbResource().pages(scale_to))
    steam_calls = round(meta["api_calls_steam"] * scale)
    on_steam = round((meta["steam_ok"] + meta["steam_unavailable"]) * scale)
    searches = round(meta["opencritic_searches"] * scale)
    oc_calls = round(meta["api_calls_opencritic"] * scale)
    batches = len(SteamStoreResource().price_batches(range(on_steam)))
    catalogue_s = igdb_calls / IGDB_PER_S + steam_calls * STEAM_INTERVAL_S
    return {
        "games": scale_to,
        "igdb_requests": igdb_calls,
        "igdb_s": round(igdb_calls / IGDB_PER_S, 2),
        "steam_requests": steam_calls,
        "steam_s": round(steam_calls * STEAM_INTERVAL_S),
        "catalogue_hours_igdb_and_steam": round(catalogue_s / 3600, 2),
        "opencritic_searches": searches,
        "opencritic_requests": oc_calls,
        # A first refresh is bounded by the daily search budget; later ones only read known ids.
        "opencritic_first_match_days": math.ceil(
            max(searches / OPENCRITIC_SEARCHES_PER_DAY, oc_calls / OPENCRITIC_REQUESTS_PER_DAY)
        ),
        "opencritic_weekly_refresh_days": math.ceil((oc_calls - searches) / OPENCRITIC_REQUESTS_PER_DAY),
        "games_with_steam_id": on_steam,
        "price_snapshot_requests_batched": batches,
        "price_snapshot_batched_s": round(batches * STEAM_INTERVAL_S, 1),
        "price_snapshot_requests_unbatched": on_steam,
        "price_snapshot_unbatched_s": round(on_steam * STEAM_INTERVAL_S),
    }


def bench_demo_share(instance) -> dict:
    """ThrillRing's catalogue and latest snapshot as `bizosaas demo` runs them."""
    from orchestration.definitions import defs
    from orchestration.materialize import execute, plan_runs

    runs = plan_runs(defs, instance, "group:gaming", "thrillring")
    started = time.perf_counter()
    outcomes = execute(defs, instance, runs, progress=lambda _: None)
    assert all(o.success for o in outcomes), [o.error for o in outcomes]
    return {
        "runs": [o.run.label for o in outcomes],
        "seconds": {o.run.label: round(o.seconds, 2) for o in outcomes},
        "total_s": round(time.perf_counter() - started, 2),
    }


def bench_api(env, admin_url, tenant_games: int, duration: int, repeat: int) -> list[dict]:
    from orchestration import postgres
    from serving import keys

    with postgres.connect(admin_url, autocommit=True) as conn:
        for table in ("gaming_catalogue", "gaming_price_snapshots"):
            conn.execute(f"VACUUM ANALYZE core.{table}")
        key, _ = keys.create(conn, BENCH_TENANT, "reader", "bench gaming")
        thrill_key, _ = keys.create(conn, "thrillring", "reader", "bench gaming")
    wrk = ensure_wrk()
    endpoints = [
        (BENCH_TENANT, key, tenant_games, "first page (popularity)", "/api/brain/gaming/games?limit=50"),
        (BENCH_TENANT, key, tenant_games, "q=neon", "/api/brain/gaming/games?q=neon&limit=50"),
        (
            BENCH_TENANT,
            key,
            tenant_games,
            "on sale, rpg, max_price=30, sort=-discount_percent,price",
            "/api/brain/gaming/games?on_sale=true&genre=rpg&max_price=30&sort=-discount_percent,price&limit=50",
        ),  # fmt: skip
        ("thrillring", thrill_key, 50, "first page (popularity)", "/api/brain/gaming/games?limit=50"),
    ]
    port = free_port()
    api = start_api(env, port, 2, "30")
    rows = []
    try:
        for tenant, credential, games, name, path in endpoints:
            url = f"http://127.0.0.1:{port}{path}"
            answer = httpx.get(url, headers={"X-API-Key": credential}, timeout=30)
            assert answer.status_code == 200, answer.text
            matches = answer.json()["page"]["total"]
            assert matches > 0 and answer.json()["data"], f"{name}: no rows"
            rows += measure(wrk, url, credential, duration, repeat, tenant=tenant, tenant_games=games,
                            endpoint=name, matches=matches)  # fmt: skip
    finally:
        stop(api)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="300 games instead of 1,000, shorter load runs")
    parser.add_argument(
        "--parts", default="refresh,demo,api", help="comma-separated subset of: refresh, demo, api"
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    games_n = 300 if args.quick else 1000
    duration, repeat = (3, 1) if args.quick else (8, 3)

    env, _ = prepare_platform()
    from dagster import DagsterInstance

    from orchestration import postgres
    from orchestration.settings import load_settings, replay_date

    admin_url = postgres.admin_url(load_settings())
    report: dict = {"cores": os.cpu_count(), "synthetic_games": games_n}
    with DagsterInstance.get() as instance:
        if "refresh" in parts:
            games = synthetic_games(games_n)
            with tempfile.TemporaryDirectory() as tmp:
                fixtures = Path(tmp)
                write_recordings(fixtures, games)
                ensure_tenant(admin_url, instance, games_n)
                meta, catalogue_s = run_catalogue(instance, env, fixtures)
                # the latest complete day: replay mode's days end at the replay date
                day = (
                    date.fromisoformat(replay_date() or date.today().isoformat()) - timedelta(days=1)
                ).isoformat()
                single, single_s = run_prices(instance, env, fixtures, day, 1)
                # the shipped batch size last, so the API part reads its snapshot
                batched, batched_s = run_prices(instance, env, fixtures, day, 100)
            report["requests_per_game"] = {
                "catalogue_refresh": {
                    "games": meta["games"],
                    **{
                        f"calls_{s}": meta[f"api_calls_{s}"]
                        for s in ("igdb", "twitch", "steam", "opencritic")
                    },
                    "calls_total": meta["api_calls_total"],
                    "requests_per_game": meta["requests_per_game"],
                },
                "price_snapshot_batched (shipped, 100 per request)": {
                    "games_with_steam_id": batched["dagster/row_count"],
                    "requests": batched["api_calls_steam"],
                    "requests_per_game": batched["requests_per_game"],
                    "step_s": round(batched_s, 2),
                },
                "price_snapshot_one_request_per_game": {
                    "games_with_steam_id": single["dagster/row_count"],
                    "requests": single["api_calls_steam"],
                    "requests_per_game": single["requests_per_game"],
                    "step_s": round(single_s, 2),
                },
            }
            report["rate_limit_bound_1000_games"] = rate_limit_bound(meta, games_n, 1000)
            report["replay_rows_per_s"] = {
                "game_catalogue": {
                    "rows": meta["games"],
                    "step_s": round(catalogue_s, 2),
                    "rows_per_s": round(meta["games"] / catalogue_s, 1),
                },  # fmt: skip
                "game_price_snapshots": {
                    "rows": batched["dagster/row_count"],
                    "step_s": round(batched_s, 2),
                    "rows_per_s": round(batched["dagster/row_count"] / batched_s, 1),
                },  # fmt: skip
            }
            for key in ("requests_per_game", "rate_limit_bound_1000_games", "replay_rows_per_s"):
                print(json.dumps({key: report[key]}), flush=True)
        if "demo" in parts:
            report["demo_share_thrillring"] = bench_demo_share(instance)
            print(json.dumps(report["demo_share_thrillring"]), flush=True)
    if "api" in parts:
        report["api"] = bench_api(env, admin_url, games_n, duration, repeat)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / "gaming.json"
    # A partial run updates its parts and keeps the others' last figures.
    previous = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**previous, **report}, indent=2, ensure_ascii=False))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
