"""Serving settings, from the environment (the CLI exports the database URL)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from orchestration.settings import ENV_SERVING_URL


@dataclass(frozen=True)
class ServingConfig:
    database_url: str
    pool_min: int = 2
    pool_max: int = 10
    # Key lookups are cached this long: a revoked key stops working within this many seconds.
    auth_cache_ttl_s: float = 30.0
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    @classmethod
    def from_env(cls) -> ServingConfig:
        url = os.environ.get(ENV_SERVING_URL)
        if not url:
            raise RuntimeError(f"{ENV_SERVING_URL} is not set; start the API with `bizosaas serve`")
        public_key = os.environ.get("BIZOSAAS_JWT_PUBLIC_KEY") or None
        default_algorithms = "RS256,ES256" if public_key else "HS256"
        return cls(
            database_url=url,
            pool_min=int(os.environ.get("BIZOSAAS_API_POOL_MIN", "2")),
            pool_max=int(os.environ.get("BIZOSAAS_API_POOL_MAX", "10")),
            auth_cache_ttl_s=float(os.environ.get("BIZOSAAS_API_AUTH_CACHE_TTL_S", "30")),
            jwt_secret=os.environ.get("BIZOSAAS_JWT_SECRET") or None,
            jwt_public_key=public_key,
            jwt_algorithms=tuple(
                a.strip() for a in os.environ.get("BIZOSAAS_JWT_ALGORITHMS", default_algorithms).split(",")
            ),
            jwt_audience=os.environ.get("BIZOSAAS_JWT_AUDIENCE") or None,
            jwt_issuer=os.environ.get("BIZOSAAS_JWT_ISSUER") or None,
        )
