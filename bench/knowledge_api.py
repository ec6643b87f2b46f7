"""Knowledge search endpoint under load (issue 7), on the bench data folder (`.data/bench`).

    python -m bench.knowledge_api [--quick]

p50/p95/p99 latency and requests per second of GET /api/brain/rag/search at 10 and 100
concurrent clients (wrk, via bench.api.measure), per demo tenant with entities (ThrillRing's
games, Business Directory's businesses and campaigns, CorelDove's products and campaigns), each
over a varied mix of questions (the tenant's labelled queries, fixtures/knowledge/
labelled_queries.yaml, rotated request by request), hybrid (hops=2) and, for comparison on
ThrillRing, vectors only (hops=0). Then the split of the server-side time into embedding the
question, the vector search and the graph expansion with re-ranking, from the endpoint's own
`timings_ms` over sequential requests.

The API runs with 2 workers, each loading all-MiniLM-L6-v2 once at start-up
(BIZOSAAS_API_WARM_EMBEDDER=1). Vectors and graph come from the embeddings and knowledge_graph
assets, which the demo materialization runs for every tenant.
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

from bench.api import LUA, ROOT, ensure_wrk, measure, prepare_platform, start_api
from orchestration.processes import free_port, stop

TENANTS = ("thrillring", "business_directory", "coreldove")
LABELLED = ROOT / "fixtures" / "knowledge" / "labelled_queries.yaml"
SEARCH = "/api/brain/rag/search"


def search_path(query: dict, hops: int = 2) -> str:
    params = {"q": query["q"], "k": 10, "hops": hops}
    if query.get("types"):
        params["types"] = ",".join(query["types"])
    return f"{SEARCH}?{urlencode(params)}"


def mix_script(paths: list[str]) -> Path:
    """A wrk script sending `paths` in turn (each connection its own rotation), then the report."""
    quoted = ", ".join(json.dumps(p) for p in paths)
    script = (
        f"local paths = {{{quoted}}}\nlocal i = 0\n"
        "request = function()\n  i = i % #paths + 1\n  return wrk.format(nil, paths[i])\nend\n"
        + LUA.read_text()
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    return Path(handle.name)


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
        for _ in range(rounds):
            for path in paths:
                timings = client.get(base + path).json()["timings_ms"]
                for stage in ("embed", "vector", "graph", "total"):
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
    args = parser.parse_args()
    duration, repeat, rounds = (3, 1, 2) if args.quick else (8, 3, 5)
    started = time.perf_counter()

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
    api = start_api(env, port, 2, "30")
    results, splits, scripts = [], {}, []
    try:
        report["warm_s"] = wait_warm(base, key_of[TENANTS[0]], search_path(mixes[TENANTS[0]][0]))
        runs = [(t, 2) for t in TENANTS] + [(TENANTS[0], 0)]
        for tenant, hops in runs:
            paths = [search_path(q, hops) for q in mixes[tenant]]
            splits[f"{tenant} hops={hops}"] = stage_split(base, key_of[tenant], paths, rounds)
            print(json.dumps({tenant: splits[f"{tenant} hops={hops}"]}), flush=True)
            scripts.append(mix_script(paths))
            results += measure(wrk, base + paths[0], key_of[tenant], duration, repeat, lua=scripts[-1],
                               tenant=tenant, hops=hops, queries=len(paths))  # fmt: skip
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
    print("\n| tenant | hops | queries | clients | req/s | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['tenant']} | {r['hops']} | {r['queries']} | {r['connections']} | {r['rps']} | "
              f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['errors']} |")  # fmt: skip
    print("\n| tenant, hops | embed ms | vector ms | graph ms | total ms (median, sequential) |")
    print("|---|---|---|---|---|")
    for name, s in splits.items():
        print(f"| {name} | {s['embed_ms']} | {s['vector_ms']} | {s['graph_ms']} | {s['total_ms']} |")


if __name__ == "__main__":
    main()
