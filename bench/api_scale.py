"""Serving API throughput with 1, 2 and 4 uvicorn workers on the same database (issue 9).

    make bench-api-scale   (or: python -m bench.api_scale [--duration 10] [--repeat 3] [--connections 64])

The platform is bench.api's (its own data folder, every asset materialized for the seeded tenants).
Each worker count runs the real API (orchestration.processes.api_command, as `bizosaas serve` does)
and takes the same read mix: tenant routes that read Postgres under RLS, each request as another
client tenant (a master key narrowed with X-Tenant-ID). The load comes from one `wrk` process on
loopback; its CPU time is measured, so a saturated load generator would show. Worker counts are
interleaved within each repeat (machine load from other work then falls on all of them alike);
rows are medians of the repeats, with the ratio to 1 worker.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.api import LUA, ROOT, ensure_wrk, prepare_platform, run_wrk, start_api
from orchestration.processes import free_port, stop

# (tenant, path): list routes of four domains and the tenant and admin reads, as the frontends use them.
MIX = [
    ("coreldove", "/api/brain/tenants/me"),
    ("business_directory", "/api/brain/directory/businesses?limit=20"),
    ("thrillring", "/api/brain/gaming/games?limit=20"),
    ("coreldove", "/api/brain/saleor/products?limit=20"),
    ("bizoholic", "/api/brain/django-crm/leads?limit=20"),
    ("bizoholic", "/api/brain/admin/tenants/coreldove/overview"),
]

# Each request goes to the next route of the mix, as its tenant (the API key header stays).
MIX_LUA = """
local routes = {%s}
local i = 0
local headers = {}
function init(args)
  for n, route in ipairs(routes) do
    local h = {}
    for k, v in pairs(wrk.headers) do h[k] = v end
    h["X-Tenant-ID"] = route[1]
    headers[n] = h
  end
end
request = function()
  i = i %% #routes + 1
  return wrk.format("GET", routes[i][2], headers[i])
end
"""


def mix_script() -> Path:
    routes = ", ".join(f"{{{json.dumps(t)}, {json.dumps(p)}}}" for t, p in MIX)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(MIX_LUA % routes + LUA.read_text())
    return Path(handle.name)


def check_mix(base: str, key: str) -> None:
    """Every route of the mix answers 200 with data: a bench of 4xx answers would measure nothing."""
    for tenant, path in MIX:
        answer = httpx.get(base + path, headers={"X-API-Key": key, "X-Tenant-ID": tenant}, timeout=30)
        if answer.status_code != 200:
            raise SystemExit(f"{path} as {tenant}: HTTP {answer.status_code} {answer.text[:200]}")


def one_run(wrk: str, base: str, key: str, connections: int, seconds: int, script: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    report = run_wrk(wrk, base + MIX[0][1], key, connections, seconds, script)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report["wrk_cpu_share"] = cpu / (report["duration_us"] / 1e6)  # of one core
    report["load_before"] = load
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64, help="concurrent clients")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to compare")
    parser.add_argument("--pool-max", type=int, default=10, help="BIZOSAAS_API_POOL_MAX per worker")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]

    wrk = ensure_wrk()
    env, key = prepare_platform()
    env = {**env, "BIZOSAAS_API_POOL_MAX": str(args.pool_max)}
    script = mix_script()
    runs: dict[int, list[dict]] = {w: [] for w in counts}
    for repeat in range(args.repeat):
        for workers in counts:
            port = free_port()
            api = start_api(env, port, workers, "30")
            base = f"http://127.0.0.1:{port}"
            try:
                check_mix(base, key)
                run_wrk(wrk, base + MIX[0][1], key, args.connections, 2, script)  # warm pools and caches
                report = one_run(wrk, base, key, args.connections, args.duration, script)
            finally:
                stop(api)
            runs[workers].append(report)
            print(json.dumps({"repeat": repeat, "workers": workers, **report}), flush=True)
            time.sleep(1)

    rows = []
    for workers in counts:
        reports = runs[workers]
        rows.append(
            {
                "workers": workers,
                "rps": round(statistics.median(r["rps"] for r in reports)),
                "p50_ms": round(statistics.median(r["p50_us"] for r in reports) / 1000, 2),
                "p95_ms": round(statistics.median(r["p95_us"] for r in reports) / 1000, 2),
                "errors": sum(r["socket_errors"] + r["non_2xx"] for r in reports),
                "requests": sum(r["requests"] for r in reports),
                "wrk_cpu_share": round(statistics.median(r["wrk_cpu_share"] for r in reports), 3),
                "load_before": round(statistics.median(r["load_before"] for r in reports), 2),
            }
        )
    one = rows[0]["rps"]
    for row in rows:
        row["rps_vs_1_worker"] = round(row["rps"] / one, 2)

    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    result = {
        "duration_s": args.duration,
        "repeat": args.repeat,
        "connections": args.connections,
        "pool_max": args.pool_max,
        "cores": os.cpu_count(),
        "mix": [{"tenant": t, "path": p} for t, p in MIX],
        "results": rows,
        "runs": {str(w): r for w, r in runs.items()},
    }
    (out / "api_scale.json").write_text(json.dumps(result, indent=2))
    print("\n| workers | req/s | vs 1 worker | p50 ms | p95 ms | errors | wrk CPU (cores) | load |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['workers']} | {r['rps']} | {r['rps_vs_1_worker']}x | {r['p50_ms']} | {r['p95_ms']} "
            f"| {r['errors']} | {r['wrk_cpu_share']} | {r['load_before']} |"
        )


if __name__ == "__main__":
    main()
