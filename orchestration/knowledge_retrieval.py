"""The reads behind hybrid retrieval, and the retrieval itself for a synchronous connection.

Three reads, each one statement with positional parameters so the async API sends each in its
single batch (serving/db.py): the vector hits (vector_store.nearest_query), the graph around them
(`graph_query`), and the query's similarity to the entities the graph reached
(`similarity_query`). `ml.knowledge.retrieval.rank` does the rest.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import psycopg
from psycopg.rows import dict_row

from ml.knowledge.entities import ENTITY_TYPES, split_key
from ml.knowledge.graph import Edge
from ml.knowledge.retrieval import HUB_TYPES, MAX_DEGREE, Neighbourhood, Result, anchors, rank
from orchestration.vector_store import (
    Neighbour,
    Space,
    count_query,
    ef_search_for,
    nearest_query,
    needs_exact,
    rank_neighbours,
    vector_literal,
)

_NOT_HUB = " AND ".join(f"{{col}} NOT LIKE '{t}:%%'" for t in sorted(HUB_TYPES))


def seed_count(k: int) -> int:
    """How many vector hits seed the expansion: more than k, so the graph can re-rank among them."""
    return max(2 * k, 20)


def label_of(neighbour: Neighbour) -> str:
    """A hit's label before the graph names it: the first sentence of its embedded text."""
    return neighbour.content.split(". ", 1)[0].strip() or f"{neighbour.entity_type}:{neighbour.entity_id}"


def graph_query(hops: int) -> str:
    """Edges within `hops` (1 or 2) of the seeds, hubs left out, then the degree and label of every
    node a path may use. Parameters: (tenant, seed keys) * 2 for the first hop, then the tenant
    for the labels and degrees (see `graph_params`). Rows: (kind, a, b, c, weight) with kind
    'edge' (src, rel, dst, weight), 'node' (key, label, -, degree)."""
    src_ok, dst_ok = _NOT_HUB.format(col="e.src_key"), _NOT_HUB.format(col="e.dst_key")
    first = f"""
        SELECT e.src_key, e.rel_type, e.dst_key, e.weight FROM core.kg_edges e
         WHERE e.tenant_id = %s AND e.src_key = ANY(%s::text[]) AND {dst_ok}
        UNION
        SELECT e.src_key, e.rel_type, e.dst_key, e.weight FROM core.kg_edges e
         WHERE e.tenant_id = %s AND e.dst_key = ANY(%s::text[]) AND {src_ok}"""
    second = f"""
        , hop AS (
            SELECT n.key FROM (SELECT src_key AS key FROM e1 UNION SELECT dst_key FROM e1) n
             JOIN degrees d ON d.key = n.key WHERE d.degree <= {MAX_DEGREE}),
        e2 AS (
            SELECT * FROM e1
            UNION
            SELECT e.src_key, e.rel_type, e.dst_key, e.weight
              FROM core.kg_edges e JOIN hop h ON e.src_key = h.key
             WHERE e.tenant_id = (SELECT tenant FROM arg) AND {dst_ok}
            UNION
            SELECT e.src_key, e.rel_type, e.dst_key, e.weight
              FROM core.kg_edges e JOIN hop h ON e.dst_key = h.key
             WHERE e.tenant_id = (SELECT tenant FROM arg) AND {src_ok})"""
    edges = "e2" if hops >= 2 else "e1"
    return f"""
        WITH arg AS (SELECT %s::text AS tenant),
        e1 AS ({first}),
        nodes AS (SELECT src_key AS key FROM e1 UNION SELECT dst_key FROM e1),
        degrees AS (
            SELECT n.key,
                   (SELECT count(*) FROM core.kg_edges x WHERE x.tenant_id = (SELECT tenant FROM arg)
                       AND x.src_key = n.key)
                 + (SELECT count(*) FROM core.kg_edges x WHERE x.tenant_id = (SELECT tenant FROM arg)
                       AND x.dst_key = n.key) AS degree
              FROM nodes n)
        {second if hops >= 2 else ""}
        SELECT 'edge' AS kind, src_key AS a, rel_type AS b, dst_key AS c, weight::float8 AS w FROM {edges}
        UNION ALL
        SELECT 'node', n.key, kn.label, NULL, d.degree::float8
          FROM (SELECT src_key AS key FROM {edges} UNION SELECT dst_key FROM {edges}) n
          LEFT JOIN degrees d ON d.key = n.key
          LEFT JOIN core.kg_nodes kn ON kn.tenant_id = (SELECT tenant FROM arg) AND kn.node_key = n.key"""


def graph_params(tenant_id: str, seeds: Sequence[str]) -> tuple:
    keys = list(seeds)
    return (tenant_id, tenant_id, keys, tenant_id, keys)


def read_neighbourhood(rows: Iterable[Sequence], labels: dict[str, str] | None = None) -> Neighbourhood:
    """A Neighbourhood from `graph_query` rows (tuples or dicts), over `labels` already known."""
    edges, known, degrees = [], dict(labels or {}), {}
    for row in rows:
        kind, a, b, c, w = (
            (row["kind"], row["a"], row["b"], row["c"], row["w"]) if isinstance(row, dict) else row
        )
        if kind == "edge":
            edges.append(Edge(a, b, c, float(w)))
        else:
            if b is not None:
                known[a] = b
            if w is not None:
                degrees[a] = int(w)
    return Neighbourhood(tuple(edges), known, degrees)


def similarity_query(space: Space) -> str:
    """The query's similarity to given entities (no index needed: a primary-key lookup each).
    Parameters: see `similarity_params`."""
    vector_type = f"vector({int(space.dim)})"
    return (
        f"SELECT e.entity_type, e.entity_id, 1 - (e.embedding::{vector_type} <=> %s::{vector_type})"
        " AS similarity FROM core.embeddings e"
        " JOIN unnest(%s::text[], %s::text[]) AS k(entity_type, entity_id)"
        " ON e.entity_type = k.entity_type AND e.entity_id = k.entity_id"
        " WHERE e.tenant_id = %s AND e.model = %s"
    )


def similarity_params(space: Space, tenant_id: str, query_vector, keys: Iterable[str]) -> tuple:
    pairs = [split_key(key) for key in keys]
    return (
        vector_literal(query_vector),
        [t for t, _ in pairs],
        [i for _, i in pairs],
        tenant_id,
        space.model,
    )


def reached_entities(neighbourhood: Neighbourhood, hits: dict[str, float], types: Sequence[str] | None):
    """Entities of `types` the graph reached that are not hits: their similarity is read next."""
    wanted = set(types or ENTITY_TYPES)
    nodes = {n for e in neighbourhood.edges for n in (e.src, e.dst)}
    return sorted(n for n in nodes - set(hits) if split_key(n)[0] in wanted)


@dataclass(frozen=True)
class Retrieval:
    results: list[Result]
    model: str
    seeds: int
    timings_ms: dict[str, float]


@dataclass(frozen=True)
class Read:
    """One statement of a retrieval: the driver sends it (in a transaction with the tenant set,
    `settings` applied transaction-locally) and passes its rows back, as dicts."""

    query: str
    params: tuple
    settings: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Gathered:
    """What the reads found: `rank`'s inputs, and the wall time of each stage."""

    hits: dict[str, float]
    neighbourhood: Neighbourhood
    similarities: dict[str, float]
    timings_ms: dict[str, float]


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def retrieval_reads(
    tenant_id: str,
    space: Space,
    query_vector: np.ndarray,
    *,
    k: int,
    types: Sequence[str] | None,
    hops: int,
) -> Generator[Read, list[dict], Gathered]:
    """The reads of a hybrid retrieval, as a generator the caller drives (`retrieve` with a
    psycopg connection, the API with its async pool), so both take the same steps:

    1. the seed_count(k) nearest vectors (HNSW), repeated as an exact scan when
       vector_store.needs_exact says so (after counting the candidates);
    2. the graph within `hops` of the anchors (the hits `rank` expands from; not every seed);
    3. the query's similarity to the entities of `types` the graph reached."""
    started = time.perf_counter()
    n = seed_count(k)
    query, params = nearest_query(space, n, types)
    rows = yield Read(query, params(tenant_id, query_vector), {"hnsw.ef_search": str(ef_search_for(n))})
    found = rank_neighbours(_neighbour_rows(rows))
    if needs_exact(len(found), n):
        query, params = count_query(space, types)
        rows = yield Read(query, params(tenant_id))
        if needs_exact(len(found), n, rows[0]["available"]):
            query, params = nearest_query(space, n, types, exact=True)
            found = rank_neighbours(_neighbour_rows((yield Read(query, params(tenant_id, query_vector)))))
    hits = {f"{x.entity_type}:{x.entity_id}": x.similarity for x in found}
    labels = {f"{x.entity_type}:{x.entity_id}": label_of(x) for x in found}
    timings = {"vector": _ms(started)}

    started = time.perf_counter()
    neighbourhood, similarities = Neighbourhood(labels=labels), {}
    if hops and hits:
        rows = yield Read(graph_query(hops), graph_params(tenant_id, anchors(hits)))
        neighbourhood = read_neighbourhood(rows, labels)
        if reached := reached_entities(neighbourhood, hits, types):
            rows = yield Read(
                similarity_query(space), similarity_params(space, tenant_id, query_vector, reached)
            )
            similarities = {f"{r['entity_type']}:{r['entity_id']}": float(r["similarity"]) for r in rows}
    timings["graph"] = _ms(started)
    return Gathered(hits, neighbourhood, similarities, timings)


def _neighbour_rows(rows: Iterable[dict]) -> Iterable[tuple]:
    return ((r["entity_type"], r["entity_id"], r["content"], r["similarity"]) for r in rows)


def retrieve(
    conn: psycopg.Connection,
    tenant_id: str,
    space: Space,
    query_vector: np.ndarray,
    *,
    k: int = 10,
    types: Sequence[str] | None = None,
    hops: int = 2,
) -> Retrieval:
    """Hybrid retrieval in the tenant's `space` (conn in a transaction with the tenant set)."""
    reads = retrieval_reads(tenant_id, space, query_vector, k=k, types=types, hops=hops)
    rows = None
    try:
        while True:
            read = reads.send(rows)
            with conn.cursor(row_factory=dict_row) as cur:
                for name, value in read.settings.items():
                    cur.execute("SELECT set_config(%s, %s, true)", (name, value))
                rows = cur.execute(read.query, read.params).fetchall()
    except StopIteration as done:
        gathered: Gathered = done.value
    started = time.perf_counter()
    results = rank(gathered.hits, gathered.neighbourhood, gathered.similarities, k=k, types=types, hops=hops)
    timings = {**gathered.timings_ms, "rank": _ms(started)}
    return Retrieval(results, space.model, len(gathered.hits), timings)
