"""Who is calling, and which tenant the request runs as.

Credentials: an API key in `X-API-Key` (or as a bearer token), or a bearer JWT signed with the
configured key carrying `tenant_id`, `role`, `sub` and `exp`. The tenant comes from the
credential; `X-Tenant-ID` may only narrow it (a master tenant selecting one of its clients).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import Depends, Request

from orchestration.tenants import TENANT_ID_PATTERN
from serving.errors import ApiError, unauthorized
from serving.keys import ROLES, parse_key


@dataclass(frozen=True)
class Principal:
    tenant_id: str  # the credential's tenant
    role: str
    kind: str  # master | client | internal
    readable: tuple[str, ...]  # tenants this credential may read
    subject: str  # key id or JWT subject
    via: str  # "api_key" | "jwt"

    @property
    def is_master(self) -> bool:
        return self.kind == "master"


@dataclass(frozen=True)
class Scope:
    """The request's effective tenant and the principal behind it."""

    tenant_id: str
    principal: Principal


class CredentialCache:
    """TTL cache of resolved credentials, so the hot path costs no extra query."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000):
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: dict[str, tuple[float, Principal | None]] = {}

    def get(self, key: str) -> tuple[bool, Principal | None]:
        hit = self._entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def put(self, key: str, principal: Principal | None) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        # Failures are cached briefly too: a client retrying a bad key must not hammer the DB.
        ttl = self.ttl_s if principal else min(self.ttl_s, 5.0)
        self._entries[key] = (time.monotonic() + ttl, principal)


_RESOLVE_KEY = """
SELECT a.tenant_id, a.role, x.kind, x.readable
  FROM core.authenticate_api_key(%s, %s) a
  CROSS JOIN LATERAL core.tenant_access(a.tenant_id) x
"""
_RESOLVE_TENANT = "SELECT kind, readable FROM core.tenant_access(%s)"


async def _from_api_key(request: Request, raw: str) -> Principal:
    parsed = parse_key(raw.strip())
    if parsed is None:
        raise unauthorized("malformed API key")
    cache: CredentialCache = request.app.state.credentials
    cache_key = f"key:{parsed.key_id}:{parsed.secret_hash}"
    found, principal = cache.get(cache_key)
    if not found:
        rows = await request.app.state.db.fetch_unscoped(_RESOLVE_KEY, (parsed.key_id, parsed.secret_hash))
        principal = None
        if rows:
            row = rows[0]
            principal = Principal(
                row["tenant_id"], row["role"], row["kind"], tuple(row["readable"]), parsed.key_id, "api_key"
            )
        cache.put(cache_key, principal)
    if principal is None:
        raise unauthorized("invalid or revoked API key")
    return principal


async def _from_jwt(request: Request, token: str) -> Principal:
    config = request.app.state.config
    key = config.jwt_public_key or config.jwt_secret
    if not key:
        raise unauthorized("bearer tokens are not enabled on this server; use an API key")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=list(config.jwt_algorithms),
            audience=config.jwt_audience,
            issuer=config.jwt_issuer,
            options={"require": ["exp", "sub", "tenant_id", "role"]},
        )
    except jwt.ExpiredSignatureError:
        raise unauthorized("token expired") from None
    except jwt.PyJWTError as exc:
        raise unauthorized(f"invalid token: {exc}") from None
    tenant_id, role = claims["tenant_id"], claims["role"]
    if not isinstance(tenant_id, str) or not TENANT_ID_PATTERN.match(tenant_id) or role not in ROLES:
        raise unauthorized("invalid token: bad tenant_id or role claim")
    cache: CredentialCache = request.app.state.credentials
    found, principal = cache.get(f"tenant:{tenant_id}")
    if not found:
        rows = await request.app.state.db.fetch_unscoped(_RESOLVE_TENANT, (tenant_id,))
        principal = None
        if rows:
            principal = Principal(tenant_id, "reader", rows[0]["kind"], tuple(rows[0]["readable"]), "", "jwt")
        cache.put(f"tenant:{tenant_id}", principal)
    if principal is None:
        raise unauthorized("the token's tenant is unknown or offboarded")
    return Principal(tenant_id, role, principal.kind, principal.readable, str(claims["sub"]), "jwt")


async def authenticate(request: Request) -> Principal:
    # Headers are read directly rather than declared as FastAPI parameters: per-parameter
    # validation was a measurable share of each request. They are documented as security
    # schemes in the OpenAPI document instead (serving/app.py).
    headers = request.headers
    api_key = headers.get("x-api-key")
    if api_key:
        return await _from_api_key(request, api_key)
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("Authorization must be 'Bearer <token>'")
        token = token.strip()
        if token.startswith("bzs_"):
            return await _from_api_key(request, token)
        return await _from_jwt(request, token)
    raise unauthorized("missing credentials: send X-API-Key or Authorization: Bearer")


async def tenant_scope(request: Request) -> Scope:
    principal = await authenticate(request)
    requested = request.headers.get("x-tenant-id")
    if requested is None or requested == principal.tenant_id:
        return Scope(principal.tenant_id, principal)
    if principal.is_master and requested in principal.readable and TENANT_ID_PATTERN.match(requested):
        return Scope(requested, principal)
    raise ApiError(403, "X-Tenant-ID does not name a tenant this credential may act as")


def require_master(scope: Annotated[Scope, Depends(tenant_scope)]) -> Scope:
    if not scope.principal.is_master or scope.tenant_id != scope.principal.tenant_id:
        raise ApiError(403, "this route is for the master tenant's own credentials")
    return scope


TenantScope = Annotated[Scope, Depends(tenant_scope)]
MasterScope = Annotated[Scope, Depends(require_master)]
