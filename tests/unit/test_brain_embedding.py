"""The search API's question embedder (serving/routes/brain.py) with an API model: the
deployment's mode and endpoint (embedding_model_from_env), few attempts, no growing history, and
failures as a 503 that says why. Replayed through the real client (fixtures/embeddings_api), or
live against a closed local port."""

import asyncio

import pytest

from fixtures.generate_embeddings_api import BASE_URL, MODEL, SCENARIO_TEXTS
from orchestration.processes import free_port
from orchestration.settings import ENV_EMBEDDING_BASE_URL, ENV_EMBEDDING_MODEL, ENV_SOURCE_MODE
from serving.config import ServingConfig
from serving.errors import ApiError
from serving.routes.brain import Embedders, embed_question


def embedders(monkeypatch, mode: str, base_url: str) -> Embedders:
    monkeypatch.setenv(ENV_SOURCE_MODE, mode)
    monkeypatch.setenv(ENV_EMBEDDING_MODEL, MODEL)
    monkeypatch.setenv(ENV_EMBEDDING_BASE_URL, base_url)
    return Embedders(ServingConfig(database_url="postgresql://unused", embed_attempts=2))


def test_a_refused_key_is_a_503_that_says_why(monkeypatch):
    found = embedders(monkeypatch, "replay", BASE_URL)
    assert found.default_model == MODEL and found.resource.mode == "replay"
    with pytest.raises(ApiError) as refused:
        asyncio.run(embed_question(found, MODEL, SCENARIO_TEXTS["unauthorized"][0]))
    assert refused.value.status == 503 and "refused the key" in refused.value.message
    assert refused.value.headers is None  # retrying cannot fix a key


def test_live_mode_is_used_with_few_attempts_and_keeps_no_history(monkeypatch):
    found = embedders(monkeypatch, "live", f"http://127.0.0.1:{free_port()}/v1")
    assert found.resource.mode == "live" and found.resource.max_attempts == 2
    with pytest.raises(ApiError) as down:
        asyncio.run(embed_question(found, MODEL, "games like The Witcher 3"))
    assert down.value.status == 503 and down.value.headers == {"Retry-After": "5"}
    assert "connection failed" in down.value.message and "gave up after 2 attempts" in down.value.message
    embedder = asyncio.run(found.get(MODEL))
    assert embedder.attempts == [] and embedder._client is not None  # one client, reused
    found.close()
    assert embedder._client is None
