"""The knowledge layer's vectors: incremental entity embeddings in pgvector, and the plan's
training table fed from them.

`embeddings` embeds each entity's text (ml.knowledge.entities.TEMPLATES) into the tenant's space
for its model (one leaf partition of core.embeddings per tenant and model, migration 0010). Only
new and changed entities are embedded (content hashes), in chunks that are committed as they
finish, so a run killed midway keeps what it wrote and the next run embeds only the rest. A new
space is loaded first and indexed (HNSW) once, afterwards. When every entity has its vector the
space is marked ready; on a model switch the previous space keeps serving retrieval until then,
and is retired (its vectors deleted) in the same transaction that marks the new one ready.

`ai_training_data` writes one row per labelled entity with its raw fields, its vector in the
tenant's ready space and its labels (ml.knowledge.training).
"""

import time
from collections import Counter
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)
from pydantic import Field

from ml.knowledge.embedders import model_dim
from ml.knowledge.incremental import chunks, count_by_type, plan_embeddings
from ml.knowledge.training import label_balance, training_labels
from orchestration.embedding_model import ApiEmbedder, EmbeddingModelResource
from orchestration.knowledge_entities import ENTITY_DEPS, KNOWLEDGE_AUTOMATION, load_entities
from orchestration.knowledge_settings import tenant_knowledge
from orchestration.metadata import preview_table
from orchestration.partitions import tenant_partitions
from orchestration.quality import skipped_check
from orchestration.sources import SourceError
from orchestration.vector_store import (
    EMBEDDINGS_TABLE,
    analyze_space,
    delete_vectors,
    ensure_space,
    index_space,
    load_vectors,
    mark_ready,
    retire_space,
    search_space,
    spaces,
    stored_hashes,
    upsert_vectors,
    vector_literal,
)
from orchestration.warehouse import WarehouseResource, write_partition

TRAINING_TABLE = "core.ai_training_data"
# Below this many written or deleted rows the leaf's statistics stay good enough.
ANALYZE_AFTER_ROWS = 1000

knowledge_partitions = tenant_partitions()


class EmbeddingsConfig(Config):
    batch_size: int = Field(
        default=256, ge=1, description="Texts per embedder call; progress is logged after each."
    )
    commit_every: int = Field(
        default=2000,
        ge=1,
        description="Vectors per committed chunk: a run killed midway keeps every finished chunk.",
    )


def _rows_per_model(conn, tenant_id: str) -> dict[str, int]:
    rows = conn.execute(
        "SELECT model, count(*) FROM core.embeddings WHERE tenant_id = %s GROUP BY model", (tenant_id,)
    )
    return dict(rows.fetchall())


@asset(
    partitions_def=knowledge_partitions,
    group_name="knowledge",
    kinds={"python", "postgres"},
    deps=["tenant_registry", *ENTITY_DEPS],
    automation_condition=KNOWLEDGE_AUTOMATION,
    # One CPU-bound model per machine is plenty; a deployment caps concurrent runs with this pool.
    pool="embedding_model",
    metadata={"table": EMBEDDINGS_TABLE},
    description=(
        "Each entity of the tenant (active businesses, games, products, leads, campaigns) embedded from "
        "its documented text template into pgvector, in the tenant's space for its model "
        "(BIZOSAAS_EMBEDDING_MODEL or settings.knowledge.embedding_model; default all-MiniLM-L6-v2, "
        "384 dims). Incremental by content hash: only new and changed entities are embedded, vectors "
        "of removed entities are deleted. Chunks are committed as they finish. After a model switch "
        "the previous model's space keeps serving until the new one holds every entity; then its "
        "vectors are deleted."
    ),
)
def embeddings(
    context: AssetExecutionContext,
    config: EmbeddingsConfig,
    warehouse: WarehouseResource,
    embedding_model: EmbeddingModelResource,
) -> MaterializeResult:
    tenant_id = context.partition_key
    run_id = context.run.run_id
    _, model = tenant_knowledge(warehouse, embedding_model, tenant_id)
    dim = model_dim(model)
    with warehouse.tenant_transaction(tenant_id) as conn:
        entities = load_entities(conn, tenant_id)
        has_space = any(s.model == model for s in spaces(conn, tenant_id))
    if not entities and not has_space:
        # No space until there is something to put in it: an empty space marked ready would make
        # the search answer "nothing found" instead of "not embedded yet".
        context.log.info(f"{tenant_id}: no entities yet (no businesses, games, products, leads or campaigns)")
        return MaterializeResult(
            metadata={
                "model": MetadataValue.text(model),
                "entities": MetadataValue.int(0),
                "dagster/row_count": MetadataValue.int(0),
                "space_ready": MetadataValue.bool(False),
                "space": MetadataValue.text("not created: the tenant has no entities yet"),
            }
        )
    # DDL locks core.embeddings: its own short transaction, before any long write.
    with warehouse.tenant_transaction(tenant_id) as conn:
        leaf = ensure_space(conn, model, dim)
    with warehouse.tenant_transaction(tenant_id) as conn:
        plan = plan_embeddings(entities, stored_hashes(conn, tenant_id, model))
    context.log.info(
        f"{tenant_id}: {len(entities)} entities in {model}: {len(plan.new)} new, "
        f"{len(plan.changed)} changed, {plan.unchanged} unchanged, {len(plan.gone)} gone"
    )
    removed = 0
    if plan.gone:
        with warehouse.tenant_transaction(tenant_id) as conn:
            removed = delete_vectors(conn, tenant_id, model, plan.gone)

    embedder = embedding_model.embedder(model) if plan.todo else None
    written, seconds = 0, 0.0
    for chunk in chunks(plan.todo, config.commit_every):
        rows = []
        for batch in chunks(chunk, config.batch_size):
            started = time.perf_counter()
            try:
                vectors = embedder.embed([e.text for e in batch])
            except SourceError as exc:
                raise Failure(
                    f"{tenant_id}: embedding with {model} failed: {exc}. {written} of {len(plan.todo)} "
                    "vectors were committed before; the next run embeds only the rest."
                ) from None
            seconds += time.perf_counter() - started
            rows.extend(
                (e.entity_type, e.entity_id, e.content_hash, e.text, v)
                for e, v in zip(batch, vectors, strict=True)
            )
            done = written + len(rows)
            rate = done / max(seconds, 1e-9)
            context.log.info(f"{tenant_id}: embedded {done}/{len(plan.todo)} ({model}, {rate:.0f} rows/s)")
        with warehouse.tenant_transaction(tenant_id) as conn:
            written += upsert_vectors(conn, tenant_id, model, dim, rows, run_id)
        context.log.info(f"{tenant_id}: committed {written}/{len(plan.todo)} vectors to {leaf}")

    expected = {(e.entity_type, e.entity_id): e.content_hash for e in entities}
    with warehouse.tenant_transaction(tenant_id) as conn:
        # A new space was loaded without its index (far faster than inserting into one): index it
        # now. An existing one already has it: a no-op.
        indexed_now = index_space(conn, model)
        if not indexed_now and written + removed >= max(ANALYZE_AFTER_ROWS, len(entities) // 10):
            analyze_space(conn, model)
        complete = stored_hashes(conn, tenant_id, model) == expected
        known = {s.model: s for s in spaces(conn, tenant_id)}
        before_rows = _rows_per_model(conn, tenant_id)
        if complete and known[model].ready_at is None:
            mark_ready(conn, tenant_id, model)
        previous = []
        for other in known.values():
            if other.model == model:
                continue
            rows_held = before_rows.get(other.model, 0)
            if complete and (other.ready_at is not None or rows_held):
                # Retired with the new space's ready mark, in one transaction: retrieval moves
                # from the old space to the new one without a moment with neither.
                retire_space(conn, tenant_id, other.model)
                status = f"retired by this run ({rows_held} vectors deleted)"
            elif other.ready_at is not None:
                status = f"serving retrieval until {model} is complete ({rows_held} vectors)"
            else:
                status = f"retired ({rows_held} vectors)"
            previous.append({"model": other.model, "dim": other.dim, "status": status})
        serving = search_space(conn, tenant_id, model)

    by_type = count_by_type(entities)
    metadata: dict[str, Any] = {
        "model": MetadataValue.text(model),
        "dim": MetadataValue.int(dim),
        "space": MetadataValue.text(leaf),
        "entities": MetadataValue.int(len(entities)),
        "dagster/row_count": MetadataValue.int(len(expected)),
        "entities_by_type": MetadataValue.json(by_type),
        "embedded": MetadataValue.int(written),
        "new": MetadataValue.int(len(plan.new)),
        "changed": MetadataValue.int(len(plan.changed)),
        "unchanged": MetadataValue.int(plan.unchanged),
        "removed": MetadataValue.int(removed),
        "seconds_embedding": MetadataValue.float(round(seconds, 3)),
        "rows_per_s": MetadataValue.float(round(written / seconds, 1) if seconds else 0.0),
        "space_ready": MetadataValue.bool(complete),
        "indexed_now": MetadataValue.bool(indexed_now),
        "retrieval_space": MetadataValue.text(serving.model if serving else "none ready yet"),
        "previous_spaces": MetadataValue.json(previous),
        "preview": preview_table(
            [{"entity_type": e.entity_type, "entity_id": e.entity_id, "text": e.text} for e in plan.todo],
            limit=5,
        ),
    }
    if isinstance(embedder, ApiEmbedder):
        metadata["api_requests"] = MetadataValue.int(len(embedder.attempts))
        metadata["api_tokens"] = MetadataValue.int(embedder.usage_tokens)
    return MaterializeResult(metadata=metadata)


@asset_check(
    asset=embeddings,
    blocking=True,
    description="Every entity of the tenant has a vector in its model's space with its current content hash "
    "(nothing missing, nothing stale, no vector of a removed entity), and that space is ready.",
)
def embeddings_current(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource, embedding_model: EmbeddingModelResource
) -> AssetCheckResult:
    if not context.has_partition_key:
        return skipped_check()
    tenant_id = context.partition_key
    _, model = tenant_knowledge(warehouse, embedding_model, tenant_id)
    with warehouse.tenant_transaction(tenant_id) as conn:
        entities = load_entities(conn, tenant_id)
        plan = plan_embeddings(entities, stored_hashes(conn, tenant_id, model))
        ready = any(s.model == model and s.ready_at is not None for s in spaces(conn, tenant_id))
    return AssetCheckResult(
        # A tenant without entities has no space, and nothing missing.
        passed=not plan.todo and not plan.gone and (ready or not entities),
        metadata={
            "model": model,
            "space_ready": ready,
            "missing": len(plan.new),
            "stale": len(plan.changed),
            "orphaned": len(plan.gone),
            "examples": MetadataValue.json(
                [e.key for e in plan.todo[:10]] + [f"{t}:{i}" for t, i in plan.gone[:10]]
            ),
        },
    )


@asset_check(
    asset=embeddings,
    blocking=True,
    description="Every stored vector has its space's dimension, and every space the dimension of its model.",
)
def embeddings_dims_match(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
) -> AssetCheckResult:
    if not context.has_partition_key:
        return skipped_check()
    tenant_id = context.partition_key
    rows = warehouse.query(
        tenant_id,
        """SELECT s.model, s.dim, count(e.entity_id) AS vectors,
                  count(e.entity_id) FILTER (WHERE e.dim <> s.dim OR vector_dims(e.embedding) <> s.dim)
                      AS wrong
             FROM core.embedding_spaces s
             LEFT JOIN core.embeddings e ON e.tenant_id = s.tenant_id AND e.model = s.model
            WHERE s.tenant_id = %(t)s GROUP BY s.model, s.dim ORDER BY s.model""",
        {"t": tenant_id},
    )
    bad_spaces = [r["model"] for r in rows if model_dim(r["model"]) != r["dim"]]
    wrong = sum(r["wrong"] for r in rows)
    return AssetCheckResult(
        passed=not wrong and not bad_spaces,
        metadata={
            "spaces": MetadataValue.json([{k: r[k] for k in ("model", "dim", "vectors")} for r in rows]),
            "vectors_with_wrong_dim": wrong,
            "spaces_with_wrong_dim": MetadataValue.json(bad_spaces),
        },
    )


@asset(
    partitions_def=knowledge_partitions,
    group_name="knowledge",
    kinds={"python", "postgres"},
    deps=[embeddings],
    automation_condition=KNOWLEDGE_AUTOMATION,
    metadata={"table": TRAINING_TABLE},
    description=(
        "The plan's training table: one row per labelled entity with its raw fields, its vector in the "
        "tenant's ready embedding space, and its labels (closed leads: outcome won/lost, also feedback_score "
        "1/0; games: genres; businesses: category and subcategory; products: category; campaigns: channel). "
        "Replaces the tenant's rows on every run."
    ),
)
def ai_training_data(
    context: AssetExecutionContext, warehouse: WarehouseResource, embedding_model: EmbeddingModelResource
) -> MaterializeResult:
    tenant_id = context.partition_key
    run_id = context.run.run_id
    _, preferred = tenant_knowledge(warehouse, embedding_model, tenant_id)
    skipped: Counter = Counter()
    rows: list[dict[str, Any]] = []
    with warehouse.tenant_transaction(tenant_id) as conn:
        space = search_space(conn, tenant_id, preferred)
        entities = load_entities(conn, tenant_id)
        stored = load_vectors(conn, tenant_id, space.model) if space else []
        vectors = {(v.entity_type, v.entity_id): v for v in stored}
        for entity in entities:
            labelled = training_labels(entity)
            if labelled is None:
                skipped["unlabelled"] += 1
                continue
            vector = vectors.get((entity.entity_type, entity.entity_id))
            if vector is None or vector.content_hash != entity.content_hash:
                skipped["no_current_vector"] += 1
                continue
            labels, feedback = labelled
            rows.append(
                {
                    "data_type": entity.entity_type,
                    "entity_id": entity.entity_id,
                    "raw_data": dict(entity.raw),
                    # Its text form: COPY into the vector column parses it.
                    "processed_features": vector_literal(vector.embedding),
                    "model": space.model,
                    "labels": labels,
                    "feedback_score": feedback,
                    "content_hash": entity.content_hash,
                    "dagster_run_id": run_id,
                }
            )
        written = write_partition(conn, tenant_id, TRAINING_TABLE, rows, run_id=run_id)
    if space is None:
        context.log.warning(f"{tenant_id}: no ready embedding space yet; the training table is empty")
    return MaterializeResult(
        metadata={
            "rows": MetadataValue.int(written),
            "model": MetadataValue.text(space.model if space else "none ready"),
            "rows_by_type": MetadataValue.json(dict(sorted(Counter(r["data_type"] for r in rows).items()))),
            "label_balance": MetadataValue.json(label_balance(rows)),
            "with_feedback_score": MetadataValue.int(sum(r["feedback_score"] is not None for r in rows)),
            "skipped": MetadataValue.json(dict(skipped)),
            "preview": preview_table(
                [{k: r[k] for k in ("data_type", "entity_id", "labels", "feedback_score")} for r in rows]
            ),
        }
    )
