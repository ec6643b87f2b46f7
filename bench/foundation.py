"""Foundation benchmarks: install times, `make demo` to a ready UI, test-suite time.

    make bench                      # everything but the cold install
    python -m bench.foundation --cold-install   # also a cold install into a fresh venv

Each figure is the median of --repeat runs, measured in this one process, side by side with
its baseline (a warm install against a no-op one, a fresh data folder against a reused one).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orchestration.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"


def timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def demo_to_ready(data_dir: Path) -> float:
    """Seconds from starting `bizosaas demo` to the UI answering (as the demo reports it)."""
    env = {"BIZOSAAS_DATA_DIR": str(data_dir), "BIZOSAAS_DB_NAME": "bizosaas"}
    _, out = timed(
        [str(BIN / "bizosaas"), "demo", "--exit-when-ready", "--dagster-port", str(free_port())], env
    )
    match = re.search(r"ready in ([0-9.]+)s", out)
    if not match:
        raise SystemExit(f"demo did not report readiness:\n{out[-2000:]}")
    return float(match.group(1))


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cold-install", action="store_true")
    parser.add_argument("--skip-tests", action="store_true")
    args = parser.parse_args()
    results: dict[str, object] = {"cores": os.cpu_count(), "repeat": args.repeat}

    noop, warm = [], []
    for _ in range(args.repeat):
        noop.append(timed(["make", "install"])[0])
        (ROOT / ".venv" / ".install-stamp").unlink()
        warm.append(timed(["make", "install"])[0])
    results["install_noop_s"] = median(noop)
    results["install_warm_s"] = median(warm)
    print(f"install: no-op {median(noop)}s, warm reinstall {median(warm)}s", flush=True)

    if args.cold_install:
        venv = Path(tempfile.mkdtemp(prefix="bizosaas-cold-"))
        try:
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
            started = time.perf_counter()
            timed([sys.executable, "-m", "venv", str(venv)])
            timed([*pip, "-U", "pip>=25", "setuptools", "wheel"])
            timed([*pip, "-c", "requirements.lock", "torch==2.13.0"])
            timed([*pip, "-c", "requirements.lock", "-e", ".[dev]"])
            results["install_cold_s"] = round(time.perf_counter() - started, 1)
            print(f"install: cold {results['install_cold_s']}s (pip's download cache warm)", flush=True)
        finally:
            shutil.rmtree(venv, ignore_errors=True)

    fresh, reused = [], []
    reused_dir = Path(tempfile.mkdtemp(prefix="bzb-", dir="/tmp"))
    try:
        demo_to_ready(reused_dir)  # initialise it once
        for _ in range(args.repeat):
            fresh_dir = Path(tempfile.mkdtemp(prefix="bzb-", dir="/tmp"))
            try:
                fresh.append(demo_to_ready(fresh_dir))
            finally:
                shutil.rmtree(fresh_dir, ignore_errors=True)
            reused.append(demo_to_ready(reused_dir))
    finally:
        shutil.rmtree(reused_dir, ignore_errors=True)
    results["demo_ready_fresh_data_s"] = median(fresh)
    results["demo_ready_reused_data_s"] = median(reused)
    print(f"demo to ready UI: fresh data folder {median(fresh)}s, reused {median(reused)}s", flush=True)

    if not args.skip_tests:
        suite = timed([str(BIN / "pytest"), "-q", "-p", "no:cacheprovider"])
        results["test_suite_s"] = round(suite[0], 1)
        results["test_suite_summary"] = suite[1].strip().splitlines()[-1]
        print(f"test suite: {results['test_suite_s']}s ({results['test_suite_summary']})", flush=True)

    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "foundation.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
