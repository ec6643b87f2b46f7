"""The serving API: FastAPI over the materialized tables, tenant-isolated by Postgres RLS.

Run it with `bizosaas serve` (or `make demo`); docs at /docs.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from serving import errors
from serving.auth import CredentialCache
from serving.config import ServingConfig
from serving.db import Database
from serving.routes import admin, health, tenants


def create_app(config: ServingConfig | None = None) -> FastAPI:
    config = config or ServingConfig.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await app.state.db.open()
        try:
            yield
        finally:
            await app.state.db.close()

    app = FastAPI(
        title="BizOSaaS Brain API",
        version="0.1.0",
        description=(
            "Tenant-isolated reads of the BizOSaaS data platform. Authenticate with `X-API-Key` "
            "or `Authorization: Bearer <JWT>`; a master credential may add `X-Tenant-ID` to act "
            "as one of its clients. Lists share one convention: `limit`, `offset`, `sort` and a "
            "`{data, page}` envelope. Errors are `{error: {status, code, message}}`."
        ),
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.db = Database(config)
    app.state.credentials = CredentialCache(config.auth_cache_ttl_s)
    errors.install(app)
    for module in (health, tenants, admin):
        app.include_router(module.router)
    return app
