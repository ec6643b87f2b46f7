"""Two-year backfill of a daily domain for every tenant, through the real backfill daemon.

The only daily asset whose replay partitions span two years is `market_prices` (trading; orders
and price snapshots start 2026-10-01), so the bench backfills its last 730 days for every trading
tenant (seeded, plus `--synthetic N` tenants when the synthetic generator is present). It creates
a real asset backfill (`instance.add_backfill`, what the UI's launchPartitionBackfill does), runs
`dagster-daemon` (backfill daemon + run queue + the default run launcher) and times it to the end.

The per-partition baseline (one run per tenant and day, what Dagster launches for an asset without
a backfill policy) is measured on a slice: one-partition backfills of the same asset, through the
same daemon; its cost for the whole window is that mean times the partition count.

Schedules and sensors are stopped for the measurement (`_stop_instigators`), so the queue holds only
the backfill: with synthetic tenants the file-drop sensor alone would queue a few hundred loads ahead
of it. What a backfill does beside the live schedules and sensors is the soak's part (bench.soak).

    python -m bench.backfill [--days 730] [--baseline-runs 4] [--synthetic 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from orchestration.settings import ENV_DATA_DIR, PROJECT_ROOT

RESULTS = PROJECT_ROOT / "bench" / "results" / "backfill.json"
ASSET = "market_prices"


def _setup(data_dir: Path, synthetic: int):
    os.environ[ENV_DATA_DIR] = str(data_dir)
    os.environ.setdefault("BIZOSAAS_SOURCE_MODE", "replay")
    from orchestration import postgres, runtime, tenants
    from orchestration.settings import load_settings

    settings = load_settings()
    env = runtime.prepare(settings)
    runtime.export(env)
    with postgres.connect(postgres.admin_url(settings), autocommit=True) as conn:
        tenants.seed(conn, tenants.load_seed(settings.tenants_file))
    if synthetic:
        from orchestration.synthetic_tenants import onboard_synthetic

        onboard_synthetic(synthetic)
    from dagster import DagsterInstance

    from orchestration.cli import _sync_partitions
    from orchestration.definitions import defs
    from orchestration.materialize import execute, plan_runs

    instance = DagsterInstance.get()
    _sync_partitions(instance)
    # Tenant profiles first, so the tenant sensor has nothing to launch into the measured queue.
    execute(defs, instance, plan_runs(defs, instance, "tenant_profile", None), progress=lambda _: None)
    _stop_instigators(instance)
    return instance


def _stop_instigators(instance) -> None:
    """Stops every schedule and sensor in the instance, as a user would in the UI, so they
    launch nothing into the queue the bench times (the states persist in the data folder)."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    target = WorkspaceFileTarget(paths=[str(PROJECT_ROOT / "workspace.yaml")])
    with WorkspaceProcessContext(instance, target) as context:
        for entry in context.create_request_context().get_code_location_entries().values():
            for repo in entry.code_location.get_repositories().values():
                for sensor in repo.get_sensors():
                    instance.stop_sensor(sensor.get_remote_origin_id(), sensor.selector_id, sensor)
                for schedule in repo.get_schedules():
                    instance.stop_schedule(schedule.get_remote_origin_id(), schedule.selector_id, schedule)


def _keys(instance, days: int, tenants: list[str] | None = None):
    from dagster import MultiPartitionKey

    from orchestration.definitions import defs

    pdef = defs.resolve_asset_graph().get(_key()).partitions_def
    dims = {d.name: d.partitions_def for d in pdef.partitions_defs}
    all_days = dims["date"].get_partition_keys()
    window = all_days[-days:]
    tenants = tenants or dims["tenant"].get_partition_keys(dynamic_partitions_store=instance)
    return tenants, [MultiPartitionKey({"tenant": t, "date": d}) for t in tenants for d in window]


def _key():
    from dagster import AssetKey

    return AssetKey(ASSET)


def _backfill(instance, keys, title: str) -> str:
    from dagster import AssetSelection
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id

    from orchestration.definitions import defs

    backfill_id = make_new_backfill_id()
    graph = defs.resolve_asset_graph()
    instance.add_backfill(
        PartitionBackfill.from_asset_partitions(
            backfill_id=backfill_id,
            asset_graph=graph,
            partition_names=[str(k) for k in keys],
            asset_selection=list(AssetSelection.assets(_key()).resolve(graph)),
            backfill_timestamp=time.time(),
            tags={"bizosaas/bench": title},
            dynamic_partitions_store=instance,
            all_partitions=False,
            title=title,
            description=None,
            run_config=None,
        )
    )
    return backfill_id


def _wait(instance, backfill_id: str, timeout_s: float) -> dict:
    from dagster import RunsFilter
    from dagster._core.execution.backfill import BulkActionStatus

    from orchestration.partitions import TENANT_TAG

    started = time.perf_counter()
    while True:
        backfill = instance.get_backfill(backfill_id)
        if backfill.status not in (BulkActionStatus.REQUESTED,):
            break
        if time.perf_counter() - started > timeout_s:
            raise TimeoutError(f"backfill {backfill_id} still {backfill.status} after {timeout_s}s")
        time.sleep(1)
    seconds = time.perf_counter() - started
    runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
    statuses = [r.status.value for r in runs]
    return {
        "status": backfill.status.value,
        "seconds": round(seconds, 1),
        "runs": len(runs),
        "runs_succeeded": statuses.count("SUCCESS"),
        "runs_failed": statuses.count("FAILURE"),
        # Whether the per-tenant run limits could see each run's tenant (orchestration/run_coordinator.py).
        "runs_with_a_tenant_tag": sum(
            1 for r in runs if {TENANT_TAG, "dagster/partition/tenant", "dagster/partition"} & set(r.tags)
        ),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--baseline-runs", type=int, default=4, help="one-partition backfills to time")
    parser.add_argument("--synthetic", type=int, default=0, help="also onboard N synthetic tenants first")
    parser.add_argument("--data-dir", default=str(PROJECT_ROOT / ".data" / "bench-backfill"))
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args(argv)

    instance = _setup(Path(args.data_dir), args.synthetic)
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    from orchestration.processes import stop

    load = os.getloadavg()
    try:
        tenants, keys = _keys(instance, args.days)
        print(f"{ASSET}: {len(tenants)} tenant(s) x {args.days} days = {len(keys)} partitions", flush=True)
        # Baseline slice: single partitions (older days, not in the window's last run) one at a time.
        baseline = []
        _, slice_keys = _keys(instance, args.days + args.baseline_runs, tenants[:1])
        for key in slice_keys[: args.baseline_runs]:
            baseline.append(_wait(instance, _backfill(instance, [key], "baseline partition"), args.timeout))
            print(f"  one-partition backfill: {baseline[-1]}", flush=True)
        result = _wait(instance, _backfill(instance, keys, f"{args.days}-day backfill"), args.timeout)
        print(f"  {args.days}-day backfill: {result}", flush=True)
    finally:
        stop(daemon)
    per_run = statistics.median(b["seconds"] for b in baseline) if baseline else None
    out = {
        "asset": ASSET,
        "backfill_policy": "single_run",
        "tenants": len(tenants),
        "synthetic_tenants": args.synthetic,
        "days": args.days,
        "window": [
            str(date.fromisoformat(keys[0].keys_by_dimension["date"])),
            str(date.fromisoformat(keys[-1].keys_by_dimension["date"])),
        ],  # fmt: skip
        "partitions": len(keys),
        "backfill": result,
        "baseline_per_partition": {
            "runs": len(keys),
            "measured_one_partition_backfills_s": [b["seconds"] for b in baseline],
            "median_s": per_run,
            "estimated_total_s": round(per_run * len(keys), 1) if per_run else None,
            "note": "every run is one subprocess through the run queue (max_concurrent_runs 4); the "
            "estimate assumes one at a time, so up to 4x less with the queue full",
        },
        "runs_ratio": round(len(keys) / max(result["runs"], 1), 1),
        "loadavg_at_start": [round(x, 2) for x in load],
        "cpus": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    name = RESULTS if not args.synthetic else RESULTS.with_name(f"backfill_synthetic{args.synthetic}.json")
    name.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0 if result["runs_failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
