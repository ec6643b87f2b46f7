"""Knowledge search endpoint under load (issue 7), on the bench data folder (`.data/bench`).

    python -m bench.knowledge_api [--quick]

p50/p95/p99 latency and requests per second of GET /api/brain/rag/search at 10 and 100
concurrent clients (wrk), over two mixes of questions, each with the share of requests whose
question embedding came from the API's cache (X-Embedding-Cache: hit):

- repeated: the tenant's labelled queries (fixtures/knowledge/labelled_queries.yaml) in turn,
  as frontends repeat questions (autocomplete, pagination, popular searches); per demo tenant with
  entities (ThrillRing's games, Business Directory's businesses, CorelDove's products and leads),
  hybrid (hops=2), and vectors only (hops=0) on ThrillRing;
- distinct (ThrillRing, hops=2): every request a new question (numbers appended), so every one
  is embedded: the endpoint's cost without the cache.

Then the split of the server-side time into embedding the question, the vector search, the graph
reads and the ranking, from the endpoint's own `timings_ms` over sequential distinct questions.

The API runs with 2 workers, each loading all-MiniLM-L6-v2 once at start-up
(BIZOSAAS_API_WARM_EMBEDDER=1); --torch-threads and --question-cache set the API's
BIZOSAAS_API_TORCH_THREADS and BIZOSAAS_API_QUESTION_CACHE to compare settings. Vectors and graph
come from the embeddings and knowledge_graph assets, which the demo materialization runs for
every tenant.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psycopg
import yaml

from bench.api import ROOT, ensure_wrk, prepare_platform, run_wrk, start_api
from orchestration.processes import free_port, stop

TENANTS = ("thrillring", "business_directory", "coreldove")
LABELLED = ROOT / "fixtures" / "knowledge" / "labelled_queries.yaml"
SEARCH = "/api/brain/rag/search"


def search_path(query: dict, hops: int = 2) -> str:
    # q last, so the distinct mix can append to it.
    params = {"k": 10, "hops": hops}
    if query.get("types"):
        params["types"] = ",".join(query["types"])
    return f"{SEARCH}?{urlencode({**params, 'q': query['q']})}"


# wrk's done() runs in its own Lua state: the request threads' counters are read through
# setup()'s thread handles. The report is wrk_report.lua's line plus the cache counters.
MIX_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  hits = 0; answered = 0; n = 0
  math.randomseed(os.time()); id = math.random(1, 1000000000)
end
request = function()
  i = i % #paths + 1
  n = n + 1
  local path = paths[i]
  if distinct then path = path .. "%20" .. tostring(id) .. "x" .. tostring(n) end
  return wrk.format(nil, path)
end
response = function(status, headers, body)
  answered = answered + 1
  local cache = headers["x-embedding-cache"] or headers["X-Embedding-Cache"]
  if cache == "hit" then hits = hits + 1 end
end
done = function(summary, latency, requests)
  local e, hit, seen = summary.errors, 0, 0
  for _, t in ipairs(threads) do hit = hit + t:get("hits"); seen = seen + t:get("answered") end
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"socket_errors":%d,"non_2xx":%d,"p50_us":%d,"p95_us":%d,'
    .. '"p99_us":%d,"max_us":%d,"cache_hits":%d,"answered":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, hit, seen))
end
"""


def mix_script(paths: list[str], distinct: bool = False) -> Path:
    """A wrk script sending `paths` in turn; `distinct` makes every question new (numbers
    appended to q, random per wrk run and counted per request), so no question embedding is reused."""
    quoted = ", ".join(json.dumps(p) for p in paths)
    script = f"paths = {{{quoted}}}\ni = 0\ndistinct = {'true' if distinct else 'false'}\n" + MIX_LUA
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    return Path(handle.name)


def measure_mix(wrk: str, base: str, path: str, key: str, duration: int, repeat: int, script: Path,
                **labels) -> list[dict]:  # fmt: skip
    """bench.api.measure's rows (medians of `repeat` runs at 10 and 100 clients, after a warm-up)
    plus the share of requests whose question embedding came from the API's cache."""
    run_wrk(wrk, base + path, key, 10, 2, script)
    rows = []
    for connections in (10, 100):
        runs = [run_wrk(wrk, base + path, key, connections, duration, script) for _ in range(repeat)]
        answered = sum(r["answered"] for r in runs)
        row = {
            **labels,
            "connections": connections,
            "rps": round(statistics.median(r["rps"] for r in runs)),
            "p50_ms": round(statistics.median(r["p50_us"] for r in runs) / 1000, 2),
            "p95_ms": round(statistics.median(r["p95_us"] for r in runs) / 1000, 2),
            "p99_ms": round(statistics.median(r["p99_us"] for r in runs) / 1000, 2),
            "errors": sum(r["socket_errors"] + r["non_2xx"] for r in runs),
            "cache_hit_rate": round(sum(r["cache_hits"] for r in runs) / answered, 3) if answered else None,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def knowledge_sizes(admin_url: str) -> dict:
    """Each tenant's vector and graph size; fails when the demo left a tenant without a ready space."""
    sizes = {}
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for tenant in TENANTS:
            vectors, ready, nodes, edges = conn.execute(
                """SELECT (SELECT count(*) FROM core.embeddings WHERE tenant_id = %(t)s),
                          (SELECT count(*) FROM core.embedding_spaces
                            WHERE tenant_id = %(t)s AND ready_at IS NOT NULL),
                          (SELECT count(*) FROM core.kg_nodes WHERE tenant_id = %(t)s),
                          (SELECT count(*) FROM core.kg_edges WHERE tenant_id = %(t)s)""",
                {"t": tenant},
            ).fetchone()
            if not ready:
                raise SystemExit(f"{tenant} has no ready embedding space: did the demo materialization run?")
            sizes[tenant] = {"vectors": vectors, "nodes": nodes, "edges": edges}
    return sizes


def wait_warm(base: str, key: str, path: str, limit_s: float = 120) -> float:
    """Until searches answer quickly (both workers have loaded the model); the seconds waited."""
    started = time.perf_counter()
    fast = 0
    while fast < 6 and time.perf_counter() - started < limit_s:
        t0 = time.perf_counter()
        response = httpx.get(base + path, headers={"X-API-Key": key}, timeout=limit_s)
        assert response.status_code == 200, response.text
        fast = fast + 1 if time.perf_counter() - t0 < 1.0 else 0
    return round(time.perf_counter() - started, 1)


def stage_split(base: str, key: str, paths: list[str], rounds: int) -> dict:
    """Median server-side milliseconds per stage over sequential requests."""
    stages: dict[str, list[float]] = {}
    with httpx.Client(headers={"X-API-Key": key}, timeout=30) as client:
        for round_ in range(rounds):
            for path in paths:
                # A new question each time: the split shows the embedding's cost, not the cache's.
                timings = client.get(f"{base}{path}%20{time.time_ns()}x{round_}").json()["timings_ms"]
                for stage in ("embed", "vector", "graph", "rank", "total"):
                    stages.setdefault(stage, []).append(timings[stage])
    return {f"{stage}_ms": round(statistics.median(values), 2) for stage, values in stages.items()} | {
        f"{stage}_p95_ms": round(statistics.quantiles(values, n=20)[-1], 2)
        for stage, values in stages.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="shorter load runs, one repeat")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="BIZOSAAS_API_TORCH_THREADS for the API (default: the API's)")  # fmt: skip
    parser.add_argument("--question-cache", type=int, default=None,
                        help="BIZOSAAS_API_QUESTION_CACHE for the API (default: the API's)")  # fmt: skip
    parser.add_argument("--only", choices=("all", "thrillring"), default="all",
                        help="thrillring: its mixes only (quick comparisons of settings)")  # fmt: skip
    parser.add_argument("--reuse", action="store_true",
                        help="the bench data as the last run left it (no demo materialization)")  # fmt: skip
    args = parser.parse_args()
    duration, repeat, rounds = (3, 1, 2) if args.quick else (8, 3, 5)
    started = time.perf_counter()

    if args.reuse:
        os.environ.setdefault("BIZOSAAS_DATA_DIR", str(ROOT / ".data" / "bench"))
        from orchestration import runtime
        from orchestration.settings import load_settings

        env = runtime.prepare(load_settings())
        runtime.export(env)
    else:
        env, _ = prepare_platform()
    from orchestration import postgres
    from orchestration.settings import load_settings
    from serving import keys

    admin_url = postgres.admin_url(load_settings())
    report: dict = {"cores": os.cpu_count(), "quick": args.quick, "tenants": knowledge_sizes(admin_url)}
    print(json.dumps(report["tenants"]), flush=True)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        key_of = {t: keys.create(conn, t, "reader", "bench knowledge api")[0] for t in TENANTS}
    queries = yaml.safe_load(LABELLED.read_text())["queries"]
    mixes = {t: [q for q in queries if q["tenant"] == t] for t in TENANTS}

    wrk = ensure_wrk()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    os.environ["BIZOSAAS_API_WARM_EMBEDDER"] = "1"
    for name, value in (("BIZOSAAS_API_TORCH_THREADS", args.torch_threads),
                        ("BIZOSAAS_API_QUESTION_CACHE", args.question_cache)):  # fmt: skip
        if value is not None:
            os.environ[name] = str(value)
    report["api_settings"] = {n: os.environ.get(n) for n in ("BIZOSAAS_API_TORCH_THREADS",
                                                              "BIZOSAAS_API_QUESTION_CACHE")}  # fmt: skip
    api = start_api(env, port, 2, "30")
    results, splits, scripts = [], {}, []
    try:
        report["warm_s"] = wait_warm(base, key_of[TENANTS[0]], search_path(mixes[TENANTS[0]][0]))
        # Repeated: each tenant's labelled questions over and over, as frontends repeat them
        # (autocomplete, pagination, popular searches); distinct: every question new.
        runs = [(TENANTS[0], 2, "distinct"), (TENANTS[0], 2, "repeated"), (TENANTS[0], 0, "repeated")]
        if args.only == "all":
            runs += [(t, 2, "repeated") for t in TENANTS[1:]]
        for tenant, hops, mix in runs:
            paths = [search_path(q, hops) for q in mixes[tenant]]
            if mix == "distinct":
                splits[f"{tenant} hops={hops}"] = stage_split(base, key_of[tenant], paths, rounds)
                print(json.dumps({tenant: splits[f"{tenant} hops={hops}"]}), flush=True)
            scripts.append(mix_script(paths, distinct=mix == "distinct"))
            results += measure_mix(wrk, base, paths[0], key_of[tenant], duration, repeat, scripts[-1],
                                   tenant=tenant, hops=hops, mix=mix, queries=len(paths))  # fmt: skip
    finally:
        stop(api)
        for script in scripts:
            script.unlink(missing_ok=True)
    report["api"] = results
    report["stages"] = splits
    report["seconds"] = round(time.perf_counter() - started, 1)

    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / "knowledge_api.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")
    print(
        "\n| tenant | hops | questions | clients | req/s | p50 ms | p95 ms | p99 ms | errors | cache hits |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['tenant']} | {r['hops']} | {r['mix']} ({r['queries']}) | {r['connections']} | "
              f"{r['rps']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['errors']} | "
              f"{r['cache_hit_rate']:.0%} |")  # fmt: skip
    print("\n| tenant, hops | embed ms | vector ms | graph ms | rank ms | total ms (median, sequential) |")
    print("|---|---|---|---|---|---|")
    for name, s in splits.items():
        print(
            f"| {name} | {s['embed_ms']} | {s['vector_ms']} | {s['graph_ms']} | {s['rank_ms']} | "
            f"{s['total_ms']} |"
        )


if __name__ == "__main__":
    main()
