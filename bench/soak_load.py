"""The soak's API load: a separate process of closed-loop clients reading a mix of tenant routes
until SIGINT/SIGTERM, then writing its counts (per route, per status class, per minute) as JSON.

    python -m bench.soak_load --url http://127.0.0.1:8000 --plan plan.json --out load.json

`plan.json` is a list of {"key": <API key>, "paths": [...]} (one entry per tenant key); each
client picks an entry and a path at random per request (seeded).
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.by_route: dict[str, Counter[str]] = defaultdict(Counter)
        self.by_minute: dict[int, Counter[str]] = defaultdict(Counter)
        self.latencies_ms: list[float] = []
        self.errors: Counter[str] = Counter()  # first words of each error, to say what failed

    def add(self, route: str, outcome: str, minute: int, ms: float | None, detail: str = "") -> None:
        with self.lock:
            for bucket in (self.counts, self.by_route[route], self.by_minute[minute]):
                bucket["total"] += 1
                bucket[outcome] += 1
            if ms is not None:
                self.latencies_ms.append(ms)
            if detail:
                self.errors[detail[:120]] += 1


def _route(path: str) -> str:
    return path.split("?")[0]


def client_loop(url: str, plan: list[dict], tally: Tally, stop: threading.Event, seed: int, think_s: float):
    rng = random.Random(seed)
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=10.0) as client:
        while not stop.is_set():
            entry = rng.choice(plan)
            path = rng.choice(entry["paths"])
            minute = int((time.monotonic() - started) // 60)
            t0 = time.perf_counter()
            try:
                response = client.get(path, headers={"X-API-Key": entry["key"]})
            except httpx.HTTPError as exc:
                tally.add(_route(path), "connection_errors", minute, None, f"{type(exc).__name__}: {exc}")
            else:
                ms = (time.perf_counter() - t0) * 1000
                status = response.status_code
                outcome = "2xx" if status < 400 else "4xx" if status < 500 else "5xx"
                detail = f"{status} {path}: {response.text[:80]}" if status >= 500 else ""
                tally.add(_route(path), outcome, minute, ms, detail)
            stop.wait(think_s)


def summary(tally: Tally, seconds: float) -> dict:
    lat = sorted(tally.latencies_ms)

    def q(p: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None

    return {
        "seconds": round(seconds, 1),
        "counts": dict(tally.counts),
        "requests_per_s": round(tally.counts["total"] / seconds, 1) if seconds else 0.0,
        "latency_ms": {"p50": q(0.5), "p95": q(0.95), "p99": q(0.99), "max": q(1.0)},
        "by_route": {k: dict(v) for k, v in sorted(tally.by_route.items())},
        "by_minute": {str(k): dict(v) for k, v in sorted(tally.by_minute.items())},
        "errors": dict(tally.errors.most_common(20)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--plan", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--think-ms", type=float, default=50.0, help="pause between a client's requests")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    plan = json.loads(args.plan.read_text())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    tally = Tally()
    started = time.monotonic()
    threads = [
        threading.Thread(
            target=client_loop,
            args=(args.url, plan, tally, stop, args.seed + i, args.think_ms / 1000),
            daemon=True,
        )
        for i in range(args.clients)
    ]
    for t in threads:
        t.start()
    while not stop.is_set():
        stop.wait(5)
        # A snapshot now and then, so a killed load generator still leaves its figures.
        args.out.write_text(json.dumps(summary(tally, time.monotonic() - started), indent=2))
    for t in threads:
        t.join(timeout=15)
    args.out.write_text(json.dumps(summary(tally, time.monotonic() - started), indent=2))


if __name__ == "__main__":
    main()
