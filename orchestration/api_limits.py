"""Platform-wide API limits, kept in Postgres so that every process and run shares them.

A usage policy such as Nominatim's "1 request per second" counts the whole application, not a
run: Dagster pools bound how many runs call an API at once, and the rate slot here spaces the
calls themselves, even across runs in different processes. Daily budgets (LocationIQ's free
tier) are counted before a request is sent, so concurrent runs can never overspend them.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable

import psycopg

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
    """The ledger as one run uses it: one autocommit connection for all its calls (a catalogue
    makes hundreds; a connection each cost more than the replayed requests themselves), closed
    with `close()` or when the ledger is dropped."""

    def __init__(self, warehouse: WarehouseResource, sleep: Callable[[float], None] = time.sleep):
        self.warehouse = warehouse
        self.sleep = sleep
        self.waited_s = 0.0
        self._conn: psycopg.Connection | None = None

    def _execute(self, query: str, params) -> tuple | None:
        # Every statement commits on its own (autocommit), so a row lock lasts one statement.
        for attempt in (1, 2):
            if self._conn is None or self._conn.closed:
                self._conn = self.warehouse.connect()
                self._conn.autocommit = True
                weakref.finalize(self, self._conn.close)
            try:
                return self._conn.execute(query, params).fetchone()
            except psycopg.OperationalError:
                # A connection lost between calls (a server restart): reconnect once. (A spend
                # whose outcome is unknown may count twice: overcounting a budget is the safe side.)
                if attempt == 2 or not self._conn.broken:
                    raise
                self._conn.close()
        return None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def wait_for_slot(self, source: str, min_interval_s: float) -> float:
        """Reserve the next free slot for `source` and sleep until it; returns the wait.

        The slot row is locked only for the reservation itself (autocommit), so the next
        caller reserves the slot after ours while we sleep."""
        if min_interval_s <= 0:
            return 0.0
        (wait,) = self._execute(
            """INSERT INTO ops.api_rate_slots AS s (source, next_slot_at)
               VALUES (%(source)s, clock_timestamp() + make_interval(secs => %(interval)s))
               ON CONFLICT (source) DO UPDATE
                  SET next_slot_at = greatest(s.next_slot_at, clock_timestamp())
                                     + make_interval(secs => %(interval)s)
               RETURNING extract(epoch FROM next_slot_at - make_interval(secs => %(interval)s)
                                           - clock_timestamp())::float8""",
            {"source": source, "interval": min_interval_s},
        )
        wait = max(0.0, wait)
        if wait:
            self.sleep(wait)
            self.waited_s += wait
        return wait

    def spend(self, source: str, daily_limit: int) -> int:
        """Count one request against today's (UTC) budget; raise if it is spent."""
        row = self._execute(
            """INSERT INTO ops.api_daily_usage AS u (source, day, used)
               SELECT %(source)s, (now() AT TIME ZONE 'UTC')::date, 1 WHERE %(limit)s > 0
               ON CONFLICT (source, day) DO UPDATE SET used = u.used + 1
                WHERE u.used < %(limit)s
               RETURNING used""",
            {"source": source, "limit": daily_limit},
        )
        if row is None:
            raise BudgetExhaustedError(source, daily_limit)
        return row[0]

    def used_today(self, source: str) -> int:
        row = self._execute(
            """SELECT used FROM ops.api_daily_usage
                WHERE source = %s AND day = (now() AT TIME ZONE 'UTC')::date""",
            (source,),
        )
        return row[0] if row else 0
