"""Soak: schedules, sensors and API reads for many tenants at once, with injected source faults.

    make soak                                   (30 minutes, 50 tenants)
    python -m bench.soak --minutes 3 --tenants 10

On a fresh data folder (default /tmp/bizosaas-soak): start Postgres, onboard the seeded tenants
plus synthetic ones up to --tenants, materialize everything once with no faults (the baseline:
row counts per tenant and table, materialized partitions per asset). Then, with
BIZOSAAS_REPLAY_FAULTS set for every Dagster process, run the real stack: one code server, the
dagster-daemon (sensors, the run queue, and the schedules turned on at their real cron times) and
the webserver, plus the API (several uvicorn workers) under a load generator reading a mix of
tenant routes. Cron times do not come in 30 minutes, so the harness fires the schedules in
waves: each wave evaluates every schedule in the code server at a tick of the replay date (the
day the baseline built) and submits its run requests through the instance's queued run
coordinator with the daemon's own run-creation call; the daemon then dequeues and launches them
like any scheduled run. A wave starts when the queue has drained below --max-backlog. Memory
(RSS and PSS) of every process group is sampled every --sample-s seconds.

Afterwards (faults off): one catch-up run, in this process, of every (assets, partition) whose
latest soak run failed or was cancelled, then the checks: no row lost or duplicated against the
baseline, no partition missing, every failed run listed with its reason, memory bounded, and the
API's error rate under 0.5%. Results: bench/results/soak.json and a summary table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench.soak_stats import (
    API_ERROR_BUDGET,
    api_error_rate,
    compare_counts,
    growth_verdict,
    missing_partitions,
    schedule_tick,
    utc,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "soak.json"
DEFAULT_FAULTS = "429=0.03,timeout=0.02,malformed=0.02"
MARKER = ".bizosaas-soak"
SOAK_TAG = "bizosaas/soak_wave"
# Tables that keep history by design (a row per build, per received record, per decision): they
# may grow during the soak, never shrink. Every other core table must match the baseline exactly.
ACCUMULATING = {
    "core.kg_growth",
    "core.crm_model_registry",
    "core.crm_lead_records",
    "core.businesses_history",
    "core.trading_decisions",
}
# Columns that say when or by which run a row was written, not what it is.
BOOKKEEPING_SUFFIXES = ("_at", "run_id", "_seen", "_ms")
# The API routes read per domain (the knowledge search is left out: it loads the embedding model
# into every worker, which would measure the model's memory rather than the API's).
ROUTES = {
    None: ["/api/brain/tenants/me"],
    "directory": ["/api/brain/directory/businesses?limit=20"],
    "gaming": ["/api/brain/gaming/games?limit=20", "/api/brain/gaming/news?limit=20",
               "/api/brain/gaming/players", "/api/brain/gaming/tournaments"],
    "ecommerce": ["/api/brain/saleor/products?limit=20", "/api/brain/saleor/orders?limit=20"],
    "crm": ["/api/brain/django-crm/leads?limit=20", "/api/brain/crm/campaigns/insights"],
}  # fmt: skip
ADMIN_ROUTES = ["/api/brain/admin/tenants", "/api/brain/admin/tenants/{tenant}/overview"]


def log(message: str) -> None:
    print(f"[soak {datetime.now():%H:%M:%S}] {message}", flush=True)


# --- processes ---------------------------------------------------------------------------------


class Stack:
    """Every process the soak starts, stopped in reverse order whatever happens."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        out = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        self.procs[name] = proc
        return proc

    def stop(self, name: str, timeout_s: float = 30) -> None:
        from orchestration.processes import stop

        proc = self.procs.pop(name, None)
        if proc is not None:
            stop(proc, timeout_s)
            # Run workers of a code server may outlive it: the whole session goes.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):
            try:
                self.stop(name)
            except Exception as exc:  # keep stopping the others
                log(f"could not stop {name}: {exc}")


def wait_for_code_server(port: int, proc: subprocess.Popen, timeout_s: float = 300) -> None:
    from dagster._grpc.client import DagsterGrpcClient

    client = DagsterGrpcClient(port=port, host="127.0.0.1")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the code server exited; see its log in the soak folder")
        # Port first: the gRPC client logs every refused connection while the server loads.
        with socket.socket() as probe:
            listening = probe.connect_ex(("127.0.0.1", port)) == 0
        try:
            if listening and client.health_check_query() == "SERVING":
                return
        except Exception:
            pass
        time.sleep(1)
    raise RuntimeError("the code server did not come up")


# --- memory sampling -----------------------------------------------------------------------------


def _group_of(proc: psutil.Process, roots: dict[int, str], pg_pids: set[int]) -> str | None:
    if proc.pid in pg_pids:
        return "postgres"
    cmd = " ".join(proc.cmdline())
    if "execute_run" in cmd or "execute_step" in cmd or " api execute" in cmd or "/dbt " in cmd:
        return "runs"
    for parent in [proc, *proc.parents()]:
        if parent.pid in roots:
            # The code server launches each run in a child process of its own.
            return (
                "runs" if roots[parent.pid] == "code_server" and parent.pid != proc.pid else roots[parent.pid]
            )
        if "execute_run" in " ".join(parent.cmdline()):
            return "runs"
    return None


class Sampler(threading.Thread):
    """RSS and PSS of each process group every `interval` seconds."""

    def __init__(self, stack: Stack, postmaster_pid: int | None, interval: float):
        super().__init__(daemon=True)
        self.stack, self.postmaster, self.interval = stack, postmaster_pid, interval
        self.samples: list[dict] = []
        self.run_peaks: list[float] = []
        self.halt = threading.Event()
        self.t0 = time.monotonic()

    def sample(self) -> dict:
        roots = {p.pid: name for name, p in self.stack.procs.items()}
        pg_pids: set[int] = set()
        candidates: list[psutil.Process] = []
        if self.postmaster:
            try:
                pm = psutil.Process(self.postmaster)
                pg_pids = {pm.pid, *(c.pid for c in pm.children(recursive=True))}
                candidates += [pm, *pm.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        for proc in self.stack.procs.values():
            try:
                root = psutil.Process(proc.pid)
                candidates += [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        groups: dict[str, dict[str, float]] = defaultdict(lambda: {"rss_mb": 0.0, "pss_mb": 0.0, "n": 0})
        for proc in {p.pid: p for p in candidates}.values():
            try:
                group = _group_of(proc, roots, pg_pids)
                if group is None:
                    continue
                mem = proc.memory_full_info()
                g = groups[group]
                g["rss_mb"] += mem.rss / 2**20
                g["pss_mb"] += getattr(mem, "pss", mem.rss) / 2**20
                g["n"] += 1
                if group == "runs":
                    self.run_peaks.append(mem.rss / 2**20)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        row = {"t": round(time.monotonic() - self.t0, 1), **{k: {m: round(v, 1) for m, v in g.items()}
                                                             for k, g in groups.items()}}  # fmt: skip
        self.samples.append(row)
        return row

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                self.sample()
            except Exception as exc:  # a sampling hiccup must not end the soak
                log(f"memory sample failed: {exc}")
            self.halt.wait(self.interval)

    def verdicts(self, groups: list[str]) -> dict:
        out = {}
        for group in groups:
            points = [(s["t"], s[group]["pss_mb"]) for s in self.samples if group in s]
            out[group] = growth_verdict(points)
        peaks = sorted(self.run_peaks)
        out["runs"] = {
            "samples": len(peaks),
            "median_process_rss_mb": round(peaks[len(peaks) // 2], 1) if peaks else None,
            "peak_process_rss_mb": round(peaks[-1], 1) if peaks else None,
            "peak_group_pss_mb": round(
                max((s["runs"]["pss_mb"] for s in self.samples if "runs" in s), default=0.0), 1
            ),  # fmt: skip
        }
        return out


# --- platform set-up ----------------------------------------------------------------------------


def fresh_data_dir(path: Path) -> None:
    if path.exists():
        if not (path / MARKER).exists() and any(path.iterdir()):
            raise SystemExit(f"{path} exists and is not a soak folder; pass another --data-dir")
        from orchestration import postgres
        from orchestration.settings import load_settings

        postgres.stop_embedded(load_settings())
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / MARKER).write_text("made by bench.soak; removed by the next soak\n")


def onboard(settings, count: int) -> list[str]:
    from orchestration import postgres, tenants

    with postgres.connect(postgres.admin_url(settings), autocommit=True) as conn:
        seeded = tenants.seed(conn, tenants.load_seed(settings.tenants_file))
    log(f"seeded tenants: {seeded}")
    with postgres.connect(postgres.admin_url(settings), autocommit=True) as conn:
        have = len(tenants.list_tenants(conn))
    wanted = max(0, count - have)
    if wanted:
        try:
            from orchestration.synthetic_tenants import onboard_synthetic
        except ImportError:
            log(f"no synthetic-tenant generator in this tree: soaking {have} tenants, not {count}")
        else:
            ids = onboard_synthetic(wanted, progress=log)
            log(f"onboarded {len(ids)} synthetic tenants")
    with postgres.connect(postgres.admin_url(settings), autocommit=True) as conn:
        return [r["tenant_id"] for r in tenants.list_tenants(conn)]


class Interrupts:
    """Sees Ctrl-C and SIGTERM even while a run executes in this process: Dagster swaps the
    handlers during a run (an interrupt then only fails that run), but the C-level handler still
    writes every signal to the wakeup fd."""

    def __init__(self):
        self.read_fd, write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(write_fd, False)
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)

    def check(self) -> None:
        try:
            data = os.read(self.read_fd, 256)
        except BlockingIOError:
            return
        if any(b in (signal.SIGINT, signal.SIGTERM) for b in data):
            raise KeyboardInterrupt


INTERRUPTS: Interrupts | None = None


def materialize_all(defs, instance, runs=None) -> list:
    from orchestration.materialize import execute, plan_runs

    runs = runs if runs is not None else plan_runs(defs, instance, None, None)

    def progress(line: str) -> None:
        if INTERRUPTS is not None:
            INTERRUPTS.check()
        log(f"  {line}")

    return execute(defs, instance, runs, progress=progress)


def table_counts(admin_url: str) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """Rows per (table, tenant) of every tenant table, and duplicate natural keys per table."""
    from orchestration import postgres

    counts: dict[tuple[str, str], int] = {}
    duplicates: dict[str, int] = {}
    with postgres.connect(admin_url, autocommit=True) as conn:
        tables = conn.execute(
            """SELECT n.nspname, c.relname
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
                WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
                  AND n.nspname IN ('core', 'raw', 'ops') ORDER BY 1, 2"""
        ).fetchall()
        for schema, name in tables:
            table = f"{schema}.{name}"
            for tenant, n in conn.execute(f'SELECT tenant_id, count(*) FROM "{schema}"."{name}" GROUP BY 1'):
                counts[(table, tenant)] = n
            if schema == "core":
                cols = natural_key(conn, schema, name)
                row = ", ".join(f'"{c}"' for c in cols)
                duplicates[table] = conn.execute(
                    f'SELECT count(*) - count(DISTINCT md5(ROW({row})::text)) FROM "{schema}"."{name}"'
                ).fetchone()[0]
    return counts, duplicates


def natural_key(conn, schema: str, name: str) -> list[str]:
    """The primary key when it is natural (several columns, or one without a default); else every
    column that says what a row is (not its surrogate id or when/by which run it was written)."""
    pk = [r[0] for r in conn.execute(
        """SELECT a.attname FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = %s::regclass AND i.indisprimary""", (f'"{schema}"."{name}"',))]  # fmt: skip
    columns = conn.execute(
        """SELECT column_name, column_default, is_identity FROM information_schema.columns
            WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position""",
        (schema, name),
    ).fetchall()
    defaults = {c: (d is not None or ident == "YES") for c, d, ident in columns}
    if len(pk) > 1 or (pk and not defaults.get(pk[0])):
        return pk
    return [c for c, _, _ in columns if c not in pk and not c.endswith(BOOKKEEPING_SUFFIXES)]


def materialized_partitions(defs, instance) -> dict[str, set[str]]:
    graph = defs.resolve_asset_graph()
    out = {}
    for key in graph.materializable_asset_keys:
        if graph.get(key).partitions_def is not None:
            out[key.to_user_string()] = set(instance.get_materialized_partitions(key))
    return out


def api_plan(settings, tenant_ids: list[str]) -> list[dict]:
    from orchestration import postgres, tenants
    from serving import keys

    plan = []
    with postgres.connect(postgres.admin_url(settings), autocommit=True) as conn:
        rows = {r["tenant_id"]: r for r in tenants.list_tenants(conn)}
        for tenant_id in tenant_ids:
            row = rows[tenant_id]
            key, _ = keys.create(conn, tenant_id, "reader", "soak")
            paths = [p for d in (None, *row["domains"]) for p in ROUTES.get(d, [])]
            plan.append({"tenant": tenant_id, "key": key, "paths": paths})
        master, _ = keys.create(conn, "bizoholic", "admin", "soak")
    clients = [t for t in tenant_ids if rows[t]["kind"] != "master"][:10]
    plan.append({"tenant": "bizoholic", "key": master,
                 "paths": [p.format(tenant=t) for p in ADMIN_ROUTES for t in clients]})  # fmt: skip
    return plan


# --- schedule waves -----------------------------------------------------------------------------


class Waves:
    """Fires every schedule at a tick of the replay date through the daemon's own run creation."""

    def __init__(self, instance, workspace_yaml: Path, day: datetime):
        from dagster._core.workspace.context import WorkspaceProcessContext
        from dagster._core.workspace.load_target import WorkspaceFileTarget

        self.instance, self.day = instance, day
        self.context = WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(workspace_yaml)]))
        self.count = 0

    def schedules(self):
        request = self.context.create_request_context()
        for entry in request.get_code_location_entries().values():
            location = entry.code_location
            for repo in location.get_repositories().values():
                for schedule in repo.get_schedules():
                    yield location, repo, schedule

    def turn_on_schedules(self) -> list[str]:
        """The daemon runs them at their real cron times too (hourly ones fire within a soak)."""
        names = []
        for _, _, schedule in self.schedules():
            state = self.instance.get_instigator_state(schedule.get_remote_origin_id(), schedule.selector_id)
            if state is None or not state.is_running:
                self.instance.start_schedule(schedule)
            names.append(schedule.name)
        return names

    def fire(self) -> dict[str, int]:
        from dagster._core.definitions.selector import JobSubsetSelector
        from dagster._core.definitions.timestamp import TimestampWithTimezone
        from dagster._scheduler.scheduler import _create_scheduler_run

        self.count += 1
        submitted: dict[str, int] = {}
        for location, repo, schedule in self.schedules():
            tick = schedule_tick(schedule.cron_schedule, schedule.execution_timezone or "UTC", self.day,
                                 self.count - 1)  # fmt: skip
            data = location.get_schedule_execution_data(
                instance=self.instance,
                repository_handle=repo.handle,
                schedule_name=schedule.name,
                scheduled_execution_time=TimestampWithTimezone(tick.timestamp(), "UTC"),
                log_key=None,
            )
            n = 0
            for request in data.run_requests or []:
                request = request.with_replaced_attrs(tags={**request.tags, SOAK_TAG: str(self.count)})
                job = location.get_job(
                    JobSubsetSelector(
                        location_name=location.name,
                        repository_name=repo.name,
                        job_name=schedule.job_name,
                        op_selection=schedule.op_selection,
                        asset_selection=request.asset_selection,
                        asset_check_selection=request.asset_check_keys,
                    )
                )
                run = _create_scheduler_run(self.instance, tick, location, schedule, job, request)
                self.instance.submit_run(run.run_id, self.context.create_request_context())
                n += 1
            submitted[schedule.name] = n
        return submitted

    def close(self) -> None:
        self.context.__exit__(None, None, None)


# --- run bookkeeping ------------------------------------------------------------------------------


def run_partition(run) -> tuple[str, ...]:
    tags = run.tags
    if "dagster/asset_partition_range_start" in tags:
        return (
            "range",
            tags["dagster/asset_partition_range_start"],
            tags["dagster/asset_partition_range_end"],
        )
    if "dagster/partition" in tags:
        return ("key", tags["dagster/partition"])
    return ("none",)


def _planned_target(planned) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A PlannedRun as (assets, partition), the way soak runs are grouped."""
    assets = tuple(sorted(k.to_user_string() for k in planned.assets))
    if planned.partition_range:
        return assets, ("range", *(str(k) for k in planned.partition_range))
    return assets, ("key", str(planned.partition_key)) if planned.partition_key else ("none",)


def _label(target) -> str:
    assets, partition = target
    return f"{', '.join(assets)} @ {':'.join(partition[1:]) or '-'}"


def _known(target, known_bad) -> bool:
    """Whether a soak run's target overlaps a run that failed in the baseline, without faults
    (same partition, an asset in common): jobs select fewer assets than the baseline's runs."""
    assets, partition = target
    return any(p == partition and set(a) & set(assets) for a, p in known_bad)


def run_assets(defs, run) -> tuple[str, ...]:
    if run.asset_selection:
        keys = run.asset_selection
    else:
        try:
            keys = defs.resolve_job_def(run.job_name).asset_layer.selected_asset_keys
        except Exception:
            keys = []
    return tuple(sorted(k.to_user_string() for k in keys))


def run_failure(instance, run_id: str) -> str:
    """The reason a failed run shows, read from its event log (as the catch-up CLI prints it)."""
    from dagster import DagsterEventType

    from orchestration.materialize import failure_reason

    records = instance.all_logs(run_id, of_type={DagsterEventType.STEP_FAILURE, DagsterEventType.RUN_FAILURE})
    if not records:
        return ""
    return failure_reason([r.dagster_event for r in records])[:300]


def soak_runs(instance, since: float) -> list:
    from dagster import RunsFilter

    records = instance.get_run_records(RunsFilter(created_after=datetime.fromtimestamp(since, UTC)))
    return [r.dagster_run for r in sorted(records, key=lambda r: r.storage_id)]


def queue_depth(instance) -> dict[str, int]:
    from dagster import DagsterRunStatus, RunsFilter

    statuses = [DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED,
                DagsterRunStatus.NOT_STARTED]  # fmt: skip
    return {s.value.lower(): instance.get_runs_count(RunsFilter(statuses=[s])) for s in statuses}


def catch_up_runs(defs, runs_by_target: dict, instance):
    """PlannedRuns for every (assets, partition) whose latest soak run did not succeed."""
    from dagster import AssetKey, MultiPartitionKey

    from orchestration.materialize import PlannedRun

    graph = defs.resolve_asset_graph()
    order = {k: i for i, k in enumerate(graph.toposorted_asset_keys)}

    def mkey(text: str) -> MultiPartitionKey | str:
        if "|" not in text:
            return text
        day, tenant = text.split("|")  # dimensions in name order: date, tenant
        return MultiPartitionKey({"date": day, "tenant": tenant})

    planned = []
    for (assets, partition), _run in runs_by_target.items():
        if not assets:
            continue  # an op job (retention_job): it maintains, it writes no data to catch up on
        keys = [AssetKey.from_user_string(a) for a in assets]
        if partition[0] == "range":
            planned.append(PlannedRun(keys, None, (mkey(partition[1]), mkey(partition[2]))))
        else:
            planned.append(PlannedRun(keys, mkey(partition[1]) if partition[0] == "key" else None))
    # A run goes after every run holding one of its assets' ancestors: the dbt models run last.
    planned.sort(key=lambda p: max(order.get(k, 0) for k in p.assets))
    return planned


# --- main -------------------------------------------------------------------------------------


def main() -> int:  # noqa: C901 - one linear script with its clean-up
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the faulty phase")
    parser.add_argument("--tenants", type=int, default=50, help="tenants in all (seeded + synthetic)")
    parser.add_argument("--faults", default=DEFAULT_FAULTS, help="BIZOSAAS_REPLAY_FAULTS for the soak")
    parser.add_argument("--fault-seed", type=int, default=9)
    parser.add_argument("--api-workers", type=int, default=3)
    parser.add_argument("--api-clients", type=int, default=4, help="concurrent API clients")
    parser.add_argument("--max-backlog", type=int, default=10, help="fire a wave when fewer runs wait")
    parser.add_argument("--drain-minutes", type=float, default=10.0, help="wait for running runs at the end")
    parser.add_argument("--sample-s", type=float, default=15.0, help="memory sampling interval")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/bizosaas-soak"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from orchestration.replay import parse_faults

    parse_faults(args.faults)  # a typo fails now, not 10 minutes in
    os.environ["BIZOSAAS_DATA_DIR"] = str(args.data_dir)
    os.environ["BIZOSAAS_SOURCE_MODE"] = "replay"
    for name in ("BIZOSAAS_REPLAY_FAULTS", "BIZOSAAS_REPLAY_FAULT_SEED", "DATABASE_URL"):
        os.environ.pop(name, None)  # the baseline and the catch-up run without faults
    signal.signal(signal.SIGTERM, _interrupt)
    global INTERRUPTS
    INTERRUPTS = Interrupts()

    fresh_data_dir(args.data_dir)
    stack = Stack(args.data_dir)
    result: dict = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "load_at_start": os.getloadavg(),
    }
    settings = None
    sampler = waves = None
    try:
        from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

        from orchestration import postgres, runtime
        from orchestration.file_drops import seed_demo_drops
        from orchestration.partitions import current_partitions, plan_partition_sync
        from orchestration.processes import api_command, free_port, wait_for_http
        from orchestration.settings import load_settings, replay_date
        from orchestration.warehouse import WarehouseResource

        settings = load_settings()
        t0 = time.perf_counter()
        env = runtime.prepare(settings)
        runtime.export(env)
        log(f"postgres ready in {time.perf_counter() - t0:.1f}s ({settings.data_dir})")
        tenant_ids = onboard(settings, args.tenants)
        seed_demo_drops(settings)
        admin = postgres.admin_url(settings)
        from orchestration.definitions import defs

        instance = DagsterInstance.get()
        registry = WarehouseResource(database_url=env["BIZOSAAS_WRITER_URL"]).tenant_registry()
        plan_partition_sync(registry, current_partitions(instance)).apply(instance)

        # 1. the clean baseline
        log(f"baseline: materializing every asset for {len(tenant_ids)} tenants, no faults")
        t0 = time.perf_counter()
        # As many days as the widest schedule window (the orders schedule re-reads the days before
        # yesterday), so every partition the soak writes has a clean reference to compare with.
        from assets.ecommerce import ORDERS_LOOKBACK_DAYS
        from orchestration.materialize import plan_runs

        outcomes = materialize_all(
            defs, instance, plan_runs(defs, instance, None, None, ORDERS_LOOKBACK_DAYS + 1)
        )
        # Runs that fail without any fault (a tenant's rejected export, say) fail the same way in
        # the soak and the catch-up: they are listed, and not counted against the faults.
        known_bad = {_planned_target(o.run): run_failure(instance, o.run_id) for o in outcomes
                     if not o.success}  # fmt: skip
        result["baseline"] = {"runs": len(outcomes), "seconds": round(time.perf_counter() - t0),
                              "failed_without_faults": [{"target": _label(t), "reason": r}
                                                        for t, r in known_bad.items()]}  # fmt: skip
        if known_bad:
            log(f"baseline: {len(known_bad)} runs fail without faults (listed in the results; not held "
                "against the soak)")  # fmt: skip
        base_counts, base_dups = table_counts(admin)
        base_parts = materialized_partitions(defs, instance)
        log(f"baseline: {len(outcomes)} runs in {result['baseline']['seconds']}s; "
            f"{sum(base_counts.values()):,} rows in {len({t for t, _ in base_counts})} tables")  # fmt: skip

        # 2. the stack, with faults on for every Dagster process
        faulty = {**os.environ, **env, "BIZOSAAS_REPLAY_FAULTS": args.faults,
                  "BIZOSAAS_REPLAY_FAULT_SEED": str(args.fault_seed)}  # fmt: skip
        grpc_port, ui_port, api_port = free_port(), free_port(), free_port()
        workspace = args.data_dir / "workspace.yaml"
        workspace.write_text(
            f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {grpc_port}\n"
            "      location_name: bizosaas\n"
        )
        python = sys.executable
        log("starting the code server, dagster-daemon, webserver, API and load generator")
        code = stack.start("code_server", [python, "-m", "dagster", "code-server", "start", "-h", "127.0.0.1",
                           "-p", str(grpc_port), "-m", "orchestration.definitions", "-a", "defs",
                           "--location-name", "bizosaas", "-d", str(ROOT),
                           "--use-python-environment-entry-point"], faulty)  # fmt: skip
        wait_for_code_server(grpc_port, code)
        soak_started = time.time()  # sensors start submitting as soon as the daemon is up
        stack.start(
            "daemon", [str(Path(python).parent / "dagster-daemon"), "run", "-w", str(workspace)], faulty
        )
        ui = stack.start("webserver", [python, "-m", "dagster_webserver", "-w", str(workspace),
                         "-h", "127.0.0.1", "-p", str(ui_port)], faulty)  # fmt: skip
        api_env = {**os.environ, **env}
        api = stack.start("api", api_command("127.0.0.1", api_port, args.api_workers), api_env)
        if not wait_for_http(f"http://127.0.0.1:{api_port}/health", api, 120):
            raise RuntimeError("the API did not come up; see api.log in the soak folder")
        if not wait_for_http(f"http://127.0.0.1:{ui_port}/server_info", ui, 300):
            raise RuntimeError("the webserver did not come up; see webserver.log in the soak folder")
        plan_file = args.data_dir / "api-plan.json"
        plan_file.write_text(json.dumps(api_plan(settings, tenant_ids)))
        load_out = args.data_dir / "api-load.json"
        stack.start("load_generator", [python, "-m", "bench.soak_load", "--url", f"http://127.0.0.1:{api_port}",
                    "--plan", str(plan_file), "--out", str(load_out),
                    "--clients", str(args.api_clients)], api_env)  # fmt: skip
        postmaster = postgres.embedded_status(settings).pid if settings.embedded else None
        sampler = Sampler(stack, postmaster, args.sample_s)
        sampler.start()

        waves = Waves(instance, workspace, utc(replay_date()))
        log(f"schedules on in the daemon: {', '.join(waves.turn_on_schedules())}")
        deadline = time.monotonic() + args.minutes * 60
        last_progress = 0.0
        wave_log = []
        log(f"soak: {args.minutes:g} min with faults {args.faults}; Dagster UI http://127.0.0.1:{ui_port}")
        while time.monotonic() < deadline:
            depth = queue_depth(instance)
            if depth["queued"] + depth["not_started"] < args.max_backlog:
                submitted = waves.fire()
                wave_log.append({"wave": waves.count, "t_s": round(time.time() - soak_started),
                                 "runs": sum(submitted.values()), "by_schedule": submitted})  # fmt: skip
                log(f"wave {waves.count}: {sum(submitted.values())} runs submitted")
            INTERRUPTS.check()
            if time.monotonic() - last_progress >= 60:
                last_progress = time.monotonic()
                progress_line(instance, soak_started, load_out, sampler, depth)
            time.sleep(5)

        # 3. wind down: no new waves; the daemon finishes what runs, queued runs are cancelled
        log("soak time is up: stopping the load, draining running runs")
        stack.stop("load_generator")
        waves.close()
        waves = None
        for run in instance.get_runs(
            RunsFilter(statuses=[DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED])
        ):
            instance.report_run_canceled(run, message="cancelled: the soak ended before it started")
        drain_until = time.monotonic() + args.drain_minutes * 60
        while time.monotonic() < drain_until:
            depth = queue_depth(instance)
            if depth["started"] + depth["starting"] + depth["queued"] == 0:
                break
            time.sleep(5)
        sampler.halt.set()
        sampler.join(timeout=30)
        for name in ("daemon", "webserver", "api", "code_server"):
            stack.stop(name)
        for run in instance.get_runs(
            RunsFilter(
                statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.QUEUED]
            )
        ):
            instance.report_run_canceled(run, message="cancelled: still running when the soak stopped")
        result["soak_seconds"] = round(time.time() - soak_started)
        result["waves"] = wave_log

        # 4. what happened to every run of the soak
        runs = soak_runs(instance, soak_started)
        statuses = Counter(r.status.value for r in runs)
        latest: dict = {}
        failures = []
        for run in runs:
            target = (run_assets(defs, run), run_partition(run))
            latest[target] = run
            if run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED) and not _known(
                target, known_bad
            ):
                reason = run_failure(instance, run.run_id)
                if not reason and run.status == DagsterRunStatus.CANCELED:
                    reason = "cancelled"
                elif reason.endswith("DagsterExecutionInterruptedError"):
                    reason += ": still running when the soak stopped its processes (see --drain-minutes)"
                failures.append({"run_id": run.run_id, "status": run.status.value, "job": run.job_name,
                                 "target": _label(target),
                                 "reason": reason,
                                 "trigger": _trigger(run)})  # fmt: skip
        reasons = Counter(_reason_class(f["reason"]) for f in failures)
        without_reason = [f for f in failures if not f["reason"]]
        result["runs"] = {
            "total": len(runs),
            "by_status": dict(statuses),
            "failure_reasons": dict(reasons.most_common()),
            "failures_without_reason": len(without_reason),
            "failures": failures,
        }
        log(f"soak runs: {dict(statuses)}; failure reasons: {dict(reasons.most_common(6))}")

        # 5. the clean catch-up of every target whose latest soak run did not succeed
        todo = {t: r for t, r in latest.items() if r.status != DagsterRunStatus.SUCCESS}
        todo = {t: r for t, r in todo.items() if not _known(t, known_bad)}
        catch_up = catch_up_runs(defs, todo, instance)
        log(f"catch-up (faults off): {len(catch_up)} runs")
        t0 = time.perf_counter()
        caught = materialize_all(defs, instance, catch_up) if catch_up else []
        result["catch_up"] = {
            "runs": len(caught),
            "failed": [{"run": o.run.label, "error": o.error} for o in caught if not o.success],
            "seconds": round(time.perf_counter() - t0, 1),
        }

        # 6. the checks
        final_counts, final_dups = table_counts(admin)
        # A tenant whose baseline failed without faults has no clean reference: its rows are
        # reported, not compared (the soak's sensors may well load what the baseline skipped).
        unclean = sorted({t[1][-1].split("|")[-1] for t in known_bad if t[1][0] != "none"})

        def compared_rows(counts):
            return {k: v for k, v in counts.items() if k[0].startswith("core.") and k[1] not in unclean}

        compared = compare_counts(compared_rows(base_counts), compared_rows(final_counts), ACCUMULATING)
        new_dups = {t: n for t, n in final_dups.items() if n > base_dups.get(t, 0)}
        missing = missing_partitions(base_parts, materialized_partitions(defs, instance))
        load = json.loads(load_out.read_text()) if load_out.exists() else {"counts": {}}
        rate = api_error_rate(load.get("counts", {}))
        memory = sampler.verdicts(["daemon", "webserver", "code_server", "api", "postgres"])
        checks = {
            "no_rows_lost": not compared["lost"],
            "no_rows_duplicated": not compared["extra"] and not new_dups,
            "no_partition_missing": not missing,
            "catch_up_clean": not result["catch_up"]["failed"],
            "every_failure_has_a_reason": not without_reason,
            # None: the soak was too short to judge growth (the check then does not fail it).
            "memory_bounded": None
            if all(v.get("bounded") is None for k, v in memory.items() if k != "runs")
            else all(v.get("bounded") is not False for k, v in memory.items() if k != "runs"),
            "api_error_rate_below_0.5%": rate < API_ERROR_BUDGET
            and load.get("counts", {}).get("total", 0) > 0,
        }
        result.update(
            {
                "tenants": len(tenant_ids),
                "rows": {"baseline": sum(v for k, v in base_counts.items() if k[0].startswith("core.")),
                         "final": sum(v for k, v in final_counts.items() if k[0].startswith("core.")),
                         **compared, "duplicate_keys": new_dups,
                         "duplicate_keys_in_baseline": {t: n for t, n in base_dups.items() if n}},
                "missing_partitions": missing,
                "api": {**load, "error_rate": round(rate, 5)},
                "memory": memory,
                "memory_samples": sampler.samples,
                "checks": checks,
                "passed": all(v is not False for v in checks.values()),
                "not_compared_tenants": unclean,
                "load_at_end": os.getloadavg(),
            }
        )  # fmt: skip
        write_results(args.out, result)
        print_summary(result)
        return 0 if result["passed"] else 1
    except KeyboardInterrupt:
        log("interrupted: stopping every process the soak started")
        return 130
    finally:
        if sampler is not None:
            sampler.halt.set()
        if waves is not None:
            with contextlib.suppress(Exception):
                waves.close()
        stack.stop_all()
        if settings is not None and settings.embedded:
            from orchestration import postgres

            postgres.stop_embedded(settings)
            log(f"stopped; logs and data in {args.data_dir}")


def _trigger(run) -> str | None:
    tags = run.tags
    return (
        tags.get("bizosaas/trigger") or tags.get("dagster/sensor_name") or tags.get("dagster/schedule_name")
    )


def _interrupt(*_):
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


def _reason_class(reason: str) -> str:
    """A failure reason without its particulars (URLs, ids), to count reasons by kind."""
    text = reason.split(" (")[0].split(": ", 2)
    return ": ".join(text[:2])[:100]


def progress_line(instance, since: float, load_out: Path, sampler: Sampler, depth: dict) -> None:
    from dagster import DagsterRunStatus, RunsFilter

    created_after = datetime.fromtimestamp(since, UTC)
    done = {s.value.lower(): instance.get_runs_count(RunsFilter(statuses=[s], created_after=created_after))
            for s in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE)}  # fmt: skip
    api = ""
    try:
        counts = json.loads(load_out.read_text())["counts"]
        api = f"; API {counts.get('total', 0):,} req, error rate {api_error_rate(counts):.3%}"
    except (OSError, ValueError, KeyError):
        pass
    mem = ""
    if sampler.samples:
        last = sampler.samples[-1]
        mem = "; PSS MB " + ", ".join(f"{g} {v['pss_mb']:.0f}" for g, v in last.items() if g != "t")
    log(f"{(time.time() - since) / 60:.1f} min: runs {done} queue {depth}{api}{mem}")


def write_results(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str))
    log(f"results in {path}")


def print_summary(result: dict) -> None:
    runs, api, rows = result["runs"], result["api"], result["rows"]
    print("\n| check | result | detail |\n|---|---|---|")
    memory = [f"{g} {v['second_half_mb_per_min']} MB/min" for g, v in result["memory"].items()
              if g != "runs" and v.get("samples", 0) >= 4]  # fmt: skip
    catch_up = result["catch_up"]
    detail = {
        "no_rows_lost": f"{len(rows['lost'])} (table, tenant) below baseline; "
        f"{rows['baseline']:,} -> {rows['final']:,} rows",
        "no_rows_duplicated": f"{len(rows['extra'])} above baseline, dup keys {rows['duplicate_keys'] or 0}",
        "no_partition_missing": f"{sum(len(v) for v in result['missing_partitions'].values())} missing",
        "catch_up_clean": f"{catch_up['runs']} catch-up runs, {len(catch_up['failed'])} failed",
        "every_failure_has_a_reason": f"{len(runs['failures'])} failed/cancelled of {runs['total']} runs",
        "memory_bounded": "; ".join(memory),
        "api_error_rate_below_0.5%": f"{api['error_rate']:.3%} of {api['counts'].get('total', 0):,} req",
    }  # fmt: skip
    for name, ok in result["checks"].items():
        verdict = "n/a (too short)" if ok is None else "pass" if ok else "FAIL"
        print(f"| {name} | {verdict} | {detail[name]} |")
    print("\n| failure reason | runs |\n|---|---|")
    for reason, n in runs["failure_reasons"].items():
        print(f"| {reason} | {n} |")


if __name__ == "__main__":
    sys.exit(main())
