"""The serving role's connection pool and the one way routes read: inside a transaction with
the tenant set locally, so Postgres RLS decides what a request can see."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import AsyncConnection
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
            kwargs={"row_factory": dict_row, "autocommit": False},
            # A connection handed back mid-transaction is rolled back by the pool, so no
            # request's tenant setting can survive into the next request.
        )

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=15)

    async def close(self) -> None:
        await self.pool.close()

    async def fetch(
        self, tenant_id: str, query: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[dict[str, Any]]:
        """Rows visible to `tenant_id`. Pipeline mode sends BEGIN, the tenant setting, the
        query and COMMIT together: one network round trip per request."""
        async with self.pool.connection() as conn:
            return await _fetch_as_tenant(conn, tenant_id, query, params)

    async def fetch_unscoped(self, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """For the definer functions that resolve credentials (no tenant yet)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(query, params)
            rows = await cur.fetchall()
            await conn.commit()
            return rows


async def _fetch_as_tenant(conn: AsyncConnection, tenant_id: str, query: str, params) -> list:
    async with conn.pipeline(), conn.transaction():
        await conn.execute("SELECT set_config('app.current_tenant', %s, true)", (tenant_id,))
        cur = await conn.execute(query, params)
    return await cur.fetchall()
