"""CRM leads endpoint under load (issue 6), on the bench data folder (`.data/bench`).

    python -m bench.crm_api [--quick]

p50/p95/p99 latency and requests per second of GET /api/brain/django-crm/leads sorted by score
(the default: best first, unscored last) at 10 and 100 concurrent clients (wrk, via bench.api), for

- `bench_crm_api`: a CorelDove-sized tenant (about 24 leads a day over the bundled history's six
  months, ~3.5k leads), and
- `bench_crm_100k`: 100,000 leads (20,000 with --quick),

both seeded with the synthetic history (orchestration.crm_seed) and scored by the deterministic
stand-in (orchestration.crm_stand_ins: a hash of the lead id, written where the lead_scores asset
writes its scores; no model runs here). CorelDove itself is measured too when its CRM assets have
loaded leads. Before the load, the default query's plan is taken as the serving role sees it
(RLS on), to show the page is read from the score index rather than sorted.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import date

import httpx
import psycopg

from bench.api import ROOT, ensure_wrk, measure, prepare_platform, start_api
from bench.crm import score_tenant
from ml.crm.synthetic import generate_history
from orchestration.crm_seed import load_history
from orchestration.processes import free_port, stop
from orchestration.warehouse import WarehouseResource, set_tenant
from serving.routes.crm import _LEAD_COLUMNS

START, END = date(2026, 6, 1), date(2026, 11, 25)  # the bundled history's window
DAYS = (END - START).days
SMALL, LARGE = "bench_crm_api", "bench_crm_100k"
ENDPOINTS = {
    "by score, first page of 50": "/api/brain/django-crm/leads?limit=50",
    "open, min_score=50, by score": "/api/brain/django-crm/leads?limit=50&status=open&min_score=50",
}
TABLES = ("crm_leads", "crm_lead_scores", "crm_lead_records", "crm_lead_outcomes", "crm_touches")


def seed_tenant(admin_url: str, writer_url: str, tenant: str, leads: int) -> dict:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO core.tenants (tenant_id, display_name, kind, parent_tenant_id, tier, domains)
               VALUES (%s, %s, 'client', 'bizoholic', 'starter', '{crm}')
               ON CONFLICT (tenant_id) DO UPDATE SET status = 'active'""",
            (tenant, f"Bench CRM {tenant}"),
        )
    started = time.perf_counter()
    # Weekends bring fewer leads (synthetic's weekday factor averages ~0.93): aim at `leads` people.
    history = generate_history(tenant, START, END, leads_per_day=leads / DAYS / 0.93)
    generated = time.perf_counter() - started
    warehouse = WarehouseResource(database_url=writer_url)
    with warehouse.tenant_transaction(tenant) as conn:
        written = load_history(conn, history)
    seeded = time.perf_counter() - started
    scoring = score_tenant(warehouse, tenant)
    scored = warehouse.query(
        tenant, "SELECT count(*) AS n FROM core.crm_lead_scores WHERE tenant_id = %s", (tenant,)
    )[0]["n"]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for table in TABLES:
            conn.execute(f"VACUUM ANALYZE core.{table}")
    return {
        "leads": written["crm_leads"],
        "scored": scored,
        "touches": written["crm_touches"],
        "seed_s": round(seeded, 1),
        "scoring_s": {name: round(seconds, 1) for name, seconds in scoring.items()},
        "generate_s": round(generated, 1),
    }


def default_plan(serving_url: str, tenant: str) -> dict:
    """The first page's plan and time as the API runs it (serving role, RLS on, tenant set)."""
    total = "(SELECT count(*) FROM core.crm_leads t WHERE t.tenant_id = %s) AS _total"
    query = f"""SELECT {_LEAD_COLUMNS}, {total}
                  FROM core.crm_leads t WHERE t.tenant_id = %s
                 ORDER BY ai_score DESC NULLS LAST, t.tenant_id, t.lead_id LIMIT 50"""
    with psycopg.connect(serving_url) as conn, conn.transaction():
        set_tenant(conn, tenant)
        lines = [r[0] for r in conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query}", (tenant, tenant))]
    plan = "\n".join(lines)
    return {
        "index_driven": "crm_leads_score_idx" in plan and "Sort Key" not in plan,
        "execution_ms": float(next(line for line in lines if "Execution Time" in line).split()[2]),
        "plan": lines,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="20k leads instead of 100k, shorter load runs")
    args = parser.parse_args()
    large = 20_000 if args.quick else 100_000
    duration, repeat = (3, 1) if args.quick else (8, 3)
    started = time.perf_counter()

    env, _ = prepare_platform()
    from orchestration import postgres
    from orchestration.settings import load_settings
    from serving import keys

    admin_url = postgres.admin_url(load_settings())
    report: dict = {"cores": os.cpu_count(), "quick": args.quick, "tenants": {}, "plans": {}}
    for tenant, leads in ((SMALL, round(24 * DAYS * 0.93)), (LARGE, large)):
        report["tenants"][tenant] = seed_tenant(admin_url, env["BIZOSAAS_WRITER_URL"], tenant, leads)
        report["plans"][tenant] = default_plan(env["BIZOSAAS_SERVING_URL"], tenant)
        print(json.dumps({tenant: report["tenants"][tenant]}), flush=True)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        key_of = {t: keys.create(conn, t, "reader", "bench crm api")[0] for t in (SMALL, LARGE)}
        coreldove = conn.execute(
            "SELECT count(*) FROM core.crm_leads WHERE tenant_id = 'coreldove'"
        ).fetchone()[0]
        if coreldove:  # loaded by the CRM assets in prepare_platform
            key_of["coreldove"] = keys.create(conn, "coreldove", "reader", "bench crm api")[0]
    report["coreldove_leads"] = coreldove

    wrk = ensure_wrk()
    results = []
    port = free_port()
    api = start_api(env, port, 2, "30")
    try:
        for tenant, key in key_of.items():
            for name, path in ENDPOINTS.items():
                url = f"http://127.0.0.1:{port}{path}"
                answer = httpx.get(url, headers={"X-API-Key": key}, timeout=30)
                assert answer.status_code == 200, answer.text
                body = answer.json()
                scores = [r["ai_score"] for r in body["data"] if r["ai_score"] is not None]
                assert body["data"] and scores == sorted(scores, reverse=True), f"{tenant} {name}"
                results += measure(
                    wrk,
                    url,
                    key,
                    duration,
                    repeat,
                    tenant=tenant,
                    endpoint=name,
                    matches=body["page"]["total"],
                )
    finally:
        stop(api)
    report["api"] = results
    report["seconds"] = round(time.perf_counter() - started, 1)

    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / "crm_api.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")
    for tenant, plan in report["plans"].items():
        print(f"{tenant}: first page {'from the score index' if plan['index_driven'] else 'SORTED'}, "
              f"{plan['execution_ms']} ms in Postgres")  # fmt: skip
    print("\n| tenant | endpoint | matches | clients | req/s | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['tenant']} | {r['endpoint']} | {r['matches']} | {r['connections']} | {r['rps']} | "
            f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['errors']} |"
        )


if __name__ == "__main__":
    main()
