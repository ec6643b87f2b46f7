"""Platform-wide API limits, kept in Postgres so that every process and run shares them.

A usage policy such as Nominatim's "1 request per second" counts the whole application, not a
run: Dagster pools bound how many runs call an API at once, and the rate slot here spaces the
calls themselves, even across runs in different processes. Daily budgets (LocationIQ's free
tier) are counted before a request is sent, so concurrent runs can never overspend them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from orchestration.errors import PlatformError
from orchestration.warehouse import WarehouseResource


class BudgetExhaustedError(PlatformError):
    def __init__(self, source: str, limit: int):
        super().__init__(
            f"{source}: the daily budget of {limit} requests is spent; it resets at 00:00 UTC "
            "(raise the limit in the resource config if your plan allows more)"
        )
        self.source = source


class ApiLedger:
    def __init__(self, warehouse: WarehouseResource, sleep: Callable[[float], None] = time.sleep):
        self.warehouse = warehouse
        self.sleep = sleep
        self.waited_s = 0.0

    def wait_for_slot(self, source: str, min_interval_s: float) -> float:
        """Reserve the next free slot for `source` and sleep until it; returns the wait.

        The slot row is locked only for the reservation itself (autocommit), so the next
        caller reserves the slot after ours while we sleep."""
        if min_interval_s <= 0:
            return 0.0
        with self.warehouse.connect() as conn:
            conn.autocommit = True
            conn.execute(
                "INSERT INTO ops.api_rate_slots (source) VALUES (%s) ON CONFLICT DO NOTHING", (source,)
            )
            (wait,) = conn.execute(
                """UPDATE ops.api_rate_slots
                      SET next_slot_at = greatest(next_slot_at, clock_timestamp())
                                         + make_interval(secs => %s)
                    WHERE source = %s
                RETURNING extract(epoch FROM next_slot_at - make_interval(secs => %s)
                                            - clock_timestamp())::float8""",
                (min_interval_s, source, min_interval_s),
            ).fetchone()
        wait = max(0.0, wait)
        if wait:
            self.sleep(wait)
            self.waited_s += wait
        return wait

    def spend(self, source: str, daily_limit: int) -> int:
        """Count one request against today's (UTC) budget; raise if it is spent."""
        with self.warehouse.connect() as conn:
            conn.autocommit = True
            row = conn.execute(
                """INSERT INTO ops.api_daily_usage AS u (source, day, used)
                   SELECT %(source)s, (now() AT TIME ZONE 'UTC')::date, 1 WHERE %(limit)s > 0
                   ON CONFLICT (source, day) DO UPDATE SET used = u.used + 1
                    WHERE u.used < %(limit)s
                   RETURNING used""",
                {"source": source, "limit": daily_limit},
            ).fetchone()
        if row is None:
            raise BudgetExhaustedError(source, daily_limit)
        return row[0]

    def used_today(self, source: str) -> int:
        with self.warehouse.connect() as conn:
            row = conn.execute(
                """SELECT used FROM ops.api_daily_usage
                    WHERE source = %s AND day = (now() AT TIME ZONE 'UTC')::date""",
                (source,),
            ).fetchone()
        return row[0] if row else 0
