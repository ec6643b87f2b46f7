"""core.embeddings: writing a tenant's vectors and searching them, exact in count.

Each (tenant, model) space is one leaf partition with its own HNSW index (migration 0010), so a
query names the tenant and the model and Postgres prunes to that leaf: the index scan only ever
sees the tenant's vectors. An entity-type filter still runs after the scan; when the scan yields
fewer than k rows although the tenant has more (of those types), the search repeats as an exact
scan of the tenant's rows (of those types), so a rare type still gets its k nearest.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from orchestration.warehouse import delete_rows, upsert_rows

EMBEDDINGS_TABLE = "core.embeddings"
SPACES_TABLE = "core.embedding_spaces"


@dataclass(frozen=True)
class Space:
    model: str
    dim: int
    leaf_table: str
    ready_at: datetime | None


@dataclass(frozen=True)
class StoredVector:
    entity_type: str
    entity_id: str
    content_hash: str
    content: str
    embedding: np.ndarray


@dataclass(frozen=True)
class Neighbour:
    entity_type: str
    entity_id: str
    content: str
    similarity: float  # cosine similarity, 1 = same direction


def vector_literal(vector: Sequence[float] | np.ndarray) -> str:
    """pgvector's text form; used for parameters so no adapter registration is needed."""
    return "[" + ",".join(f"{float(x):.7g}" for x in np.asarray(vector, dtype=np.float32)) + "]"


def ensure_space(conn: psycopg.Connection, model: str, dim: int, *, attempts: int = 5) -> str:
    """Create the current tenant's leaf for `model` if missing (without its HNSW index: load, then
    `index_space`); returns its name. DDL locks the parent table: call it in a short transaction
    of its own, before the long write.

    Creating a partition waits for an exclusive lock on the parent, and every search queues
    behind a waiting lock: the function gives up after a short lock_timeout (migration 0010), and
    this retries with a growing pause, so a long reader delays the creation, never the API."""
    for attempt in range(1, attempts + 1):
        try:
            with conn.transaction():  # a savepoint: a timed-out attempt leaves the transaction usable
                return conn.execute("SELECT core.ensure_embedding_space(%s, %s)", (model, dim)).fetchone()[0]
        except psycopg.errors.LockNotAvailable:
            if attempt == attempts:
                raise
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def spaces(conn: psycopg.Connection, tenant_id: str) -> list[Space]:
    rows = conn.execute(
        "SELECT model, dim, leaf_table, ready_at FROM core.embedding_spaces WHERE tenant_id = %s "
        "ORDER BY created_at, model",
        (tenant_id,),
    ).fetchall()
    return [Space(*row) for row in rows]


def index_space(conn: psycopg.Connection, model: str) -> bool:
    """Build the HNSW index of the current tenant's leaf for `model` if it has none (after the
    first bulk load of a space); True when it built one."""
    return conn.execute("SELECT core.index_embedding_space(%s)", (model,)).fetchone()[0]


def analyze_space(conn: psycopg.Connection, model: str) -> None:
    """Refresh the planner's statistics of the current tenant's leaf after a large write (a leaf
    without them is planned as one row, and searched by sorting every vector)."""
    conn.execute("SELECT core.analyze_embedding_space(%s)", (model,))


def mark_ready(conn: psycopg.Connection, tenant_id: str, model: str) -> None:
    conn.execute(
        "UPDATE core.embedding_spaces SET ready_at = now() WHERE tenant_id = %s AND model = %s",
        (tenant_id, model),
    )


def retire_space(conn: psycopg.Connection, tenant_id: str, model: str) -> int:
    """Take a superseded space out of retrieval: delete its vectors and clear its ready mark (the
    empty leaf and its index stay, so switching back needs no DDL). Returns the rows deleted."""
    deleted = conn.execute(
        "DELETE FROM core.embeddings WHERE tenant_id = %s AND model = %s", (tenant_id, model)
    ).rowcount
    conn.execute(
        "UPDATE core.embedding_spaces SET ready_at = NULL WHERE tenant_id = %s AND model = %s",
        (tenant_id, model),
    )
    return deleted


def search_space(conn: psycopg.Connection, tenant_id: str, preferred: str) -> Space | None:
    """The space retrieval reads: `preferred` once it is ready, else the latest ready one (the
    previous model, while a switch is under way), else None."""
    return choose_space(spaces(conn, tenant_id), preferred)


def choose_space(known: Iterable[Space], preferred: str) -> Space | None:
    """`search_space`'s choice among the tenant's spaces (the async API reads them itself)."""
    ready = [s for s in known if s.ready_at is not None]
    for space in ready:
        if space.model == preferred:
            return space
    return max(ready, key=lambda s: s.ready_at, default=None)


def stored_hashes(conn: psycopg.Connection, tenant_id: str, model: str) -> dict[tuple[str, str], str]:
    """(entity_type, entity_id) -> content_hash of every vector the tenant has in `model`."""
    rows = conn.execute(
        "SELECT entity_type, entity_id, content_hash FROM core.embeddings "
        "WHERE tenant_id = %s AND model = %s",
        (tenant_id, model),
    )
    return {(t, i): h for t, i, h in rows}


def upsert_vectors(
    conn: psycopg.Connection,
    tenant_id: str,
    model: str,
    dim: int,
    rows: Iterable[tuple[str, str, str, str, np.ndarray]],
    run_id: str | None = None,
) -> int:
    """Insert or replace (entity_type, entity_id, content_hash, content, vector) rows of `model`."""
    now = datetime.now(UTC)
    records = [
        {"model": model, "entity_type": t, "entity_id": i, "dim": dim, "content_hash": h, "content": c,
         # Its text form: COPY parses it into the dimensionless vector column.
         "embedding": vector_literal(v), "embedded_at": now, "dagster_run_id": run_id}
        for t, i, h, c, v in rows
    ]  # fmt: skip
    return upsert_rows(
        conn, tenant_id, EMBEDDINGS_TABLE, records, key=("model", "entity_type", "entity_id"), run_id=run_id
    )


def delete_vectors(
    conn: psycopg.Connection, tenant_id: str, model: str, keys: Iterable[tuple[str, str]]
) -> int:
    """Delete the (entity_type, entity_id) vectors of `model`; returns how many went."""
    key = ("entity_type", "entity_id")
    return delete_rows(conn, tenant_id, EMBEDDINGS_TABLE, key, keys, where={"model": model})


def load_vectors(
    conn: psycopg.Connection, tenant_id: str, model: str, types: Sequence[str] | None = None
) -> list[StoredVector]:
    """The tenant's vectors in `model` (optionally of `types`), sorted by type and id."""
    register_vector(conn)
    query = (
        "SELECT entity_type, entity_id, content_hash, content, embedding FROM core.embeddings "
        "WHERE tenant_id = %s AND model = %s AND (%s::text[] IS NULL OR entity_type = ANY(%s::text[])) "
        "ORDER BY entity_type, entity_id"
    )
    types_param = list(types) if types is not None else None
    return [
        # The parent column has no fixed dimension: pgvector returns a Vector, not an array.
        StoredVector(t, i, h, c, np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, dtype=np.float32))
        for t, i, h, c, v in conn.execute(query, (tenant_id, model, types_param, types_param))
    ]


# pgvector's default hnsw.ef_search is 40; 0.6.2 refuses more than 1000. The floor is 100: on
# clustered vectors recall@10 goes from 0.96 (40) to 0.98 (100), and for out-of-distribution
# queries (questions are not entity texts) from 0.60 to 0.82, for about 3 ms more per search
# (bench.knowledge_vectors).
EF_SEARCH_FLOOR = 100
EF_SEARCH_MAX = 1000


def ef_search_for(k: int) -> int:
    """hnsw.ef_search for a k-nearest query: one HNSW scan yields at most ef_search candidates.
    Capped at pgvector's maximum: a k above half of it relies on `nearest`'s exact fallback."""
    return min(EF_SEARCH_MAX, max(EF_SEARCH_FLOOR, 2 * k))


def nearest_query(space: Space, k: int, types: Sequence[str] | None, *, exact: bool = False):
    """(query, params-builder) of a k-nearest search in `space`, with positional %s parameters
    (tenant, model, query vector, types, k) so the async API can send it in its one batch.

    Only the distance is in ORDER BY, which the HNSW index serves; `exact` adds `+ 0` to hide the
    distance from the index, so every candidate row is sorted."""
    vector_type = f"vector({int(space.dim)})"
    distance = f"(embedding::{vector_type} <=> %s::{vector_type})" + (" + 0" if exact else "")
    query = (
        f"SELECT entity_type, entity_id, content, 1 - {distance} AS similarity"
        " FROM core.embeddings WHERE tenant_id = %s AND model = %s"
        " AND (%s::text[] IS NULL OR entity_type = ANY(%s::text[]))"
        f" ORDER BY {distance} LIMIT %s"
    )

    def params(tenant_id: str, query_vector: Sequence[float] | np.ndarray) -> tuple:
        literal = vector_literal(query_vector)
        types_param = list(types) if types else None
        return (literal, tenant_id, space.model, types_param, types_param, literal, k)

    return query, params


def count_query(space: Space, types: Sequence[str] | None):
    """(query, params-builder) counting the tenant's candidates in `space` (of `types`), with
    positional parameters (tenant, model, types), for `needs_exact`."""
    query = (
        "SELECT count(*) AS available FROM core.embeddings WHERE tenant_id = %s AND model = %s"
        " AND (%s::text[] IS NULL OR entity_type = ANY(%s::text[]))"
    )

    def params(tenant_id: str) -> tuple:
        types_param = list(types) if types else None
        return (tenant_id, space.model, types_param, types_param)

    return query, params


def needs_exact(found: int, k: int, available: int | None = None) -> bool:
    """Whether a k-nearest HNSW search that returned `found` rows must repeat as an exact scan.

    Asked first without `available`: False means the HNSW result stands (it has k rows). True
    means count the candidates (`count_query`) and ask again with the count: the exact scan runs
    only when the tenant has more candidates than the scan found. Short happens with and without
    a type filter: the filter runs after the scan, dead row versions (re-embedded rows not yet
    vacuumed) take candidate slots, and a k above the ef_search cap exceeds what one scan yields.
    Every k-nearest search (`nearest`, the async API) decides through this, as

        needs_exact(len(found), k) and needs_exact(len(found), k, <count>)
    """
    if found >= k:
        return False
    return available is None or available > found


def rank_neighbours(rows: Iterable[tuple[str, str, str, float]]) -> list[Neighbour]:
    """Rows of `nearest_query` as Neighbours, ties (identical texts) in a stable order."""
    found = [Neighbour(t, i, c, float(s)) for t, i, c, s in rows]
    return sorted(found, key=lambda n: (-round(n.similarity, 6), n.entity_type, n.entity_id))


def nearest(
    conn: psycopg.Connection,
    tenant_id: str,
    space: Space,
    query_vector: Sequence[float] | np.ndarray,
    k: int,
    types: Sequence[str] | None = None,
) -> list[Neighbour]:
    """The tenant's k nearest entities to `query_vector` in `space` (optionally of `types`),
    nearest first. Exact in count: k rows whenever the tenant has k candidates."""
    if k < 1:
        return []
    conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef_search_for(k)),))
    query, params = nearest_query(space, k, types)
    found = rank_neighbours(conn.execute(query, params(tenant_id, query_vector)))
    count, count_params = count_query(space, types)
    if needs_exact(len(found), k) and needs_exact(
        len(found), k, conn.execute(count, count_params(tenant_id)).fetchone()[0]
    ):
        query, params = nearest_query(space, k, types, exact=True)
        found = rank_neighbours(conn.execute(query, params(tenant_id, query_vector)))
    return found


def drop_tenant_spaces(admin: psycopg.Connection, tenant_id: str) -> int:
    """Drop every space of `tenant_id` (its partition of core.embeddings, with the leaves) and
    their registry rows; needs the owner (admin) role. Returns the number of spaces dropped."""
    parents = admin.execute(
        "SELECT c.oid::regclass::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'core.embeddings'::regclass "
        "AND pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES IN (%%L)', %s::text)",
        (tenant_id,),
    ).fetchall()
    for (parent,) in parents:
        admin.execute(f"DROP TABLE {parent}")
    return admin.execute("DELETE FROM core.embedding_spaces WHERE tenant_id = %s", (tenant_id,)).rowcount
