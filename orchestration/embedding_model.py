"""Which embedding model the knowledge layer uses, as a resource the assets and the API share.

`BIZOSAAS_EMBEDDING_MODEL` picks it (default all-MiniLM-L6-v2, local and offline); a tenant may
override it with `knowledge.embedding_model` in its settings. text-embedding-3-small goes to an
OpenAI-compatible endpoint (`BIZOSAAS_EMBEDDING_BASE_URL`, `BIZOSAAS_EMBEDDING_API_KEY`) through
`HttpSourceResource.fetch`, so retries, Retry-After, timeouts and replay (fixtures/embeddings_api)
are the platform's; the key travels only in the Authorization header, which replay never matches
on and recording never writes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from typing import Any

import httpx
import numpy as np
from dagster import EnvVar
from pydantic import Field

from ml.knowledge.embedders import LOCAL_MODELS, MINILM, Embedder, MiniLmEmbedder, model_dim, unit_rows
from orchestration.knowledge_settings import KnowledgeSettings
from orchestration.llm import openai_error_message
from orchestration.settings import (
    ENV_EMBEDDING_API_KEY,
    ENV_EMBEDDING_BASE_URL,
    ENV_EMBEDDING_MODEL,
    load_settings,
    source_mode,
)
from orchestration.sources import Attempt, HttpSourceResource, Reject, json_body, retry_on_status

# OpenAI accepts up to 2,048 inputs per request; smaller requests keep a retry cheap.
MAX_API_BATCH = 512


class EmbeddingModelResource(HttpSourceResource):
    source = "embeddings_api"
    model: str = Field(default=MINILM, description=f"Default embedding model ({ENV_EMBEDDING_MODEL}).")
    base_url: str = Field(
        default="https://api.openai.com/v1",
        description=f"OpenAI-compatible endpoint for API models ({ENV_EMBEDDING_BASE_URL}).",
    )
    api_key: str | None = Field(
        default=None, description=f"Bearer key for API models ({ENV_EMBEDDING_API_KEY})."
    )
    batch_size: int = Field(default=64, ge=1, description="Texts per forward pass (local models).")
    api_batch_size: int = Field(
        default=MAX_API_BATCH, ge=1, le=MAX_API_BATCH, description="Texts per request (API models)."
    )
    timeout_s: float = Field(default=60.0, description="Per-request timeout in seconds (API models).")

    def model_for(self, knowledge: KnowledgeSettings) -> str:
        """The tenant's model: its `knowledge.embedding_model` setting, else the default."""
        chosen = knowledge.embedding_model or self.model
        model_dim(chosen)  # unknown models fail here, with the choices
        return chosen

    def embedder(self, model: str | None = None, *, long_lived: bool = False) -> Embedder:
        """The embedder of `model` (default: the resource's). `long_lived` (the API's, one per
        process) keeps one HTTP client for its lifetime and no history of attempts."""
        model = model or self.model
        model_dim(model)
        if model in LOCAL_MODELS:
            return MiniLmEmbedder(batch_size=self.batch_size)
        return ApiEmbedder(self, model, long_lived=long_lived)

    def endpoint(self) -> str:
        return self.base_url.strip().rstrip("/") + "/embeddings"


class ApiEmbedder:
    """`POST {base_url}/embeddings` with {"model", "input": [...]}, at most `api_batch_size` texts
    a request; identical texts are sent once. Failures raise SourceError (retries exhausted, or an
    answer retrying cannot fix) with the reason in words.

    An asset's embedder (one per run) keeps every exchange in `attempts` for its metadata; a
    `long_lived` one (the API's, for the life of the process) keeps none, which would only grow,
    and reuses one HTTP client (connection pool; httpx clients are thread-safe)."""

    def __init__(self, resource: EmbeddingModelResource, model: str, *, long_lived: bool = False):
        self.resource = resource
        self.model = model
        self.dim = model_dim(model)
        self.long_lived = long_lived
        self.attempts: list[Attempt] = []  # every exchange, for metadata and debugging
        self.usage_tokens = 0
        self._client: httpx.Client | None = None

    def _new_client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.resource.api_key}"} if self.resource.api_key else {}
        return self.resource.http_client(headers=headers)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not self.long_lived:
            with self._new_client() as client:
                return self._embed(client, texts, self.attempts)
        if self._client is None:
            self._client = self._new_client()
        return self._embed(self._client, texts, [])

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _embed(self, client: httpx.Client, texts: Sequence[str], attempts: list[Attempt]) -> np.ndarray:
        unique = list(dict.fromkeys(texts))
        found: list[np.ndarray] = []
        size = self.resource.api_batch_size
        for start in range(0, len(unique), size):
            batch = unique[start : start + size]
            request = client.build_request(
                "POST", self.resource.endpoint(), json={"model": self.model, "input": batch}
            )
            answer = partial(classify, expected=len(batch), dim=self.dim)
            vectors, usage = self.resource.fetch(client, request, answer, attempts=attempts)
            self.usage_tokens += int(usage.get("total_tokens") or 0)
            found.append(vectors)
        index = {text: i for i, text in enumerate(unique)}
        return unit_rows(np.concatenate(found)[[index[t] for t in texts]])


def embedding_model_from_env(*, env_vars: bool = False, **overrides: Any) -> EmbeddingModelResource:
    """The embedding model as the deployment configures it: the source mode and fixtures
    (BIZOSAAS_SOURCE_MODE, BIZOSAAS_FIXTURES_DIR), the default model, the endpoint and the key
    (BIZOSAAS_EMBEDDING_*; unset ones keep the resource's defaults). The one construction, for
    the Dagster definitions (`env_vars=True`: model, endpoint and key as EnvVars, so the UI
    shows where they come from and never the key) and the API (plain values, resolved now;
    `overrides` such as shorter timeouts)."""
    values: dict[str, Any] = {"mode": source_mode(), "fixtures_dir": str(load_settings().fixtures_dir)}
    for name, env in (
        ("model", ENV_EMBEDDING_MODEL),
        ("base_url", ENV_EMBEDDING_BASE_URL),
        ("api_key", ENV_EMBEDDING_API_KEY),
    ):
        if os.environ.get(env):
            values[name] = EnvVar(env) if env_vars else os.environ[env]
    return EmbeddingModelResource(**{**values, **overrides})


def classify(response: httpx.Response, expected: int, dim: int) -> tuple[np.ndarray, dict[str, Any]]:
    """((expected, dim) vectors in input order, usage) of an embeddings answer; Retry or Reject."""
    status = response.status_code
    if status == 200:
        body = json_body(response, "the embeddings API")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list) or len(data) != expected:
            got = len(data) if isinstance(data, list) else "no data list"
            raise Reject(
                f"malformed response from the embeddings API: expected {expected} embeddings, got {got}"
            )
        vectors = np.zeros((expected, dim), dtype=np.float32)
        seen = set()
        for item in data:
            index = item.get("index") if isinstance(item, dict) else None
            vector = item.get("embedding") if isinstance(item, dict) else None
            if not isinstance(index, int) or not 0 <= index < expected or index in seen:
                raise Reject(f"malformed response from the embeddings API: bad or repeated index {index!r}")
            if not isinstance(vector, list) or len(vector) != dim:
                size = len(vector) if isinstance(vector, list) else type(vector).__name__
                raise Reject(
                    f"malformed response from the embeddings API: embedding {index} has {size} "
                    f"dimensions, expected {dim}"
                )
            try:
                vectors[index] = np.asarray(vector, dtype=np.float32)
            except (TypeError, ValueError):
                raise Reject(
                    f"malformed response from the embeddings API: embedding {index} is not numbers"
                ) from None
            if not np.isfinite(vectors[index]).all():
                raise Reject(f"malformed response from the embeddings API: embedding {index} is not finite")
            seen.add(index)
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        return vectors, usage
    if status in (401, 403):
        raise Reject(f"the embeddings API refused the key (HTTP {status}: {openai_error_message(response)}); "
                     f"check {ENV_EMBEDDING_API_KEY}")  # fmt: skip
    if status in (400, 404, 422):
        raise Reject(
            f"the embeddings API rejected the request (HTTP {status}): {openai_error_message(response)}"
        )
    retry_on_status(response)
    raise Reject(f"HTTP {status} from the embeddings API: {openai_error_message(response)}")
