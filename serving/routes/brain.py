"""Knowledge search (RAG): the tenant's entities nearest to a question, re-ranked and extended
through its knowledge graph, each with its evidence; optionally a short answer citing them.

A search runs in one tenant: the credential's, or the client a master names with X-Tenant-ID.
The question is embedded here, with the model of the tenant's ready embedding space; the local
model is loaded once per process, in a worker thread (never on the event loop, never per request).
"""

import asyncio
import contextlib
import os
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from ml.knowledge.answer import Answer, chat_messages, check_answer, grounding_payload
from ml.knowledge.embedders import MINILM, Embedder
from ml.knowledge.entities import ENTITY_TYPES
from ml.knowledge.retrieval import MAX_HOPS, Neighbourhood, Result, rank
from orchestration.knowledge_retrieval import (
    graph_params,
    graph_query,
    label_of,
    reached_entities,
    read_neighbourhood,
    seed_count,
    similarity_params,
    similarity_query,
)
from orchestration.settings import (
    ENV_EMBEDDING_API_KEY,
    ENV_EMBEDDING_BASE_URL,
    ENV_EMBEDDING_MODEL,
    ENV_LLM_API_KEY,
    ENV_LLM_BASE_URL,
    ENV_LLM_MODEL,
    source_mode,
)
from orchestration.vector_store import Space, choose_space, ef_search_for, nearest_query, rank_neighbours
from serving.auth import TenantScope
from serving.errors import ERROR_RESPONSES, ApiError, ErrorResponse
from serving.filters import clean_text
from serving.responses import json_response

router = APIRouter(
    prefix="/api/brain/rag",
    tags=["knowledge"],
    responses={
        **ERROR_RESPONSES,
        409: {"model": ErrorResponse, "description": "no embeddings are ready for the tenant yet"},
    },
)

MAX_QUERY = 500


class Embedders:
    """One embedder per model per process, loaded on first use (or at start-up, `warm`)."""

    def __init__(self) -> None:
        self._loaded: dict[str, Embedder] = {}
        self._lock = asyncio.Lock()

    @staticmethod
    def default_model() -> str:
        return os.environ.get(ENV_EMBEDDING_MODEL) or MINILM

    @staticmethod
    def _load(model: str) -> Embedder:
        # Imported here: the resource module brings Dagster, which only the search needs.
        from orchestration.embedding_model import EmbeddingModelResource

        resource = EmbeddingModelResource(
            model=Embedders.default_model(),
            base_url=os.environ.get(ENV_EMBEDDING_BASE_URL) or "https://api.openai.com/v1",
            api_key=os.environ.get(ENV_EMBEDDING_API_KEY) or None,
        )
        embedder = resource.embedder(model)
        if hasattr(embedder, "load"):
            embedder.load()
        return embedder

    async def get(self, model: str) -> Embedder:
        if model not in self._loaded:
            async with self._lock:  # concurrent first searches wait for one load
                if model not in self._loaded:
                    self._loaded[model] = await asyncio.to_thread(self._load, model)
        return self._loaded[model]

    async def warm(self) -> None:
        await self.get(self.default_model())


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


async def _space(db, tenant_id: str) -> Space:
    rows = await db.fetch(tenant_id, _SPACES, [tenant_id])
    preferred = Embedders.default_model()
    if rows:
        from orchestration.knowledge_settings import knowledge_settings

        # A bad setting fails the assets loudly; the search keeps the default model.
        with contextlib.suppress(Exception):
            preferred = knowledge_settings(tenant_id, rows[0]["settings"] or {}).embedding_model or preferred
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


async def _nearest(db, tenant_id: str, space: Space, vector, n: int, types: list[str] | None):
    """vector_store.nearest over the async pool: HNSW with ef_search in the same transaction; a
    type filter that leaves fewer than n rows is repeated as an exact scan (exact in count)."""
    settings = {"hnsw.ef_search": str(ef_search_for(n))}
    found = []
    for exact in (False, True):
        query, params = nearest_query(space, n, types, exact=exact)
        rows = await db.fetch(tenant_id, query, params(tenant_id, vector), settings=settings)
        found = rank_neighbours(
            (r["entity_type"], r["entity_id"], r["content"], r["similarity"]) for r in rows
        )
        if len(found) >= n or not types:
            break
    return found


def llm_from_env():
    """The OpenAI-compatible endpoint of BIZOSAAS_LLM_*, or None when it is not configured."""
    base_url, model = os.environ.get(ENV_LLM_BASE_URL), os.environ.get(ENV_LLM_MODEL)
    if not (base_url or "").strip() or not (model or "").strip():
        return None
    from orchestration.llm import LlmResource  # brings Dagster: only when answers are asked for

    return LlmResource(
        mode=source_mode(), base_url=base_url, model=model, api_key=os.environ.get(ENV_LLM_API_KEY) or None
    )


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
    tenant_id, db = scope.tenant_id, request.app.state.db
    space = await _space(db, tenant_id)
    timings: dict[str, Any] = {}

    mark = time.perf_counter()
    embedder = await request.app.state.embedders.get(space.model)
    timings["model_load"] = _ms(mark)
    mark = time.perf_counter()
    vector = (await asyncio.to_thread(embedder.embed, [question]))[0]
    timings["embed"] = _ms(mark)

    mark = time.perf_counter()
    found = await _nearest(db, tenant_id, space, vector, seed_count(k), wanted)
    hits = {f"{n.entity_type}:{n.entity_id}": n.similarity for n in found}
    labels = {f"{n.entity_type}:{n.entity_id}": label_of(n) for n in found}
    timings["vector"] = _ms(mark)

    mark = time.perf_counter()
    neighbourhood, similarities = Neighbourhood(labels=labels), {}
    if hops and hits:
        rows = await db.fetch(tenant_id, graph_query(hops), graph_params(tenant_id, list(hits)))
        neighbourhood = read_neighbourhood(rows, labels)
        if reached := reached_entities(neighbourhood, hits, wanted):
            rows = await db.fetch(
                tenant_id, similarity_query(space), similarity_params(space, tenant_id, vector, reached)
            )
            similarities = {f"{r['entity_type']}:{r['entity_id']}": float(r["similarity"]) for r in rows}
    results = rank(hits, neighbourhood, similarities, k=k, types=wanted, hops=hops)
    timings["graph"] = _ms(mark)

    generated = None
    if answer:
        mark = time.perf_counter()
        generated = (await asyncio.to_thread(generate_answer, llm_from_env(), question, results)).as_dict()
        timings["answer"] = _ms(mark)
    timings["total"] = _ms(started)
    return json_response(
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
