"""Serving settings, from the environment (the CLI exports the database URL)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from orchestration.settings import (
    ENV_API_POOL_MAX,
    ENV_API_POOL_MIN,
    ENV_LLM_API_KEY,
    ENV_LLM_BASE_URL,
    ENV_LLM_MODEL,
    ENV_QUANTTRADE_ALLOWED_IPS,
    ENV_SERVING_URL,
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str | None, name: str = ENV_QUANTTRADE_ALLOWED_IPS) -> tuple[Network, ...] | None:
    """Comma-separated IPs or CIDR blocks (IPv4 and IPv6); None when unset or blank (no list).

    A bad entry stops the server at start-up: a typo must not silently open (or close) the desk."""
    if text is None or not text.strip():
        return None
    networks = []
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise RuntimeError(f"{name}: {entry!r} is not an IP address or CIDR block") from None
    if not networks:
        raise RuntimeError(f"{name} lists no address; unset it to allow any")
    return tuple(networks)


def connection_budget(
    workers: int, pool_max: int, max_connections: int, reserved: int
) -> tuple[str, str] | None:
    """Whether `workers` API processes, each with a pool of up to `pool_max` connections, fit the
    server: ("error", why) when they cannot all connect at once, ("warning", why) when they would
    take more than half of it (Dagster's runs, sensors and dbt need the rest), None when they fit.
    Every replica of the API counts: on Kubernetes, workers = replicas x workers per pod."""
    usable = max_connections - reserved
    need = workers * pool_max
    sizing = f"{workers} API worker(s) x pool max {pool_max} = {need} connections"
    if need > usable:
        return "error", (
            f"{sizing}, but Postgres allows {usable} (max_connections {max_connections} - "
            f"{reserved} reserved); use fewer workers, a smaller {ENV_API_POOL_MAX}, "
            "or raise max_connections"
        )
    if need > usable // 2:
        return "warning", (
            f"{sizing}: more than half of the {usable} the server allows, "
            "leaving little for Dagster runs and dbt"
        )
    return None


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
    # Knowledge search (serving/routes/brain.py). The embedding model, its endpoint and key come
    # from BIZOSAAS_EMBEDDING_* through orchestration.embedding_model.embedding_model_from_env,
    # the one reader shared with the Dagster definitions; these are the API's own knobs.
    warm_embedder: bool = False  # load the embedding model at start-up, not at the first search
    # A question is embedded while a client waits: an API model gets a short timeout and few
    # attempts (an asset, which nobody waits on, retries longer).
    embed_timeout_s: float = 5.0
    embed_attempts: int = 2
    # Measured (bench.knowledge_api --quick --only thrillring, 2 workers on 2 shared cores, load
    # ~3-5 from other sessions, so rough): the LRU took the repeated mix at 100 clients from 30
    # to 88 req/s (p95 2.9 s -> 1.6 s; vectors only 59 -> 569 req/s), 100% hits once warm; one
    # torch thread per worker took distinct questions at 100 clients from 11 to 33 req/s (two
    # workers with torch's default of one thread per core oversubscribe the cores; concurrent
    # requests still embed in parallel, torch releases the GIL).
    question_cache: int = 2048  # question embeddings kept per process (LRU); 0 = off
    torch_threads: int = 1  # intra-op threads of a local model per worker; 0 = torch's default
    llm_base_url: str | None = None  # optional answer generation (OpenAI-compatible)
    llm_model: str | None = None
    llm_api_key: str | None = None
    # Client addresses allowed on the QuantTrade routes (serving/routes/quanttrade.py); None = any.
    quanttrade_allowed_ips: tuple[Network, ...] | None = None

    @classmethod
    def from_env(cls) -> ServingConfig:
        url = os.environ.get(ENV_SERVING_URL)
        if not url:
            raise RuntimeError(f"{ENV_SERVING_URL} is not set; start the API with `bizosaas serve`")
        public_key = os.environ.get("BIZOSAAS_JWT_PUBLIC_KEY") or None
        default_algorithms = "RS256,ES256" if public_key else "HS256"
        return cls(
            database_url=url,
            pool_min=int(os.environ.get(ENV_API_POOL_MIN, "2")),
            pool_max=int(os.environ.get(ENV_API_POOL_MAX, "10")),
            auth_cache_ttl_s=float(os.environ.get("BIZOSAAS_API_AUTH_CACHE_TTL_S", "30")),
            jwt_secret=os.environ.get("BIZOSAAS_JWT_SECRET") or None,
            jwt_public_key=public_key,
            jwt_algorithms=tuple(
                a.strip() for a in os.environ.get("BIZOSAAS_JWT_ALGORITHMS", default_algorithms).split(",")
            ),
            jwt_audience=os.environ.get("BIZOSAAS_JWT_AUDIENCE") or None,
            jwt_issuer=os.environ.get("BIZOSAAS_JWT_ISSUER") or None,
            warm_embedder=os.environ.get("BIZOSAAS_API_WARM_EMBEDDER", "") not in ("", "0"),
            embed_timeout_s=float(os.environ.get("BIZOSAAS_API_EMBED_TIMEOUT_S", "5")),
            embed_attempts=int(os.environ.get("BIZOSAAS_API_EMBED_ATTEMPTS", "2")),
            question_cache=int(os.environ.get("BIZOSAAS_API_QUESTION_CACHE", "2048")),
            torch_threads=int(os.environ.get("BIZOSAAS_API_TORCH_THREADS", "1")),
            llm_base_url=(os.environ.get(ENV_LLM_BASE_URL) or "").strip() or None,
            llm_model=(os.environ.get(ENV_LLM_MODEL) or "").strip() or None,
            llm_api_key=os.environ.get(ENV_LLM_API_KEY) or None,
            quanttrade_allowed_ips=parse_networks(os.environ.get(ENV_QUANTTRADE_ALLOWED_IPS)),
        )
