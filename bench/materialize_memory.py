"""Does one `bizosaas materialize` process keep memory run after run? (issue 9)

    make bench-materialize-memory
    python -m bench.materialize_memory --tenants 50 --rounds 4

The full refresh's peak RSS grows a little with the tenant count (bench.scale). This tells a leak
(memory kept per run, which would grow without bound with more tenants) from a high-water mark (the
biggest single run, the same at any tenant count): it plans the cheap selection for every tenant once
and executes the same plan several times in one process, as `bizosaas materialize` does, recording
RSS after each round. A leak shows as RSS growing round by round; a high-water mark as a flat line
after the first round. Results: bench/results/materialize_memory.json.
"""

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench.scale import CHEAP_SELECT, grow_to, load_average, prepare
from orchestration.settings import PROJECT_ROOT

RESULTS = PROJECT_ROOT / "bench" / "results" / "materialize_memory.json"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=50, help="tenants in all (seeded + synthetic)")
    parser.add_argument("--rounds", type=int, default=4, help="times the same plan is executed")
    args = parser.parse_args(argv)
    if args.rounds < 2 or args.tenants < 5:
        parser.error("--rounds must be at least 2 and --tenants at least 5 (the seeded ones)")

    data_dir = Path(tempfile.mkdtemp(prefix="bzs-mem-", dir="/tmp"))
    try:
        prepare(data_dir)
        from dagster import DagsterInstance

        from orchestration.definitions import defs
        from orchestration.materialize import execute, plan_runs

        instance = DagsterInstance.get()
        grow_to(args.tenants, instance)
        runs = plan_runs(defs, instance, CHEAP_SELECT, None)
        process = psutil.Process()
        rounds = []
        for number in range(1, args.rounds + 1):
            started = time.perf_counter()
            outcomes = execute(defs, instance, runs, progress=lambda line: None)
            gc.collect()  # what stays after a collection is what a leak would keep
            rounds.append(
                {
                    "round": number,
                    "seconds": round(time.perf_counter() - started, 1),
                    "runs_ok": sum(o.success for o in outcomes),
                    "rss_mb": process.memory_info().rss >> 20,
                }
            )
            print(json.dumps(rounds[-1]), flush=True)
        after_first = [r["rss_mb"] for r in rounds[1:]]
        results = {
            "command": " ".join(["python", "-m", "bench.materialize_memory", *(argv or sys.argv[1:])]),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "cores": os.cpu_count(),
            "load_average_end": load_average(),
            "tenants": args.tenants,
            "select": CHEAP_SELECT,
            "runs_per_round": len(runs),
            "rounds": rounds,
            # Per run kept after the first round: ~0 for a high-water mark, > 0 for a leak.
            "growth_after_first_round_mb_per_run": round(
                (after_first[-1] - rounds[0]["rss_mb"]) / (len(runs) * (args.rounds - 1)), 4
            ),
            "max_rss_after_first_round_mb": max(after_first),
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps({k: results[k] for k in ("runs_per_round", "growth_after_first_round_mb_per_run")}))
    finally:
        from orchestration import postgres
        from orchestration.settings import load_settings

        postgres.stop_embedded(load_settings())
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
