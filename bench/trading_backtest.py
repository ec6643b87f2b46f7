"""QuantTrade backtest sweep benchmarks (issue 8), in memory (no Postgres, no Dagster).

    make bench-trading    (or: python -m bench.trading_backtest [--quick])

Data: seeded synthetic daily bars (tests/trading_reference.synthetic_bars: a random walk whose
drift switches regime every ~60 bars, so every strategy trades), symbols cycling crypto (every
calendar day: 3,650 bars in 10 years), stock (2,520) and forex (2,600). Candidates: the
engine's shipped grids (generate_candidates: 80 per symbol), over as many symbols as it takes
to reach the count (125 for 10,000), taking the strategies' candidates in turn.

1. Throughput on 10 years of bars and 10,000 candidates (2,000 with --quick): run_sweep's
   seconds (median of --repeat runs, after a small warm-up sweep that pays vectorbt's JIT once
   per process: jit_warm_up_s) and candidates per second, beside the plain per-bar reference
   (tests/trading_reference.py: signals and portfolio in Python loops) on the same candidates.
   At the headline point the reference runs every candidate the sweep ran (a few minutes); at
   the scaling points it runs an evenly spaced sample (200; 20 with --quick) whose per-candidate
   time is scaled to the whole set. The speed-up is the ratio of the two per-candidate times.
   The reference's metrics are compared with the sweep's (the largest relative difference is
   reported; the bench fails above the tests' tolerance).
2. Peak memory: each measured in a child process of its own, from Linux's /proc/self/status: the
   child pays the JIT on the small warm-up sweep (its compile peaks near 1 GiB), builds the data,
   trims the heap (malloc_trim), records its RSS, resets the peak-RSS mark (VmHWM, via
   /proc/self/clear_refs), runs the sweep (or the reference on its sample) and reads the mark
   again: the difference is the run's own peak above the data it was given.
3. Scaling: sweep seconds and peak memory at 1k, 5k and 10k candidates on 10 years, and at
   2.5, 5 and 10 years with 10k candidates (a fifth of each with --quick), with the reference's
   per-candidate seconds at each bar count.

Results go to bench/results/trading_backtest.json (trading_backtest.quick.json with --quick).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from bench.api import ROOT
from ml.trading.backtest import run_sweep
from ml.trading.strategies import STRATEGIES, generate_candidates
from tests import trading_reference as ref

CLASSES = ("crypto", "stock", "forex")
SEED = 20261126
# Relative tolerance of the metric comparison: the tests' (tests/unit/test_trading_correctness.py).
RTOL = 1e-9
COMPARED = ("total_return", "annual_return", "sharpe", "max_drawdown", "win_rate", "trades", "profit_factor",
            "exposure", "positive_month_share", "final_value", "best_trade_share")  # fmt: skip


def universe(candidates: int, years: float):
    """Bars, asset classes and the first `candidates` candidates over enough symbols."""
    per_symbol = len(generate_candidates(["X"]))
    n_symbols = max(1, math.ceil(candidates / per_symbol))
    symbols = [f"SYN{i:03d}" for i in range(n_symbols)]
    classes = {s: CLASSES[i % len(CLASSES)] for i, s in enumerate(symbols)}
    bars = {s: ref.synthetic_bars(SEED + i, classes[s], years) for i, s in enumerate(symbols)}
    everything = generate_candidates(symbols)
    by_strategy = {name: [c for c in everything if c.strategy == name] for name in STRATEGIES}
    picked, i = [], 0
    while len(picked) < min(candidates, len(everything)):
        for group in by_strategy.values():
            if i < len(group) and len(picked) < candidates:
                picked.append(group[i])
        i += 1
    return bars, classes, picked


def sample(candidates: list, n: int) -> list:
    step = max(1, len(candidates) // n)
    return candidates[::step][:n]


def reference_metrics(bars, classes, candidates) -> dict[str, dict]:
    return {
        c.candidate_id: ref.backtest(bars[c.symbol], classes[c.symbol], c.strategy, c.params)[0]
        for c in candidates
    }


def largest_difference(sweep: pd.DataFrame, expected: dict[str, dict]) -> float:
    worst = 0.0
    for cid, metrics in expected.items():
        for name in COMPARED:
            want, got = metrics[name], sweep.at[cid, name]
            if want is None or got is None or (isinstance(got, float) and math.isnan(got)):
                if not (want is None and (got is None or math.isnan(got))):
                    return math.inf
                continue
            worst = max(worst, abs(float(got) - want) / max(abs(want), 1e-12))
    return worst


def time_sweep(bars, classes, candidates, repeat: int) -> tuple[float, pd.DataFrame]:
    times, metrics = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        metrics = run_sweep(bars, classes, candidates).metrics
        times.append(time.perf_counter() - started)
    return statistics.median(times), metrics


def time_reference(bars, classes, candidates) -> tuple[float, dict]:
    started = time.perf_counter()
    expected = reference_metrics(bars, classes, candidates)
    return (time.perf_counter() - started) / len(candidates), expected


def warm_up(years: float = 10) -> float:
    """One small sweep (three symbols, one per calendar) pays vectorbt's JIT compile: the kernels
    are compiled once per process whatever the shapes, so later runs time the sweep alone."""
    started = time.perf_counter()
    run_sweep(*universe(len(STRATEGIES) * 60, years))
    return time.perf_counter() - started


def peak_memory(kind: str, candidates: int, years: float, ref_sample: int) -> dict:
    """ru_maxrss growth of one run in a child process of its own (see the docstring)."""
    argv = [sys.executable, "-m", "bench.trading_backtest", "--child", kind, "--candidates",
            str(candidates), "--years", str(years), "--sample", str(ref_sample)]  # fmt: skip
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(kind: str, candidates: int, years: float, ref_sample: int) -> None:
    warm_up(years)
    bars, classes, picked = universe(candidates, years)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand the warm-up's freed heap back to the OS
    before = _status_mib("VmRSS")
    # Resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0), so the JIT's compile-time
    # peak during the warm-up does not hide the run's own.
    Path("/proc/self/clear_refs").write_text("5")
    if kind == "sweep":
        run_sweep(bars, classes, picked)
    else:
        reference_metrics(bars, classes, sample(picked, ref_sample))
    peak = _status_mib("VmHWM")
    print(json.dumps({"baseline_mib": round(before, 1), "peak_mib": round(peak, 1),
                      "run_mib": round(max(peak - before, 0.0), 1)}))  # fmt: skip


def point(
    candidates: int,
    years: float,
    repeat: int,
    ref_sample: int,
    memory: bool,
    memory_sample: int | None = None,
) -> dict:
    bars, classes, picked = universe(candidates, years)
    sweep_s, metrics = time_sweep(bars, classes, picked, repeat)
    checked = sample(picked, ref_sample)
    ref_per_candidate, expected = time_reference(bars, classes, checked)
    row = {
        "candidates": len(picked),
        "symbols": len(bars),
        "years": years,
        "bars_per_symbol": {
            c: len(next(b for s, b in bars.items() if classes[s] == c)) for c in sorted(set(classes.values()))
        },  # fmt: skip
        "sweep_s": round(sweep_s, 3),
        "sweep_candidates_per_s": round(len(picked) / sweep_s, 1),
        "reference_sample": len(checked),
        "reference_s_per_candidate": round(ref_per_candidate, 5),
        "reference_candidates_per_s": round(1 / ref_per_candidate, 2),
        "reference_s_scaled_to_all": round(ref_per_candidate * len(picked), 1),
        "speedup": round(ref_per_candidate * len(picked) / sweep_s, 1),
        "max_relative_difference": largest_difference(metrics, expected),
    }
    if memory:
        # The per-bar loop holds one candidate at a time: its peak does not grow with the sample.
        row["sweep_memory"] = peak_memory("sweep", candidates, years, memory_sample or ref_sample)
        row["reference_memory"] = peak_memory("reference", candidates, years, memory_sample or ref_sample)
    print(json.dumps(row), flush=True)
    if row["max_relative_difference"] > RTOL:
        raise SystemExit(f"the sweep disagrees with the reference: {row}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 candidates instead of 10,000")
    parser.add_argument("--repeat", type=int, default=3, help="sweep runs per point (median)")
    parser.add_argument("--child", choices=("sweep", "reference"), help=argparse.SUPPRESS)
    parser.add_argument("--candidates", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--years", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--sample", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.candidates, args.years, args.sample)
        return

    full = 2_000 if args.quick else 10_000
    ref_sample = 20 if args.quick else 200
    started = time.perf_counter()
    report: dict = {"cores": os.cpu_count(), "quick": args.quick, "repeat": args.repeat,
                    "candidates_per_symbol": len(generate_candidates(["X"])), "rtol": RTOL,
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
    report["jit_warm_up_s"] = round(warm_up(), 1)
    headline = point(full, 10, args.repeat, full, memory=True, memory_sample=ref_sample)
    report["headline"] = headline
    report["by_candidates"] = [
        point(n, 10, args.repeat, ref_sample, memory=True) for n in (full // 10, full // 2)
    ] + [headline]
    report["by_years"] = [point(full, y, args.repeat, ref_sample, memory=True) for y in (2.5, 5)] + [headline]
    report["seconds"] = round(time.perf_counter() - started, 1)
    # Other work on the machine moves the timings; the load says how much there was.
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]

    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / ("trading_backtest.quick.json" if args.quick else "trading_backtest.json")
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")
    print("\n| candidates | years | sweep s | sweep cand/s | per-bar cand/s | speed-up | sweep peak MiB "
          "| per-bar peak MiB (sample) |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
    for row in report["by_candidates"] + report["by_years"][:-1]:
        print(
            f"| {row['candidates']} | {row['years']} | {row['sweep_s']} | {row['sweep_candidates_per_s']} "
            f"| {row['reference_candidates_per_s']} | {row['speedup']}x | {row['sweep_memory']['run_mib']} "
            f"| {row['reference_memory']['run_mib']} ({row['reference_sample']}) |"
        )


if __name__ == "__main__":
    main()
