"""Scale benchmarks (issue 9): the platform at 5, 50 and 200 tenants on one machine.

    make bench-scale                                       # sizes 5,50,200; full refresh at 5 and 50
    python -m bench.scale --sizes 5,50,200 --refresh 5=full,50=full,200=full   # the long one

On a fresh data folder (a temporary one under /tmp unless --data-dir), the 5 seeded tenants plus
synthetic ones (`orchestration.synthetic_tenants.onboard_synthetic`), growing size by size:

1. full refresh: `bizosaas materialize` (every asset of every tenant, the latest day) in a child
   process, sampled twice a second for its RSS (and its children's: dbt) and the Postgres server's
   (PSS summed over the postmaster and its backends, so shared buffers count once); total time,
   runs, runs/min, and memory as the runs progress. `cheap` runs only CHEAP_SELECT, `none` skips;
2. ticks: every schedule and sensor evaluated against the instance as the daemon would (schedules
   at their first tick on the replay date, sensors with their cursor carried tick to tick, the
   automation sensor as the daemon's AutomationTickEvaluationContext): median and max seconds, run
   requests, and the margin to Dagster's 60 s evaluation timeout; plus the time to create and
   enqueue (QueuedRunCoordinator) every run a schedule tick requests;
3. UI: the real dagster-webserver on the instance, timing the GraphQL queries the asset pages
   make (catalog, partition health of a tenant asset and of tenant x day assets, a tenant's
   materializations); median of --ui-repeat after a warm-up;
4. partitions per asset (tenants x days against the ~100k budget, orchestration.partition_budget).

Results go to bench/results/scale.json after every size, so a stopped run keeps what it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "scale.json"
SEEDED_TENANTS = 5
# Dagster's sensor and schedule evaluation timeout (DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS default).
TICK_TIMEOUT_S = 60.0
REFRESH_MODES = ("full", "cheap", "none")
# A refresh that skips the per-tenant heavy paths (QuantTrade's seven-year price history and its
# backtests, embeddings, the CRM model) but still writes every domain's first tables per tenant.
CHEAP_SELECT = (
    "key:tenant_profile or key:business_cache or key:businesses_master or key:game_catalogue "
    "or key:game_price_snapshots or key:products or key:product_variants or key:orders "
    "or key:order_lines or key:crm_leads or key:crm_campaigns"
)
# Assets whose UI partition-health page is timed: tenant-only, tenant x day, and the longest
# tenant x day (seven years of daily market bars per trading tenant).
UI_ASSETS = ("tenant_profile", "orders", "market_prices")


# --- pure helpers (unit-tested) ---------------------------------------------------------------


def summary(values: list[float]) -> dict[str, float | int]:
    """Median, max, min and count of timings, rounded for the report."""
    if not values:
        raise ValueError("no values to summarise")
    return {
        "median": round(statistics.median(values), 4),
        "max": round(max(values), 4),
        "min": round(min(values), 4),
        "n": len(values),
    }


def parse_refresh(spec: str, sizes: list[int]) -> dict[int, str]:
    """`5=full,50=full,200=cheap` -> {5: "full", ...}; sizes not named get `none`."""
    modes = dict.fromkeys(sizes, "none")
    for item in filter(None, (part.strip() for part in spec.split(","))):
        size, sep, mode = item.partition("=")
        if not sep or not size.strip().isdigit() or mode.strip() not in REFRESH_MODES:
            choices = ", ".join(REFRESH_MODES)
            raise ValueError(f"--refresh item {item!r}: expected SIZE=MODE with MODE in {choices}")
        if int(size) not in modes:
            raise ValueError(f"--refresh names size {size}, which is not in --sizes")
        modes[int(size)] = mode.strip()
    return modes


def parse_sizes(text: str) -> list[int]:
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < SEEDED_TENANTS:
        raise ValueError(f"--sizes must be tenant counts of at least {SEEDED_TENANTS} (the seeded tenants)")
    return sizes


def growth(by_size: dict[int, float]) -> dict[str, float]:
    """Ratio of each size's figure to the smallest size's, next to the tenant ratio, so a
    figure that grows slower than tenants (bounded) or with them (linear) reads at a glance."""
    sizes = sorted(by_size)
    base_size, base = sizes[0], by_size[sizes[0]]
    return {
        f"{size}/{base_size}": round(by_size[size] / base, 2) if base else float("nan") for size in sizes[1:]
    }


def extrapolate_seconds(runs: int, seconds: float, target_runs: int, fixed_s: float = 0.0) -> float:
    """Time for `target_runs` at the measured per-run cost (after a fixed start-up cost)."""
    if runs <= 0:
        raise ValueError("no runs measured")
    return round(fixed_s + (seconds - fixed_s) / runs * target_runs, 1)


PROGRESS = re.compile(r"^\[(\d+)/(\d+)\] (.*) \.\.\. (ok|FAILED.*) \(([0-9.]+)s\)$")


def parse_progress(line: str) -> tuple[int, int, bool, float] | None:
    """(index, total, ok, seconds) of a `bizosaas materialize` progress line."""
    match = PROGRESS.match(line.strip())
    if not match:
        return None
    return int(match[1]), int(match[2]), match[4] == "ok", float(match[5])


# --- the platform -----------------------------------------------------------------------------


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def prepare(data_dir: Path) -> dict[str, str]:
    os.environ["BIZOSAAS_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("BIZOSAAS_DB_NAME", "bizosaas")
    os.environ.setdefault("BIZOSAAS_SOURCE_MODE", "replay")
    from orchestration import postgres, runtime, tenants
    from orchestration.settings import load_settings

    settings = load_settings()
    env = runtime.prepare(settings)
    runtime.export(env)
    with postgres.connect(postgres.admin_url(settings), autocommit=True) as conn:
        tenants.seed(conn, tenants.load_seed(settings.tenants_file))
    return env


def grow_to(size: int, instance) -> float:
    """Onboard synthetic tenants up to `size` in all; returns the seconds it took."""
    from orchestration.partitions import current_partitions, plan_partition_sync
    from orchestration.settings import ENV_WRITER_URL
    from orchestration.warehouse import WarehouseResource

    started = time.perf_counter()
    if size > SEEDED_TENANTS:
        try:
            from orchestration.synthetic_tenants import onboard_synthetic
        except ImportError as exc:
            raise SystemExit(f"size {size} needs synthetic tenants: {exc}") from exc
        onboard_synthetic(size - SEEDED_TENANTS)
    registry = WarehouseResource(database_url=os.environ[ENV_WRITER_URL]).tenant_registry()
    plan_partition_sync(registry, current_partitions(instance)).apply(instance)
    active = len(instance.get_dynamic_partitions("tenant"))
    if active != size:
        raise SystemExit(f"expected {size} active tenants, the instance has {active} tenant partitions")
    return time.perf_counter() - started


def partition_budget(defs) -> list[dict]:
    """Partitions per tenant-partitioned asset (tenants x days) against the budget, fullest first,
    from synth's budget module (the numbers onboarding is guarded by)."""
    from orchestration import postgres
    from orchestration.partition_budget import (
        budget_rows,
        budget_settings,
        partitioned_assets,
        registry_tenants,
        tenant_counts,
    )
    from orchestration.settings import load_settings

    with postgres.connect(postgres.admin_url(load_settings()), autocommit=True) as conn:
        counts = tenant_counts(registry_tenants(conn))
    rows = budget_rows(partitioned_assets(defs.resolve_asset_graph()), counts, budget_settings()[0])
    return [
        {
            "asset": r.asset,
            "tenants": r.tenants,
            "days": r.days,
            "partitions": r.partitions,
            "share_of_budget": round(r.share, 4),
            "max_tenants": r.max_tenants,
        }  # fmt: skip
        for r in rows
    ]


# --- 1. full refresh --------------------------------------------------------------------------


def _tree_rss(proc) -> tuple[int, int]:
    import psutil

    try:
        own = proc.memory_info().rss
        children = sum(c.memory_info().rss for c in proc.children(recursive=True) if c.is_running())
    except psutil.Error:
        return 0, 0
    return own, own + children


def _postgres_pss(postmaster_pid: int | None) -> int:
    import psutil

    if postmaster_pid is None:
        return 0
    total = 0
    try:
        root = psutil.Process(postmaster_pid)
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):  # a backend that exited between the two calls
                total += p.memory_full_info().pss
    except psutil.Error:
        return 0
    return total


def refresh(mode: str, env: dict[str, str]) -> dict:
    """`bizosaas materialize` in a child process, with its memory sampled as it runs."""
    import psutil

    from orchestration import postgres
    from orchestration.settings import load_settings

    command = [sys.executable, "-m", "orchestration.cli", "materialize"]
    if mode == "cheap":
        command += ["--select", CHEAP_SELECT]
    postmaster = postgres.embedded_status(load_settings()).pid
    peaks = {"cli": 0, "cli_tree": 0, "postgres": 0}
    pg_start = _postgres_pss(postmaster)
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)  # fmt: skip
    ps = psutil.Process(proc.pid)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            own, tree = _tree_rss(ps)
            peaks["cli"] = max(peaks["cli"], own)
            peaks["cli_tree"] = max(peaks["cli_tree"], tree)
            peaks["postgres"] = max(peaks["postgres"], _postgres_pss(postmaster))
            done.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    total_runs, failures, run_seconds, progress, tail = 0, [], [], [], []
    first_run_at = None
    for line in proc.stdout:
        tail = [*tail[-20:], line.rstrip()]
        parsed = parse_progress(line)
        if parsed is None:
            continue
        index, total_runs, ok, seconds = parsed
        first_run_at = first_run_at or (time.perf_counter() - started - seconds)
        run_seconds.append(seconds)
        if not ok:
            failures.append(line.strip()[:300])
        # Memory as the runs go: bounded means flat after the first runs, whatever the count.
        if index == 1 or index == total_runs or index % max(1, total_runs // 10) == 0:
            own, _ = _tree_rss(ps)
            elapsed = round(time.perf_counter() - started, 1)
            progress.append({"run": index, "cli_rss_mb": round(own / 2**20), "elapsed_s": elapsed})
            print(f"    refresh {index}/{total_runs} ({time.perf_counter() - started:.0f}s, "
                  f"cli {own / 2**20:.0f} MB)", flush=True)  # fmt: skip
    proc.wait()
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    if total_runs == 0:
        raise SystemExit("materialize planned no runs:\n" + "\n".join(tail))
    return {
        "mode": mode,
        "select": CHEAP_SELECT if mode == "cheap" else None,
        "exit_status": proc.returncode,
        "total_s": round(elapsed, 1),
        "startup_s": round(first_run_at or 0.0, 1),
        "runs": total_runs,
        "failed": len(failures),
        "failures": failures[:10],
        "runs_per_min": round(total_runs / elapsed * 60, 1),
        "run_s": summary(run_seconds),
        "run_s_total": round(sum(run_seconds), 1),
        "peak_cli_rss_mb": round(peaks["cli"] / 2**20),
        "peak_cli_tree_rss_mb": round(peaks["cli_tree"] / 2**20),
        "postgres_pss_before_mb": round(pg_start / 2**20),
        "peak_postgres_pss_mb": round(peaks["postgres"] / 2**20),
        "memory_by_run": progress,
        "load_average_after": load_average(),
    }


# --- 2. ticks ---------------------------------------------------------------------------------


def _first_tick(schedule) -> datetime:
    from dagster._utils.schedules import cron_string_iterator

    from orchestration.settings import replay_date

    day = datetime.fromisoformat(replay_date() or datetime.now(UTC).date().isoformat()).replace(tzinfo=UTC)
    zone = schedule.execution_timezone or "UTC"
    return next(cron_string_iterator(day.timestamp(), schedule.cron_schedule, zone))


def _enqueue(instance, job, run_requests, workers: int = 1) -> dict:
    """Create and enqueue every run of a tick as the daemon does, then delete them again. With
    `workers` > 1, in a thread pool as the daemon's `num_submit_workers` setting does."""
    from concurrent.futures import ThreadPoolExecutor

    from dagster._core.code_pointer import CodePointer
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster._core.remote_origin import (
        InProcessCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.run_coordinator import SubmitRunContext
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    # The queue takes only runs that say where their code lives (the daemon's runs name the gRPC
    # code location); an in-process origin of the same module serves for timing.
    target = LoadableTargetOrigin(executable_path=sys.executable, module_name="orchestration.definitions")
    location = InProcessCodeLocationOrigin(target, location_name="bizosaas")
    origin = RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), job.name)
    pointer = CodePointer.from_module("orchestration.definitions", "defs", working_directory=str(ROOT))
    code_origin = JobPythonOrigin(job.name, RepositoryPythonOrigin(sys.executable, pointer))
    run_ids: list[str] = []

    def submit(request) -> tuple[float, float]:
        # A range request (orders' lookback window) carries its range in tags, no partition key.
        resolved = request
        if request.partition_key:
            resolved = request.with_resolved_tags_and_config(job, [], instance)
        started = time.perf_counter()
        run = instance.create_run_for_job(
            job_def=job,
            run_config=resolved.run_config,
            tags=resolved.tags,
            remote_job_origin=origin,
            job_code_origin=code_origin,
        )
        created = time.perf_counter() - started
        run_ids.append(run.run_id)
        started = time.perf_counter()
        instance.run_coordinator.submit_run(SubmitRunContext(run, workspace=None))
        return created, time.perf_counter() - started

    started = time.perf_counter()
    try:
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                times = list(pool.map(submit, run_requests))
        else:
            times = [submit(request) for request in run_requests]
        wall = time.perf_counter() - started
    finally:
        for run_id in run_ids:
            instance.delete_run(run_id)
    return {
        "runs": len(run_ids),
        "workers": workers,
        "create_s": round(sum(t[0] for t in times), 3),
        "enqueue_s": round(sum(t[1] for t in times), 3),
        "wall_s": round(wall, 3),
    }


def _automation_tick(defs, instance, cursor):
    """One automation sensor tick the way the daemon evaluates it (AutomationTickEvaluationContext,
    whose partition loading caches the tenant partitions per tick). Dagster's test helper
    `evaluate_automation_conditions` reloads them from the instance for every condition's cursor:
    ~3,500 Postgres connections a tick, 45-95 s here at 5 tenants, which the daemon never pays."""
    import logging

    from dagster import AssetSelection
    from dagster._core.definitions.asset_daemon_cursor import AssetDaemonCursor
    from dagster._core.definitions.automation_tick_evaluation_context import AutomationTickEvaluationContext

    cursor = cursor or AssetDaemonCursor.empty()
    requests, cursor, _ = AutomationTickEvaluationContext(
        evaluation_id=cursor.evaluation_id + 1,
        instance=instance,
        asset_graph=defs.resolve_asset_graph(),
        cursor=cursor,
        materialize_run_tags={},
        observe_run_tags={},
        auto_observe_asset_keys=set(),
        asset_selection=AssetSelection.all(include_sources=True) | AssetSelection.all_asset_checks(),
        logger=logging.getLogger("bench.scale"),
        emit_backfills=False,
    ).evaluate()
    return cursor, len(requests)


def ticks(defs, instance, repeat: int, automation_repeat: int, skip_queue: bool = False) -> dict:
    from dagster import (
        AutomationConditionSensorDefinition,
        build_schedule_context,
        build_sensor_context,
    )
    from dagster._core.definitions.partitions.context import partition_loading_context

    repo = defs.get_repository_def()
    out: dict[str, dict] = {}
    for schedule in repo.schedule_defs:
        when = _first_tick(schedule)
        seconds, requests = [], []
        for _ in range(repeat):
            context = build_schedule_context(instance=instance, scheduled_execution_time=when,
                                             resources=defs.resources, repository_def=repo)  # fmt: skip
            started = time.perf_counter()
            with partition_loading_context(dynamic_partitions_store=instance):
                data = schedule.evaluate_tick(context)
            seconds.append(time.perf_counter() - started)
            requests.append(len(data.run_requests or []))
        row = out[f"schedule:{schedule.name}"] = {
            **summary(seconds),
            "run_requests": requests[-1],
            "timeout_margin": round(TICK_TIMEOUT_S / max(seconds), 1),
        }
        if not skip_queue:
            # One at a time, and with dagster.yaml's num_submit_workers, side by side.
            job, tick_requests = repo.get_job(schedule.job_name), data.run_requests or []
            row["queue"] = _enqueue(instance, job, tick_requests)
            row["queue_threaded"] = _enqueue(instance, job, tick_requests, workers=4)
        print(f"    {schedule.name}: {row}", flush=True)
    for sensor in repo.sensor_defs:
        seconds, requests, cursor, note = [], [], None, None
        automation = isinstance(sensor, AutomationConditionSensorDefinition)
        for _ in range(automation_repeat if automation else repeat):
            started = time.perf_counter()
            if automation:
                cursor, count = _automation_tick(defs, instance, cursor)
            else:
                context = build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources,
                                               definitions=defs, sensor_name=sensor.name)  # fmt: skip
                # The daemon evaluates with the instance as the partition store (run requests'
                # tenant keys are validated against it).
                with partition_loading_context(dynamic_partitions_store=instance):
                    data = sensor.evaluate_tick(context)
                cursor, count, note = data.cursor, len(data.run_requests or []), data.skip_message
            seconds.append(time.perf_counter() - started)
            requests.append(count)
        out[f"sensor:{sensor.name}"] = {
            **summary(seconds),
            "first_tick_s": round(seconds[0], 4),
            "run_requests_first_tick": requests[0],
            "run_requests_last_tick": requests[-1],
            "timeout_margin": round(TICK_TIMEOUT_S / max(seconds), 1),
            **({"skip_reason": note[:200]} if note else {}),
        }
        print(f"    {sensor.name}: {out[f'sensor:{sensor.name}']}", flush=True)
    return out


# --- 3. UI ------------------------------------------------------------------------------------

CATALOG = """{ assetNodes { id assetKey { path } groupName isMaterializable
  partitionStats { numMaterialized numPartitions numFailed numMaterializing } } }"""
LATEST_INFO = """query($keys: [AssetKeyInput!]!) { assetsLatestInfo(assetKeys: $keys) {
  assetKey { path } unstartedRunIds inProgressRunIds latestRun { id status }
  latestMaterialization { timestamp runId partition } } }"""
PARTITION_HEALTH = """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
  id partitionKeysByDimension { name type partitionKeys }
  assetPartitionStatuses {
    ... on TimePartitionStatuses { ranges { status startTime endTime startKey endKey } }
    ... on DefaultPartitionStatuses { materializedPartitions materializingPartitions failedPartitions }
    ... on MultiPartitionStatuses { primaryDimensionName ranges {
      primaryDimStartKey primaryDimEndKey primaryDimStartTime primaryDimEndTime
      secondaryDim {
        ... on TimePartitionStatuses { ranges { status startTime endTime startKey endKey } }
        ... on DefaultPartitionStatuses { materializedPartitions materializingPartitions failedPartitions }
      } } } } } } }"""
TENANT_EVENTS = """query($key: AssetKeyInput!, $partitions: [String!]) { assetOrError(assetKey: $key) {
  ... on Asset { assetMaterializations(partitions: $partitions, limit: 25) {
    runId timestamp partition } } } }"""


def start_webserver(env: dict[str, str]):
    from orchestration.processes import free_port, wait_for_http

    port = free_port()
    command = [sys.executable, "-m", "dagster_webserver", "-w", "workspace.yaml",
               "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    if not wait_for_http(f"http://127.0.0.1:{port}/server_info", proc, 300):
        raise SystemExit("dagster-webserver did not come up")
    return proc, f"http://127.0.0.1:{port}/graphql"


def _graphql(url: str, query: str, variables: dict | None = None) -> tuple[float, dict]:
    import httpx

    started = time.perf_counter()
    response = httpx.post(url, json={"query": query, "variables": variables or {}}, timeout=300)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise SystemExit(f"GraphQL error: {body['errors'][:1]}")
    return elapsed, body["data"]


def ui(url: str, instance, repeat: int) -> dict:
    _, data = _graphql(url, CATALOG)
    keys = [{"path": n["assetKey"]["path"]} for n in data["assetNodes"]]
    tenant = sorted(instance.get_dynamic_partitions("tenant"))[-1]
    queries = {
        "catalog_asset_nodes": (CATALOG, {}),
        "catalog_latest_info": (LATEST_INFO, {"keys": keys}),
        **{f"partition_health:{a}": (PARTITION_HEALTH, {"key": {"path": [a]}}) for a in UI_ASSETS},
        "tenant_materializations:tenant_profile": (
            TENANT_EVENTS,
            {"key": {"path": ["tenant_profile"]}, "partitions": [tenant]},
        ),
    }
    out = {}
    for name, (query, variables) in queries.items():
        _graphql(url, query, variables)  # warm-up: the first query pays for loading caches
        seconds = [_graphql(url, query, variables)[0] for _ in range(repeat)]
        out[name] = summary(seconds)
        print(f"    {name}: median {out[name]['median']:.3f}s, max {out[name]['max']:.3f}s", flush=True)
    return out


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="5,50,200", help="tenant counts, ascending (default 5,50,200)")
    parser.add_argument("--refresh", default="5=full,50=full,200=cheap",
                        help="SIZE=full|cheap|none per size (default 5=full,50=full,200=cheap)")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=5, help="evaluations per schedule and sensor")
    parser.add_argument("--automation-repeat", type=int, default=3, help="automation sensor evaluations")
    parser.add_argument("--ui-repeat", type=int, default=5, help="timed GraphQL queries per page")
    parser.add_argument("--data-dir", type=Path, help="data folder (default: a fresh one, removed after)")
    parser.add_argument("--skip-ui", action="store_true")
    parser.add_argument("--skip-queue", action="store_true", help="do not time creating and enqueueing runs")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other sizes already in bench/results/scale.json (a run continued on --data-dir)",
    )
    args = parser.parse_args(argv)
    try:
        sizes = parse_sizes(args.sizes)
        modes = parse_refresh(args.refresh, sizes)
    except ValueError as exc:
        parser.error(str(exc))

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bzs-", dir="/tmp"))
    results: dict = {
        "cores": os.cpu_count(),
        "command": " ".join([Path(sys.executable).name, "-m", "bench.scale", *(argv or sys.argv[1:])]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_start": load_average(),
        "tick_timeout_s": TICK_TIMEOUT_S,
        "sizes": {},
    }
    if args.merge and RESULTS.exists():
        earlier = json.loads(RESULTS.read_text())
        results["earlier_runs"] = [*earlier.get("earlier_runs", []), earlier.get("command")]
        results["sizes"] = {k: v for k, v in earlier.get("sizes", {}).items() if int(k) not in sizes}
    webserver = None
    try:
        env = prepare(data_dir)
        from dagster import DagsterInstance

        from orchestration import processes
        from orchestration.definitions import defs

        instance = DagsterInstance.get()
        for size in sizes:
            print(f"== {size} tenants (load {load_average()})", flush=True)
            row: dict = {"onboard_s": round(grow_to(size, instance), 1)}
            row["partitions"] = partition_budget(defs)
            if modes[size] != "none":
                print(f"  full refresh ({modes[size]})", flush=True)
                row["refresh"] = refresh(modes[size], env)
            print("  ticks", flush=True)
            row["ticks"] = ticks(defs, instance, args.repeat, args.automation_repeat, args.skip_queue)
            if not args.skip_ui:
                print("  UI", flush=True)
                # A webserver per size: it starts as a user would open it on an instance this big.
                webserver, url = start_webserver(env)
                try:
                    row["ui"] = ui(url, instance, args.ui_repeat)
                finally:
                    processes.stop(webserver)
            row["load_average_end"] = load_average()
            results["sizes"][str(size)] = row
            results["sizes"] = dict(sorted(results["sizes"].items(), key=lambda kv: int(kv[0])))
            write(results)
        results["comparison"] = compare(results["sizes"])
        write(results)
        print(json.dumps(results["comparison"], indent=2))
    finally:
        if args.data_dir is None:
            from orchestration import postgres
            from orchestration.settings import load_settings

            postgres.stop_embedded(load_settings())
            shutil.rmtree(data_dir, ignore_errors=True)


def compare(sizes: dict[str, dict]) -> dict:
    """Growth of the headline figures from the smallest size, beside the tenant ratio."""
    by = {int(k): v for k, v in sizes.items()}
    out: dict = {"tenants": growth({s: float(s) for s in by})}
    refreshed = {s: v["refresh"] for s, v in by.items() if v.get("refresh", {}).get("mode") == "full"}
    if len(refreshed) > 1:
        out["refresh_total_s"] = growth({s: r["total_s"] for s, r in refreshed.items()})
        out["refresh_runs"] = growth({s: float(r["runs"]) for s, r in refreshed.items()})
        out["peak_cli_rss_mb"] = growth({s: float(r["peak_cli_rss_mb"]) for s, r in refreshed.items()})
        out["peak_postgres_pss_mb"] = growth(
            {s: float(r["peak_postgres_pss_mb"]) for s, r in refreshed.items()}
        )
    slowest = {s: max(t["max"] for t in v["ticks"].values()) for s, v in by.items() if "ticks" in v}
    if slowest:
        out["slowest_tick_max_s"] = {str(s): round(v, 2) for s, v in slowest.items()}
    return out


def write(results: dict) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
