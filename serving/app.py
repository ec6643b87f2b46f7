"""The serving API: FastAPI over the materialized tables, tenant-isolated by Postgres RLS.

Run it with `bizosaas serve` (or `make demo`); docs at /docs.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from serving import errors
from serving.auth import CredentialCache
from serving.config import ServingConfig
from serving.db import Database
from serving.routes import (
    admin,
    analytics,
    brain,
    crm,
    directory,
    esports,
    gaming,
    health,
    quanttrade,
    saleor,
    tenants,
)


def create_app(config: ServingConfig | None = None) -> FastAPI:
    config = config or ServingConfig.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await app.state.db.open()
        # BIZOSAAS_API_WARM_EMBEDDER=1 loads the embedding model in the background at start-up,
        # so the first knowledge search does not wait for it (~10 s for MiniLM).
        warming = None
        if config.warm_embedder:
            warming = asyncio.create_task(app.state.embedders.warm())
        try:
            yield
        finally:
            if warming is not None and not warming.done():
                warming.cancel()
            app.state.embedders.close()
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
    app.state.embedders = brain.Embedders(config)
    app.state.llm = brain.llm_from_config(config)
    errors.install(app)
    for module in (health, tenants, directory, gaming, esports, saleor, crm, analytics, admin, brain):
        app.include_router(module.router)
    # The domains' mart reads live beside their routes, under /api/brain/analytics/<domain>.
    app.include_router(esports.analytics_router)
    app.include_router(saleor.analytics_router)
    app.include_router(crm.analytics_router)
    app.include_router(quanttrade.router)
    app.openapi = lambda: _openapi_with_auth(app)
    return app


def _openapi_with_auth(app: FastAPI) -> dict:
    """Document the credentials and the X-Tenant-ID header that `serving.auth` reads."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schema.setdefault("components", {})["securitySchemes"] = {
        "ApiKey": {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "`bzs_...` key from `bizosaas keys create`",
        },
        "Bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "JWT with tenant_id, role, sub and exp claims (or an API key)",
        },
    }
    narrow = {
        "name": "X-Tenant-ID",
        "in": "header",
        "required": False,
        "description": "A master credential may act as one of its clients",
        "schema": {"type": "string"},
    }
    for path, operations in schema["paths"].items():
        if not path.startswith("/api/"):
            continue
        for operation in operations.values():
            operation["security"] = [{"ApiKey": []}, {"Bearer": []}]
            operation.setdefault("parameters", []).append(narrow)
    app.openapi_schema = schema
    return schema
