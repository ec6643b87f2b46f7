"""`bizosaas`: what data engineers do by hand, from one entry point.

Every subcommand has --help. Errors print as one line (`error: ...`) with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from orchestration import postgres, processes, tenants
from orchestration.errors import PlatformError
from orchestration.settings import PROJECT_ROOT, SERVING_ROLE, TRANSFORM_ROLE, WRITER_ROLE, load_settings


def _out(message: str = "") -> None:
    print(message, flush=True)


def _prepared_env() -> dict[str, str]:
    from orchestration import runtime

    env = runtime.prepare(load_settings())
    runtime.export(env)
    return env


def _admin_conn():
    settings = load_settings()
    _prepared_env()
    return postgres.connect(postgres.admin_url(settings), autocommit=True)


# --- db ---------------------------------------------------------------------------------------


def cmd_db_start(args) -> int:
    settings = load_settings()
    started = time.perf_counter()
    _prepared_env()
    where = "DATABASE_URL" if settings.database_url else f"embedded, {settings.pgdata}"
    _out(f"postgres ready and migrated ({where}) in {time.perf_counter() - started:.1f}s")
    return 0


def cmd_db_stop(args) -> int:
    settings = load_settings()
    if settings.database_url:
        raise PlatformError("DATABASE_URL is set: the platform does not manage that server")
    _out("stopped" if postgres.stop_embedded(settings) else "not running")
    return 0


def cmd_db_status(args) -> int:
    settings = load_settings()
    if settings.database_url:
        with postgres.connect(settings.database_url) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        _out(f"external server (DATABASE_URL), PostgreSQL {version}")
        return 0
    status = postgres.embedded_status(settings)
    if not status.running:
        _out(f"embedded postgres: stopped (data folder {status.pgdata})")
        return 3
    with postgres.connect(status.url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        applied = None
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (settings.db_name,)).fetchone():
            with postgres.connect(postgres.with_database(status.url, settings.db_name)) as db:
                if db.execute("SELECT to_regclass('ops.schema_migrations')").fetchone()[0]:
                    applied = db.execute("SELECT max(version) FROM ops.schema_migrations").fetchone()[0]
    _out(
        f"embedded postgres: running (pid {status.pid}, PostgreSQL {version}, "
        f"data folder {status.pgdata}, schema version {applied or 'none'})"
    )
    return 0


def cmd_db_url(args) -> int:
    settings = load_settings()
    env = _prepared_env()
    urls = {
        "admin": postgres.admin_url(settings),
        "writer": postgres.role_url(settings, WRITER_ROLE),
        "serving": postgres.role_url(settings, SERVING_ROLE),
        "transform": postgres.role_url(settings, TRANSFORM_ROLE),
        "dagster": env["DAGSTER_PG_URL"],
    }
    _out(urls[args.role])
    return 0


def cmd_env(args) -> int:
    for key, value in sorted(_prepared_env().items()):
        _out(f"export {key}='{value}'")
    return 0


# --- tenants ----------------------------------------------------------------------------------


def cmd_tenants_list(args) -> int:
    with _admin_conn() as conn:
        rows = tenants.list_tenants(conn, include_offboarded=args.all)
    if args.json:
        _out(json.dumps(rows, default=str, indent=2))
        return 0
    header = f"{'tenant':<22}{'kind':<10}{'parent':<14}{'tier':<14}{'status':<12}domains"
    _out(header)
    for r in rows:
        _out(
            f"{r['tenant_id']:<22}{r['kind']:<10}{r['parent_tenant_id'] or '-':<14}"
            f"{r['tier']:<14}{r['status']:<12}{','.join(r['domains']) or '-'}"
        )
    return 0


def cmd_tenants_seed(args) -> int:
    settings = load_settings()
    specs = tenants.load_seed(args.file or settings.tenants_file)
    with _admin_conn() as conn:
        counts = tenants.seed(conn, specs)
    _out(f"tenants: {counts['inserted']} added, {counts['updated']} updated, {counts['unchanged']} unchanged")
    return 0


def cmd_tenants_add(args) -> int:
    try:
        settings_doc = json.loads(args.settings) if args.settings else {}
    except json.JSONDecodeError as exc:
        raise PlatformError(f"--settings is not valid JSON: {exc.msg}") from exc
    spec = tenants.TenantSpec(
        tenant_id=args.tenant_id,
        display_name=args.name or args.tenant_id.replace("_", " ").title(),
        kind=args.kind,
        parent=args.parent if args.kind != "master" else None,
        tier=args.tier,
        domains=tuple(d for d in (args.domains or "").split(",") if d),
        settings=settings_doc,
    ).validate()
    from orchestration.partition_budget import guard_onboarding

    with _admin_conn() as conn:
        for warning in guard_onboarding(conn, [spec]):
            print(f"warning: {warning}", file=sys.stderr)
        outcome = tenants.add(conn, spec)
    _out(
        f"tenant {spec.tenant_id} {outcome}; the tenant sensor adds its partitions within a minute "
        f"(or run `bizosaas materialize --tenant {spec.tenant_id}` now)"
    )
    return 0


def cmd_tenants_remove(args) -> int:
    with _admin_conn() as conn:
        tenants.offboard(conn, args.tenant_id)
    _out(f"tenant {args.tenant_id} offboarded: no new runs, not served; its data is kept")
    return 0


def cmd_tenants_synthetic_add(args) -> int:
    from orchestration import synthetic_tenants

    started = time.perf_counter()
    ids = synthetic_tenants.onboard_synthetic(args.count, seed=args.seed, progress=_out)
    _out(synthetic_tenants.summary(ids, args.seed, started))
    return 0


def cmd_tenants_synthetic_remove(args) -> int:
    from orchestration import synthetic_tenants

    started = time.perf_counter()
    ids = synthetic_tenants.remove_synthetic(progress=_out)
    _out(f"removed {len(ids)} synthetic tenants in {time.perf_counter() - started:.1f}s")
    return 0


def cmd_partitions_budget(args) -> int:
    from orchestration import partition_budget as pb

    budget, share = pb.budget_settings()
    with _admin_conn() as conn:
        counts = pb.tenant_counts(pb.registry_tenants(conn))
    rows = pb.budget_rows(pb.platform_assets(), counts, budget)
    if args.json:
        _out(json.dumps([{**r.__dict__, "partitions": r.partitions, "max_tenants": r.max_tenants,
                          "share": round(r.share, 4)} for r in rows], indent=2))  # fmt: skip
        return 0
    _out(f"partition budget {budget:,} per asset (warn at {share:.0%}); {ENV_NOTE}")
    header = ("asset", "partitions def", "tenants", "days", "partitions", "share", "max tenants")
    _out("{:<34}{:<20}{:>8}{:>7}{:>12}{:>8}{:>13}".format(*header))
    for r in rows:
        flag = "  over" if r.share > 1 else "  warn" if r.share >= share else ""
        _out(f"{r.asset:<34}{r.partitions_def:<20}{r.tenants:>8}{r.days:>7,}{r.partitions:>12,}"
             f"{r.share:>8.1%}{r.max_tenants:>13,}{flag}")  # fmt: skip
    return 0


ENV_NOTE = "set BIZOSAAS_PARTITION_BUDGET / BIZOSAAS_PARTITION_WARN_SHARE to change"


# --- API keys & serving -----------------------------------------------------------------------


def cmd_keys_create(args) -> int:
    from serving import keys

    with _admin_conn() as conn:
        full, key_id = keys.create(conn, args.tenant, args.role, args.label or "")
    _out(full)
    print(f"key {key_id} for {args.tenant} ({args.role}); shown once, store it now", file=sys.stderr)
    return 0


def cmd_keys_list(args) -> int:
    from serving import keys

    with _admin_conn() as conn:
        rows = keys.list_keys(conn, args.tenant)
    _out(f"{'key id':<14}{'tenant':<22}{'role':<10}{'created':<22}{'revoked':<22}label")
    for r in rows:
        revoked = f"{r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else "-"
        _out(
            f"{r['key_id']:<14}{r['tenant_id']:<22}{r['role']:<10}"
            f"{r['created_at']:%Y-%m-%d %H:%M}{'':<6}{revoked:<22}{r['label']}"
        )
    return 0


def cmd_keys_revoke(args) -> int:
    from serving import keys

    with _admin_conn() as conn:
        keys.revoke(conn, args.key_id)
    _out(f"key {args.key_id} revoked (cached lookups expire within 30 s)")
    return 0


def cmd_serve(args) -> int:
    env = _prepared_env()
    _out(f"API on http://{args.host}:{args.port} (docs at /docs), {args.workers} worker(s)")
    proc = subprocess.run(
        processes.api_command(args.host, args.port, args.workers), cwd=PROJECT_ROOT, env={**os.environ, **env}
    )
    return 0 if proc.returncode in (0, -signal.SIGINT) else proc.returncode


# --- materialize & demo -------------------------------------------------------------------------


def _sync_partitions(instance) -> str:
    from orchestration.partitions import current_partitions, plan_partition_sync
    from orchestration.settings import ENV_WRITER_URL
    from orchestration.warehouse import WarehouseResource

    registry = WarehouseResource(database_url=os.environ[ENV_WRITER_URL]).tenant_registry()
    plan = plan_partition_sync(registry, current_partitions(instance))
    plan.apply(instance)
    return plan.summary()


# The demo builds the latest two weeks of every daily asset, so the day-by-day marts show more
# than one day. The replay fixtures cover 2026-11-01..2026-11-24 (`--days 24` loads them all);
# two weeks keep the demo quick, since rate-limit spacing applies in replay too.
DEMO_DAYS = 14


def _materialize(select: str | None, tenant: str | None, days: int = 1) -> int:
    from dagster import DagsterInstance

    from orchestration.definitions import defs
    from orchestration.materialize import execute, plan_runs

    with DagsterInstance.get() as instance:
        _out(f"partitions: {_sync_partitions(instance)}")
        if tenant is not None:
            tenants.validate_tenant_id(tenant)
            known = instance.get_dynamic_partitions("tenant")
            if tenant not in known:
                raise PlatformError(
                    f"tenant {tenant!r} has no partitions (unknown or offboarded); "
                    "see `bizosaas tenants list`"
                )
        runs = plan_runs(defs, instance, select, tenant, days)
        _out(f"materializing {len(runs)} run(s)")
        outcomes = execute(defs, instance, runs, progress=_out)
    failed = [o for o in outcomes if not o.success]
    _out(f"{len(outcomes) - len(failed)} succeeded, {len(failed)} failed")
    return 1 if failed else 0


def cmd_materialize(args) -> int:
    _prepared_env()
    return _materialize(args.select, args.tenant, args.days)


def cmd_demo(args) -> int:
    settings = load_settings()
    started = time.perf_counter()
    env = _prepared_env()
    _out(f"postgres ready ({'DATABASE_URL' if settings.database_url else settings.pgdata})")
    with _admin_conn() as conn:
        counts = tenants.seed(conn, tenants.load_seed(settings.tenants_file))
    _out(f"tenants seeded: {counts}")
    from orchestration.file_drops import seed_demo_drops

    _out(f"demo exports copied into the drop folder: {len(seed_demo_drops(settings))}")
    if not args.skip_materialize and _materialize(None, None, args.days) != 0:
        _out("some runs failed; the UI shows their logs")

    demo_key = _demo_key()
    child_env = {**os.environ, **env}
    dagster_cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
                   "-h", args.host, "-p", str(args.dagster_port)]  # fmt: skip
    dagster = subprocess.Popen(dagster_cmd, cwd=PROJECT_ROOT, env=child_env, start_new_session=True)
    api = subprocess.Popen(processes.api_command(args.host, args.api_port, args.api_workers),
                           cwd=PROJECT_ROOT, env=child_env, start_new_session=True)  # fmt: skip
    ui = f"http://{args.host}:{args.dagster_port}"
    api_url = f"http://{args.host}:{args.api_port}"
    try:
        if not processes.wait_for_http(f"{api_url}/health", api, 60):
            raise PlatformError("the API did not come up; see the output above")
        if not processes.wait_for_http(f"{ui}/server_info", dagster, 180):
            raise PlatformError("the Dagster UI did not come up; see the output above")
        _out(f"\nready in {time.perf_counter() - started:.1f}s")
        _out(f"  Dagster UI   {ui}")
        _out(f"  API          {api_url}/docs")
        _out(f"  Postgres     {postgres.admin_url(settings)}")
        _out(f"  try it       curl -H 'X-API-Key: {demo_key}' {api_url}/api/brain/admin/tenants")
        if args.exit_when_ready:
            return 0
        _out("Ctrl-C stops everything (data is kept in the data folder)")
        while dagster.poll() is None and api.poll() is None:
            time.sleep(0.5)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        processes.stop(api)
        processes.stop(dagster)
        if settings.embedded and not args.keep_db:
            postgres.stop_embedded(settings)
            _out("stopped the API, Dagster and the embedded Postgres")


def _demo_key() -> str:
    """A master-tenant admin key for trying the API, kept in the data folder across demos."""
    from serving import keys

    path = load_settings().data_dir / "demo-api-key"
    if path.exists():
        parsed = keys.parse_key(path.read_text().strip())
        with _admin_conn() as conn:
            if (
                parsed
                and conn.execute(
                    "SELECT 1 FROM ops.api_keys WHERE key_id = %s AND revoked_at IS NULL", (parsed.key_id,)
                ).fetchone()
            ):
                return path.read_text().strip()
    with _admin_conn() as conn:
        full, _ = keys.create(conn, "bizoholic", "admin", "demo")
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(full)
    return full


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of tenants, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bizosaas",
        description="BizOSaaS data platform: warehouse, tenants, materializations, demo.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = sub.add_parser("db", help="the Postgres warehouse").add_subparsers(
        dest="db_command", required=True, metavar="ACTION"
    )
    db.add_parser("start", help="start the embedded server (if used) and migrate").set_defaults(
        func=cmd_db_start
    )
    db.add_parser("stop", help="stop the embedded server cleanly").set_defaults(func=cmd_db_stop)
    db.add_parser("status", help="is the server running, and at which schema version").set_defaults(
        func=cmd_db_status
    )
    url = db.add_parser("url", help="print the connection URL of a role")
    url.add_argument(
        "--role",
        choices=["admin", "writer", "serving", "transform", "dagster"],
        default="writer",
        help="writer: pipelines (RLS-bound); serving: read-only API role; transform: dbt; "
        "admin: migrations and registry; dagster: Dagster's own storage",
    )
    url.set_defaults(func=cmd_db_url)

    sub.add_parser(
        "env", help='print the environment Dagster, dbt and the API run with (eval "$(bizosaas env)")'
    ).set_defaults(func=cmd_env)

    ten = sub.add_parser("tenants", help="the tenant registry").add_subparsers(
        dest="tenants_command", required=True, metavar="ACTION"
    )
    lst = ten.add_parser("list", help="list tenants")
    lst.add_argument("--all", action="store_true", help="include offboarded tenants")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(func=cmd_tenants_list)
    seed = ten.add_parser("seed", help="load the tenants file (tenants.yaml) into the registry")
    seed.add_argument("--file", type=lambda p: __import__("pathlib").Path(p), help="another tenants file")
    seed.set_defaults(func=cmd_tenants_seed)
    add = ten.add_parser("add", help="onboard a tenant")
    add.add_argument("tenant_id", help="lowercase id, e.g. acme_dental")
    add.add_argument("--name", help="display name (default: from the id)")
    add.add_argument("--kind", choices=tenants.KINDS, default="client")
    add.add_argument("--parent", default="bizoholic", help="master tenant (default bizoholic)")
    add.add_argument("--tier", choices=tenants.TIERS, default="starter")
    add.add_argument("--domains", help=f"comma-separated, from {','.join(tenants.DOMAINS)}")
    add.add_argument("--settings", help="tenant settings as a JSON object")
    add.set_defaults(func=cmd_tenants_add)
    rm = ten.add_parser("remove", help="offboard a tenant (data kept, no new runs, not served)")
    rm.add_argument("tenant_id")
    rm.set_defaults(func=cmd_tenants_remove)

    syn = ten.add_parser(
        "synthetic", help="synthetic tenants (synth_0001..) with replay data, for scale and soak tests"
    ).add_subparsers(dest="synthetic_command", required=True, metavar="ACTION")
    sadd = syn.add_parser("add", help="onboard synth_0001..synth_<count> (the missing ones)")
    sadd.add_argument("--count", type=_count, required=True, help="how many synthetic tenants in all")
    sadd.add_argument("--seed", type=int, default=0, help="population seed (default 0)")
    sadd.set_defaults(func=cmd_tenants_synthetic_add)
    syn.add_parser(
        "remove", help="remove every synth_ tenant: registry, data, replay data, drops, partitions"
    ).set_defaults(func=cmd_tenants_synthetic_remove)

    parts = sub.add_parser("partitions", help="Dagster partitions").add_subparsers(
        dest="partitions_command", required=True, metavar="ACTION"
    )
    pbud = parts.add_parser("budget", help="tenants x days per asset against the partition budget")
    pbud.add_argument("--json", action="store_true", help="print JSON")
    pbud.set_defaults(func=cmd_partitions_budget)

    mat = sub.add_parser("materialize", help="materialize assets on the Dagster instance")
    mat.add_argument("--tenant", help="only this tenant's partitions")
    mat.add_argument(
        "--select",
        help="Dagster asset selection, e.g. 'key:tenant_profile' or 'group:tenancy' (default: every asset)",
    )
    mat.add_argument(
        "--days",
        type=_positive_int,
        default=1,
        help="daily assets: build the latest N days (default 1), one run per tenant where the asset allows",
    )
    mat.set_defaults(func=cmd_materialize)

    keys_parser = sub.add_parser("keys", help="API keys for the serving API").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    kc = keys_parser.add_parser("create", help="create a key (printed once) for a tenant")
    kc.add_argument("--tenant", required=True, help="tenant id the key acts as")
    kc.add_argument("--role", choices=["reader", "admin", "approver"], default="reader")
    kc.add_argument("--label", help="free text to recognise the key by")
    kc.set_defaults(func=cmd_keys_create)
    kl = keys_parser.add_parser("list", help="list keys (never their secrets)")
    kl.add_argument("--tenant", help="only this tenant's keys")
    kl.set_defaults(func=cmd_keys_list)
    kr = keys_parser.add_parser("revoke", help="revoke a key by its id")
    kr.add_argument("key_id")
    kr.set_defaults(func=cmd_keys_revoke)

    serve = sub.add_parser("serve", help="start the serving API (docs at /docs)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="start Postgres, seed, materialize everything, start the UI")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--dagster-port", type=int, default=3000)
    demo.add_argument("--api-port", type=int, default=8000)
    demo.add_argument("--api-workers", type=int, default=2)
    demo.add_argument("--skip-materialize", action="store_true", help="only start the services")
    demo.add_argument(
        "--days",
        type=_positive_int,
        default=DEMO_DAYS,
        help=f"daily assets: build the latest N days (default {DEMO_DAYS})",
    )
    demo.add_argument("--keep-db", action="store_true", help="leave Postgres running on exit")
    demo.add_argument(
        "--exit-when-ready", action="store_true", help="stop as soon as everything is up (for benchmarks)"
    )
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # last resort: still one line, with the type for bug reports
        import psycopg

        if isinstance(exc, psycopg.Error):
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            print(f"error: database: {detail}", file=sys.stderr)
        else:
            print(
                f"error: {type(exc).__name__}: {exc} (set BIZOSAAS_DEBUG=1 for a traceback)", file=sys.stderr
            )
        if os.environ.get("BIZOSAAS_DEBUG"):
            raise
        return 1


if __name__ == "__main__":
    sys.exit(main())
