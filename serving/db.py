"""The serving role's connection pool and the one way routes read: inside a transaction with
the tenant set locally, so Postgres RLS decides what a request can see."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import AsyncClientCursor
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from serving.config import ServingConfig


class Database:
    def __init__(self, config: ServingConfig):
        self.pool = AsyncConnectionPool(
            config.database_url,
            min_size=config.pool_min,
            max_size=config.pool_max,
            open=False,
            # Autocommit, with explicit BEGIN/COMMIT in the one statement batch each request
            # sends (see `fetch`). A connection handed back mid-transaction (after an error)
            # is rolled back by the pool, so no tenant setting survives into another request.
            kwargs={"row_factory": dict_row, "autocommit": True, "cursor_factory": AsyncClientCursor},
        )

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=15)

    async def close(self) -> None:
        await self.pool.close()

    async def fetch(
        self,
        tenant_id: str,
        query: str,
        params: Sequence[Any] = (),
        settings: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Rows visible to `tenant_id`, read in a transaction that sets the tenant locally.

        BEGIN, the tenant setting, the query and COMMIT reach the server as one batch: one
        network round trip per request. Parameters are bound client-side by psycopg's literal
        quoting (the escaping psycopg2 always used), never by string formatting. `settings` are
        further transaction-local settings (e.g. hnsw.ef_search), set in the same batch."""
        settings = dict(settings or {})
        local = "".join(f"; {_SET_LOCAL}" for _ in settings)
        values = [v for pair in settings.items() for v in pair]
        async with self.pool.connection() as conn:
            cur = conn.cursor()
            await cur.execute(f"BEGIN; {_SET_TENANT}{local}; {query}; COMMIT", (tenant_id, *values, *params))
            for _ in range(2 + len(settings)):  # past BEGIN's result and each set_config's
                cur.nextset()
            return await cur.fetchall()

    async def fetch_unscoped(self, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """For the definer functions that resolve credentials (no tenant yet)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall()


_SET_TENANT = "SELECT set_config('app.current_tenant', %s, true)"
_SET_LOCAL = "SELECT set_config(%s, %s, true)"
