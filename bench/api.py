"""Serving API latency and throughput under concurrent load (issue 3's benchmark).

    make bench-api        (or: python -m bench.api [--duration 8] [--repeat 3])

The load comes from `wrk` in a separate process on loopback (installed with apt-get when
missing). The API runs as `uvicorn --workers 2` against the embedded Postgres, on a data folder
of its own (`.data/bench`) with every asset materialized. Two configurations run side by side in
this one process: the shipped one, and a baseline with the credential cache off (every request
then resolves its API key in Postgres first), so the cache's effect is measured, not assumed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
from pathlib import Path

from orchestration.processes import api_command, free_port, stop, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).with_name("wrk_report.lua")
ENDPOINTS = {
    "tenants/me": "/api/brain/tenants/me",
    "admin overview": "/api/brain/admin/tenants/coreldove/overview",
}


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("wrk is missing: apt-get install wrk")
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, capture_output=True)
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk")


def prepare_platform() -> tuple[dict[str, str], str]:
    os.environ.setdefault("BIZOSAAS_DATA_DIR", str(ROOT / ".data" / "bench"))
    from dagster import DagsterInstance

    from orchestration import postgres, runtime, tenants
    from orchestration.definitions import defs
    from orchestration.materialize import execute, plan_runs
    from orchestration.partitions import current_partitions, plan_partition_sync
    from orchestration.settings import load_settings
    from orchestration.warehouse import WarehouseResource
    from serving import keys

    settings = load_settings()
    env = runtime.prepare(settings)
    runtime.export(env)
    seed = tenants.load_seed(settings.tenants_file)
    with postgres.connect(postgres.admin_url(settings), autocommit=True) as conn:
        tenants.seed(conn, seed)
        key, _ = keys.create(conn, "bizoholic", "admin", "bench")
    with DagsterInstance.get() as instance:
        registry = WarehouseResource(database_url=env["BIZOSAAS_WRITER_URL"]).tenant_registry()
        plan_partition_sync(registry, current_partitions(instance)).apply(instance)
        # The seeded tenants only: benchmarks add tenants of their own with their own fixtures.
        seeded = {spec.tenant_id for spec in seed}
        runs = [r for r in plan_runs(defs, instance, None, None) if r.partition_key in (None, *seeded)]
        assert all(o.success for o in execute(defs, instance, runs, progress=lambda _: None))
    return env, key


def start_api(env: dict[str, str], port: int, workers: int, cache_ttl: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        api_command("127.0.0.1", port, workers),
        cwd=ROOT,
        env={**os.environ, **env, "BIZOSAAS_API_AUTH_CACHE_TTL_S": cache_ttl},
    )
    if not wait_for_http(f"http://127.0.0.1:{port}/health", proc, 60):
        stop(proc)
        raise SystemExit("API did not start")
    return proc


def run_wrk(wrk: str, url: str, key: str, connections: int, seconds: int, lua: Path = LUA) -> dict:
    threads = 1  # one wrk thread drives 100 connections fine and leaves the cores to the API
    out = subprocess.run(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "-s",
            str(lua),
            "-H",
            f"X-API-Key: {key}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = json.loads(out.strip().splitlines()[-1])
    report["rps"] = report["requests"] / (report["duration_us"] / 1e6)
    return report


def measure(
    wrk: str, url: str, key: str, duration: int, repeat: int, lua: Path = LUA, **labels
) -> list[dict]:
    """Warm up, then `repeat` wrk runs at 10 and at 100 connections; one row of medians each.
    `lua`: a wrk script ending in wrk_report.lua's `done` (e.g. one that varies the request)."""
    run_wrk(wrk, url, key, 10, 2, lua)  # warm the pools and caches
    rows = []
    for connections in (10, 100):
        runs = [run_wrk(wrk, url, key, connections, duration, lua) for _ in range(repeat)]
        row = {
            **labels,
            "connections": connections,
            "rps": round(statistics.median(r["rps"] for r in runs)),
            "p50_ms": round(statistics.median(r["p50_us"] for r in runs) / 1000, 2),
            "p95_ms": round(statistics.median(r["p95_us"] for r in runs) / 1000, 2),
            "p99_ms": round(statistics.median(r["p99_us"] for r in runs) / 1000, 2),
            "errors": sum(r["socket_errors"] + r["non_2xx"] for r in runs),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    wrk = ensure_wrk()
    env, key = prepare_platform()
    results = []
    for config, ttl in [("shipped (credential cache 30 s)", "30"), ("baseline (no credential cache)", "0")]:
        port = free_port()
        api = start_api(env, port, args.workers, ttl)
        try:
            for name, path in ENDPOINTS.items():
                url = f"http://127.0.0.1:{port}{path}"
                results += measure(wrk, url, key, args.duration, args.repeat, config=config, endpoint=name)
        finally:
            stop(api)

    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "api.json").write_text(
        json.dumps(
            {
                "workers": args.workers,
                "duration_s": args.duration,
                "repeat": args.repeat,
                "cores": os.cpu_count(),
                "results": results,
            },
            indent=2,
        )
    )
    print("\n| config | endpoint | clients | req/s | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['config']} | {r['endpoint']} | {r['connections']} | {r['rps']} | {r['p50_ms']} "
            f"| {r['p95_ms']} | {r['p99_ms']} | {r['errors']} |"
        )


if __name__ == "__main__":
    main()
