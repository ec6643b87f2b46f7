"""The platform-wide API ledgers on the real Postgres: rate slots spaced across concurrent
callers, and a daily budget that concurrent callers can never overspend."""

import threading
import time

import pytest

from orchestration.api_limits import ApiLedger, BudgetExhaustedError
from orchestration.warehouse import WarehouseResource


def _ledger(platform):
    return ApiLedger(WarehouseResource(database_url=platform.writer_url))


def test_rate_slots_space_concurrent_callers(platform):
    interval, callers = 0.25, 6
    started: list[float] = []
    lock = threading.Lock()

    def call():
        _ledger(platform).wait_for_slot("bench_slot_test", interval)
        with lock:
            started.append(time.monotonic())

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    started.sort()
    gaps = [b - a for a, b in zip(started, started[1:], strict=False)]
    # every caller got its own slot: the sends are spaced by the interval (minus clock jitter)
    assert len(started) == callers and min(gaps) >= interval * 0.8, gaps
    assert started[-1] - started[0] >= interval * (callers - 1) * 0.9


def test_a_zero_interval_never_waits(platform):
    ledger = _ledger(platform)
    assert ledger.wait_for_slot("no_limit", 0) == 0 and ledger.waited_s == 0


def test_the_daily_budget_holds_under_concurrency(platform):
    limit, callers = 7, 20
    granted, refused = [], []

    def spend():
        try:
            granted.append(_ledger(platform).spend("budget_test", limit))
        except BudgetExhaustedError as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=spend) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(granted) == list(range(1, limit + 1))
    assert len(refused) == callers - limit and "resets at 00:00 UTC" in refused[0]
    assert _ledger(platform).used_today("budget_test") == limit
    with pytest.raises(BudgetExhaustedError):
        _ledger(platform).spend("zero_budget", 0)


def test_one_ledger_uses_one_connection_and_survives_losing_it(platform):
    ledger = _ledger(platform)
    assert ledger.spend("ledger_conn_test", 10) == 1
    first = ledger._conn.info.backend_pid
    ledger.wait_for_slot("ledger_conn_test", 0.001)
    assert ledger.spend("ledger_conn_test", 10) == 2 and ledger._conn.info.backend_pid == first
    with platform.admin() as admin:  # the server drops the connection between two calls
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
    assert ledger.spend("ledger_conn_test", 10) == 3
    assert ledger._conn.info.backend_pid != first
    ledger.close()
    assert ledger._conn.closed and ledger.used_today("ledger_conn_test") == 3
