"""Knowledge search (RAG): the tenant's entities nearest to a question, re-ranked and extended
through its knowledge graph, each with its evidence; optionally a short answer citing them.

A search runs in one tenant: the credential's, or the client a master names with X-Tenant-ID.
The question is embedded here, with the model of the tenant's ready embedding space; the local
model is loaded once per process, in a worker thread (never on the event loop, never per request).
The reads are orchestration.knowledge_retrieval's (the same steps as the synchronous `retrieve`),
sent through the async pool.
"""

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Annotated, Any

import numpy as np
from dagster import Failure
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

# Imported at start-up, not in the first search: these bring Dagster (~1 s of imports).
from ml.knowledge.answer import Answer, chat_messages, check_answer, grounding_payload
from ml.knowledge.embedders import LOCAL_MODELS, Embedder
from ml.knowledge.entities import ENTITY_TYPES
from ml.knowledge.retrieval import MAX_HOPS, Result, rank
from orchestration.embedding_model import EmbeddingModelResource, embedding_model_from_env
from orchestration.knowledge_retrieval import Gathered, retrieval_reads
from orchestration.knowledge_settings import knowledge_settings
from orchestration.llm import LlmResource
from orchestration.settings import ENV_LLM_BASE_URL, ENV_LLM_MODEL, load_settings, source_mode
from orchestration.sources import SourceError
from orchestration.vector_store import Space, choose_space
from serving.auth import TenantScope
from serving.config import ServingConfig
from serving.errors import ERROR_RESPONSES, ApiError, ErrorResponse
from serving.filters import clean_text
from serving.responses import json_response

log = logging.getLogger("bizosaas.api")

router = APIRouter(
    prefix="/api/brain/rag",
    tags=["knowledge"],
    responses={
        **ERROR_RESPONSES,
        409: {
            "model": ErrorResponse,
            "description": "no embeddings are ready for the tenant yet, or its knowledge settings are wrong",
        },
    },
)

MAX_QUERY = 500
CACHE_HEADER = "X-Embedding-Cache"


def api_embedding_model(config: ServingConfig) -> EmbeddingModelResource:
    """The deployment's embedding model (embedding_model_from_env), with the API's patience: a
    client is waiting, so an API model gets a short timeout, few attempts, short backoff, and a
    Retry-After longer than a couple of seconds fails the search now (503) instead of holding it."""
    return embedding_model_from_env(
        timeout_s=config.embed_timeout_s, max_attempts=config.embed_attempts, backoff_s=0.2, max_wait_s=2.0
    )


class Embedders:
    """One embedder per model per process, loaded on first use (or at start-up, `warm`), and a
    bounded LRU of question embeddings per (model, question)."""

    def __init__(self, config: ServingConfig) -> None:
        self.config = config
        self.resource = api_embedding_model(config)
        self._loaded: dict[str, Embedder] = {}
        self._lock = asyncio.Lock()
        self._cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self.hits = self.misses = 0

    @property
    def default_model(self) -> str:
        return self.resource.model

    def _load(self, model: str) -> Embedder:
        embedder = self.resource.embedder(model, long_lived=True)
        if hasattr(embedder, "load"):
            if self.config.torch_threads > 0:
                import torch  # already imported by the model; only its thread count changes

                torch.set_num_threads(self.config.torch_threads)
            embedder.load()
        return embedder

    async def get(self, model: str) -> Embedder:
        if model not in self._loaded:
            async with self._lock:  # concurrent first searches wait for one load
                if model not in self._loaded:
                    self._loaded[model] = await asyncio.to_thread(self._load, model)
        return self._loaded[model]

    async def warm(self) -> None:
        await self.get(self.default_model)

    @staticmethod
    def cache_key(model: str, question: str) -> tuple[str, str]:
        """(model, the question as the model sees it): whitespace is already collapsed
        (clean_text); the local model's tokenizer is uncased, so case does not matter to it."""
        return model, question.lower() if model in LOCAL_MODELS else question

    async def embed(self, model: str, question: str) -> tuple[np.ndarray, bool]:
        """The question's vector, and whether it came from the cache. The cache is touched only
        on the event loop (no lock needed); the embedding itself runs in a worker thread."""
        key = self.cache_key(model, question)
        vector = self._cache.get(key)
        if vector is not None:
            self._cache.move_to_end(key)
            self.hits += 1
            return vector, True
        embedder = await self.get(model)
        vector = (await asyncio.to_thread(embedder.embed, [question]))[0]
        self.misses += 1
        if self.config.question_cache > 0:
            self._cache[key] = vector
            while len(self._cache) > self.config.question_cache:
                self._cache.popitem(last=False)
        return vector, False

    def close(self) -> None:
        for embedder in self._loaded.values():
            if hasattr(embedder, "close"):
                embedder.close()


async def embed_question(embedders: Embedders, model: str, question: str) -> tuple[np.ndarray, bool]:
    """Embedders.embed, with an API model's failure (down, timing out, refusing the key) as a
    503 that says why; Retry-After when trying again may help."""
    try:
        return await embedders.embed(model, question)
    except SourceError as exc:
        log.warning("knowledge search: embedding a question with %s failed: %s", model, exc)
        raise ApiError(
            503,
            f"the question could not be embedded with {model}: {exc}",
            headers={"Retry-After": "5"} if exc.retryable else None,
        ) from None


def llm_from_config(config: ServingConfig) -> LlmResource | None:
    """The OpenAI-compatible endpoint of BIZOSAAS_LLM_*, or None when it is not configured."""
    if not config.llm_base_url or not config.llm_model:
        return None
    return LlmResource(
        mode=source_mode(),
        fixtures_dir=str(load_settings().fixtures_dir),
        base_url=config.llm_base_url,
        model=config.llm_model,
        api_key=config.llm_api_key,
    )


class Evidence(BaseModel):
    kind: str  # vector | graph
    text: str
    similarity: float | None = None
    seed: str | None = None
    path: list[str] | None = None
    relationships: list[str] | None = None
    support: float | None = None


class SearchResult(BaseModel):
    key: str
    type: str
    id: str
    label: str
    score: float
    similarity: float | None
    graph_support: float
    evidence: list[Evidence]


class GeneratedAnswer(BaseModel):
    status: str  # not configured | ok | rejected | failed
    text: str | None
    model: str | None
    reason: str | None
    citations: list[str]
    dropped_citations: list[str]


class SearchResponse(BaseModel):
    tenant_id: str
    query: str
    types: list[str]
    k: int
    hops: int
    model: str
    results: list[SearchResult]
    answer: GeneratedAnswer | None
    timings_ms: dict[str, float]


def parse_types(types: str | None) -> list[str] | None:
    if types is None:
        return None
    names = [t.strip().lower() for t in types.split(",")]
    unknown = [t for t in names if t not in ENTITY_TYPES]
    if unknown:
        raise ApiError(422, f"types: unknown entity type(s) {', '.join(map(repr, unknown))}; "
                            f"choose from {', '.join(ENTITY_TYPES)}")  # fmt: skip
    return list(dict.fromkeys(names))


_SPACES = """
SELECT s.model, s.dim, s.leaf_table, s.ready_at,
       (SELECT t.settings FROM core.tenants t WHERE t.tenant_id = s.tenant_id) AS settings
  FROM core.embedding_spaces s WHERE s.tenant_id = %s ORDER BY s.created_at, s.model"""


async def _space(db, tenant_id: str, default_model: str) -> Space:
    rows = await db.fetch(tenant_id, _SPACES, [tenant_id])
    preferred = default_model
    if rows:
        try:
            preferred = knowledge_settings(tenant_id, rows[0]["settings"] or {}).embedding_model or preferred
        except Failure as exc:
            # The assets fail on it too; searching another model than the tenant asked for would
            # hide the mistake, so the search says what to fix.
            log.warning("knowledge search for %s: %s", tenant_id, exc.description)
            raise ApiError(409, exc.description, code="invalid_settings") from None
    space = choose_space(
        (Space(r["model"], r["dim"], r["leaf_table"], r["ready_at"]) for r in rows), preferred
    )
    if space is None:
        raise ApiError(
            409,
            f"no embeddings are ready for tenant {tenant_id!r}: the `embeddings` asset has not run for it "
            "yet (materialize it for this tenant's partition, e.g. `bizosaas materialize`)",
            code="not_ready",
        )
    return space


async def gather(db, tenant_id: str, space: Space, vector, *, k: int, types, hops: int) -> Gathered:
    """knowledge_retrieval's reads, each sent as one batch through the async pool."""
    reads = retrieval_reads(tenant_id, space, vector, k=k, types=types, hops=hops)
    rows = None
    try:
        while True:
            read = reads.send(rows)
            rows = await db.fetch(tenant_id, read.query, read.params, settings=read.settings)
    except StopIteration as done:
        return done.value


def generate_answer(llm, question: str, results: list[Result]) -> Answer:
    """A grounded answer citing `results` (blocking: the route runs it in a worker thread)."""
    if llm is None:
        return Answer(
            "not configured", reason=f"set {ENV_LLM_BASE_URL} and {ENV_LLM_MODEL} to generate answers"
        )
    if not results:
        return Answer("rejected", model=llm.model, reason="nothing was retrieved to ground an answer on")
    payload = grounding_payload(question, results)
    try:
        reply = llm.complete(chat_messages(payload))
    except Exception as exc:  # the results stand without an answer
        return Answer("failed", model=llm.model, reason=str(exc)[:300])
    return check_answer(reply.content, payload, reply.model)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


@router.get(
    "/search",
    response_model=SearchResponse,
    summary="The tenant's entities that answer a question: vector matches re-ranked and extended "
    "through its knowledge graph, each with its evidence; optionally a generated answer citing them",
)
async def search(
    request: Request,
    scope: TenantScope,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY, description="The question or search text")],
    types: Annotated[
        str | None,
        Query(max_length=200, description=f"Comma list of entity types to return: {', '.join(ENTITY_TYPES)}"),
    ] = None,
    k: Annotated[int, Query(ge=1, le=50, description="How many results")] = 10,
    hops: Annotated[
        int, Query(ge=0, le=MAX_HOPS, description="Graph hops from the vector matches; 0 = vectors only")
    ] = MAX_HOPS,
    answer: Annotated[
        bool, Query(description="Also generate a short answer citing the results (when an LLM is configured)")
    ] = False,
):
    started = time.perf_counter()
    question = clean_text(q, "q")
    wanted = parse_types(types)
    tenant_id, db, embedders = scope.tenant_id, request.app.state.db, request.app.state.embedders
    space = await _space(db, tenant_id, embedders.default_model)

    mark = time.perf_counter()
    vector, cached = await embed_question(embedders, space.model, question)
    timings: dict[str, Any] = {"embed": _ms(mark)}

    gathered = await gather(db, tenant_id, space, vector, k=k, types=wanted, hops=hops)
    timings.update(gathered.timings_ms)
    # CPU work (~2 ms on ThrillRing's densest neighbourhoods): in a worker thread, so the event
    # loop keeps serving other requests meanwhile.
    mark = time.perf_counter()
    results = await asyncio.to_thread(
        rank, gathered.hits, gathered.neighbourhood, gathered.similarities, k=k, types=wanted, hops=hops
    )
    timings["rank"] = _ms(mark)

    generated = None
    if answer:
        mark = time.perf_counter()
        llm = request.app.state.llm
        generated = (await asyncio.to_thread(generate_answer, llm, question, results)).as_dict()
        timings["answer"] = _ms(mark)
    timings["total"] = _ms(started)
    response = json_response(
        {
            "tenant_id": tenant_id,
            "query": question,
            "types": wanted or list(ENTITY_TYPES),
            "k": k,
            "hops": hops,
            "model": space.model,
            "results": [r.as_dict() for r in results],
            "answer": generated,
            "timings_ms": timings,
        }
    )
    response.headers[CACHE_HEADER] = "hit" if cached else "miss"
    return response
