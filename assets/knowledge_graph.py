"""The tenant's knowledge graph in Postgres (core.kg_nodes, core.kg_edges) and its Neo4j mirror.

`knowledge_graph` rebuilds the tenant's graph from its modelled tables (ml.knowledge.graph: typed
nodes and edges, SIMILAR_TO from each entity's exact nearest neighbours in the tenant's ready
embedding space), replaces the tenant's nodes and edges in one transaction and appends the graph's
size to core.kg_growth, the growth-over-time metric. `neo4j_graph` mirrors it into Neo4j when
NEO4J_URI is set, and says plainly that the sync is not configured otherwise.
"""

import time
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)
from psycopg.rows import dict_row

from ml.knowledge.entities import NODE_TYPES, Entity
from ml.knowledge.graph import TENANT, Graph, GraphChanges, build_graph, graph_changes, nearest_neighbours
from orchestration.embedding_model import EmbeddingModelResource
from orchestration.knowledge_entities import ENTITY_DEPS, KNOWLEDGE_AUTOMATION, load_entities
from orchestration.knowledge_settings import KnowledgeSettings, tenant_knowledge
from orchestration.metadata import preview_table
from orchestration.neo4j import NOT_CONFIGURED, Neo4jResource
from orchestration.partitions import tenant_partitions
from orchestration.quality import skipped_check
from orchestration.vector_store import Space, StoredVector, load_vectors, search_space
from orchestration.warehouse import WarehouseResource, append_rows, delete_rows, upsert_rows

NODES_TABLE, EDGES_TABLE, GROWTH_TABLE = "core.kg_nodes", "core.kg_edges", "core.kg_growth"


def load_graph_inputs(
    conn, tenant_id: str, knowledge: KnowledgeSettings, preferred: str
) -> tuple[list[Entity], Space | None, dict[str, list[StoredVector]]]:
    """The tenant's entities, its ready embedding space (None before the first), and the vectors of
    the types that get SIMILAR_TO edges."""
    entities = load_entities(conn, tenant_id)
    space = search_space(conn, tenant_id, preferred)
    wanted = knowledge.similar_types if space and knowledge.similar_k > 0 else ()
    return entities, space, {t: load_vectors(conn, tenant_id, space.model, [t]) for t in wanted}


def similar_neighbours(
    vectors_by_type: dict[str, list], entity_keys: set[str], knowledge: KnowledgeSettings
) -> dict[str, list[tuple[str, float]]]:
    """SIMILAR_TO candidates per type among the tenant's current entities (a vector left from a
    deleted row links nothing)."""
    found: dict[str, list[tuple[str, float]]] = {}
    for stored in vectors_by_type.values():
        rows = [v for v in stored if f"{v.entity_type}:{v.entity_id}" in entity_keys]
        if len(rows) < 2:
            continue
        keys = [f"{v.entity_type}:{v.entity_id}" for v in rows]
        matrix = np.stack([v.embedding for v in rows])
        found.update(nearest_neighbours(keys, matrix, knowledge.similar_k, knowledge.similar_min))
    return found


def _stored_graph(conn, tenant_id: str):
    nodes = {
        key: (node_type, label, properties)
        for key, node_type, label, properties in conn.execute(
            f"SELECT node_key, node_type, label, properties FROM {NODES_TABLE} WHERE tenant_id = %s",
            (tenant_id,),
        )
    }
    edges = {
        (src, rel, dst): (weight, properties)
        for src, rel, dst, weight, properties in conn.execute(
            f"SELECT src_key, rel_type, dst_key, weight, properties FROM {EDGES_TABLE} WHERE tenant_id = %s",
            (tenant_id,),
        )
    }
    return nodes, edges


def write_graph(conn, tenant_id: str, graph: Graph, run_id: str | None):
    """Bring the tenant's stored graph to `graph` and log its size, in the caller's transaction,
    writing only the nodes and edges that changed (a rebuild from unchanged tables writes none);
    returns what changed."""
    # Two builds of one tenant queue up instead of colliding on the keys they both write.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('core.kg_nodes'), hashtext(%s))", (tenant_id,))
    change = graph_changes(*_stored_graph(conn, tenant_id), graph)
    now = datetime.now(UTC)
    # Edges first: deleting a node cascades into its edges row by row.
    delete_rows(conn, tenant_id, EDGES_TABLE, ("src_key", "rel_type", "dst_key"), change.delete_edges)
    delete_rows(conn, tenant_id, NODES_TABLE, ("node_key",), [(k,) for k in change.delete_nodes])
    upsert_rows(conn, tenant_id, NODES_TABLE, [
        {"node_key": n.key, "node_type": n.node_type, "label": n.label, "properties": dict(n.properties),
         "updated_at": now, "dagster_run_id": run_id} for n in change.upsert_nodes
    ], key=("node_key",), run_id=run_id)  # fmt: skip
    upsert_rows(conn, tenant_id, EDGES_TABLE, [
        {"src_key": e.src, "rel_type": e.rel, "dst_key": e.dst, "weight": e.weight,
         "properties": dict(e.properties), "updated_at": now, "dagster_run_id": run_id}
        for e in change.upsert_edges
    ], key=("src_key", "rel_type", "dst_key"), run_id=run_id)  # fmt: skip
    append_rows(conn, tenant_id, GROWTH_TABLE, [{
        "nodes": len(graph.nodes), "edges": len(graph.edges), "nodes_by_type": graph.nodes_by_type(),
        "edges_by_type": graph.edges_by_type(), "graph_hash": graph.graph_hash, "dagster_run_id": run_id,
    }])  # fmt: skip
    return change


def _growth_history(warehouse: WarehouseResource, tenant_id: str) -> MetadataValue:
    rows = warehouse.query(
        tenant_id,
        f"SELECT measured_at, nodes, edges, graph_hash FROM {GROWTH_TABLE} WHERE tenant_id = %s "
        "ORDER BY measured_at DESC LIMIT 10",
        (tenant_id,),
    )
    return preview_table([{**r, "measured_at": f"{r['measured_at']:%Y-%m-%d %H:%M:%S}",
                           "graph_hash": r["graph_hash"][:12]} for r in rows])  # fmt: skip


def _preview(graph: Graph, per_type: int = 2) -> MetadataValue:
    labels = {n.key: n.label for n in graph.nodes}
    shown: dict[str, int] = {}
    rows = []
    for e in graph.edges:
        if shown.get(e.rel, 0) < per_type:
            shown[e.rel] = shown.get(e.rel, 0) + 1
            rows.append({"src": e.src, "src_label": labels[e.src], "rel": e.rel, "dst": e.dst,
                         "dst_label": labels[e.dst], "weight": round(e.weight, 3)})  # fmt: skip
    return preview_table(rows, limit=len(rows))


class GraphBuild(NamedTuple):
    entities: list[Entity]
    space: Space | None
    vectors: dict[str, list[StoredVector]]
    graph: Graph
    written: GraphChanges
    seconds: dict[str, float]  # load, neighbours, build, write


def rebuild_graph(
    warehouse: WarehouseResource, tenant_id: str, knowledge: KnowledgeSettings, preferred: str, run_id: str
) -> GraphBuild:
    """The asset's work, step by step with each step's seconds (the graph benchmark times the same)."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with warehouse.tenant_transaction(tenant_id) as conn:
        entities, space, vectors = load_graph_inputs(conn, tenant_id, knowledge, preferred)
    seconds["load"] = time.perf_counter() - started

    started = time.perf_counter()
    neighbours = similar_neighbours(vectors, {e.key for e in entities}, knowledge)
    seconds["neighbours"] = time.perf_counter() - started

    started = time.perf_counter()
    graph = build_graph(tenant_id, entities, neighbours)
    seconds["build"] = time.perf_counter() - started

    started = time.perf_counter()
    with warehouse.tenant_transaction(tenant_id) as conn:
        written = write_graph(conn, tenant_id, graph, run_id)
    seconds["write"] = time.perf_counter() - started
    return GraphBuild(entities, space, vectors, graph, written, seconds)


@asset(
    partitions_def=tenant_partitions(),
    group_name="knowledge",
    kinds={"postgres"},
    deps=[AssetKey("embeddings"), *ENTITY_DEPS],
    automation_condition=KNOWLEDGE_AUTOMATION,
    metadata={"table": f"{NODES_TABLE}, {EDGES_TABLE}, {GROWTH_TABLE}"},
    description=(
        "The tenant's knowledge graph, rebuilt deterministically from its businesses, games, products, "
        "leads and campaigns: typed nodes (Tenant, Business, Category, City, State, Game, Genre, Platform, "
        "Product, ProductType, Lead, Source, Campaign, Channel) and edges (OWNS, IN_CATEGORY, LOCATED_IN, "
        "HAS_GENRE, ON_PLATFORM, OF_TYPE, CAME_FROM, VIA_CHANNEL, and SIMILAR_TO to each entity's "
        "settings.knowledge.similar_k nearest of its type with cosine >= similar_min, from its ready "
        "embedding space). "
        "Replaces core.kg_nodes/core.kg_edges for the tenant in one transaction and appends its size to "
        "core.kg_growth."
    ),
)
def knowledge_graph(
    context: AssetExecutionContext, warehouse: WarehouseResource, embedding_model: EmbeddingModelResource
) -> MaterializeResult:
    tenant_id = context.partition_key
    run_id = context.run.run_id
    knowledge, preferred = tenant_knowledge(warehouse, embedding_model, tenant_id)
    entities, space, vectors, graph, written, seconds = rebuild_graph(
        warehouse, tenant_id, knowledge, preferred, run_id
    )
    if not entities:
        similar_note = "the tenant has no entities yet: its graph is its Tenant node"
    elif space is None:
        similar_note = f"no ready embedding space (preferred {preferred}): graph built without SIMILAR_TO"
        context.log.warning(f"{tenant_id}: {similar_note}; materialize `embeddings` first")
    elif knowledge.similar_k == 0:
        similar_note = "settings.knowledge.similar_k is 0: no SIMILAR_TO edges"
    else:
        vectored = sum(len(v) for v in vectors.values())
        similar_note = (
            f"{space.model}: {knowledge.similar_k} nearest with cosine >= {knowledge.similar_min} "
            f"among {vectored} vectors of {', '.join(vectors)}"
        )

    change = written.growth
    context.log.info(
        f"{tenant_id}: {len(graph.nodes)} nodes (+{change.nodes_added}/-{change.nodes_removed}), "
        f"{len(graph.edges)} edges (+{change.edges_added}/-{change.edges_removed}), "
        f"hash {graph.graph_hash[:12]}"
    )
    return MaterializeResult(
        metadata={
            "dagster/row_count": MetadataValue.int(len(graph.nodes)),
            "nodes": MetadataValue.int(len(graph.nodes)),
            "edges": MetadataValue.int(len(graph.edges)),
            "entities": MetadataValue.int(len(entities)),
            "nodes_added": MetadataValue.int(change.nodes_added),
            "nodes_removed": MetadataValue.int(change.nodes_removed),
            "edges_added": MetadataValue.int(change.edges_added),
            "edges_removed": MetadataValue.int(change.edges_removed),
            # Rows this build wrote or deleted: none when nothing changed.
            "rows_written": MetadataValue.int(len(written.upsert_nodes) + len(written.upsert_edges)),
            "rows_deleted": MetadataValue.int(len(written.delete_nodes) + len(written.delete_edges)),
            "similar_to_edges": MetadataValue.int(graph.edges_by_type().get("SIMILAR_TO", 0)),
            "nodes_by_type": MetadataValue.json(graph.nodes_by_type()),
            "edges_by_type": MetadataValue.json(graph.edges_by_type()),
            "graph_hash": MetadataValue.text(graph.graph_hash),
            "embedding_model": MetadataValue.text(space.model if space else "none ready"),
            "similar_to": MetadataValue.text(similar_note),
            **{f"seconds_{k}": MetadataValue.float(round(v, 3)) for k, v in seconds.items()},
            "growth": _growth_history(warehouse, tenant_id),
            "preview": _preview(graph),
        }
    )


@asset_check(
    asset=knowledge_graph,
    blocking=True,
    description="The graph is closed within its tenant: every edge's ends are nodes of the same tenant, the "
    "Tenant node exists, and it OWNS every entity node.",
)
def knowledge_graph_within_tenant(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    if not context.has_partition_key:
        return skipped_check()
    tenant_id = context.partition_key
    entity_types = list(NODE_TYPES.values())
    with warehouse.tenant_transaction(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(
            f"""SELECT
                  (SELECT count(*) FROM {EDGES_TABLE} e WHERE e.tenant_id = %(t)s AND (
                       NOT EXISTS (SELECT 1 FROM {NODES_TABLE} n
                                    WHERE n.tenant_id = e.tenant_id AND n.node_key = e.src_key)
                    OR NOT EXISTS (SELECT 1 FROM {NODES_TABLE} n
                                    WHERE n.tenant_id = e.tenant_id AND n.node_key = e.dst_key))) AS dangling,
                  (SELECT count(*) FROM {NODES_TABLE}
                    WHERE tenant_id = %(t)s AND node_type = %(tenant_type)s) AS tenant_nodes,
                  (SELECT count(*) FROM {NODES_TABLE} n WHERE n.tenant_id = %(t)s
                      AND n.node_type = ANY(%(types)s) AND NOT EXISTS (
                          SELECT 1 FROM {EDGES_TABLE} e WHERE e.tenant_id = n.tenant_id
                             AND e.src_key = %(owner)s AND e.rel_type = 'OWNS' AND e.dst_key = n.node_key))
                    AS unowned,
                  (SELECT count(*) FROM {NODES_TABLE} WHERE tenant_id = %(t)s) AS nodes""",
            {"t": tenant_id, "tenant_type": TENANT, "types": entity_types, "owner": f"tenant:{tenant_id}"},
        ).fetchone()
    problems = []
    if found["dangling"]:
        problems.append(f"{found['dangling']} edges point outside the tenant's nodes")
    if found["nodes"] and found["tenant_nodes"] != 1:
        problems.append(f"{found['tenant_nodes']} Tenant nodes (expected 1)")
    if found["unowned"]:
        problems.append(f"{found['unowned']} entity nodes without the tenant's OWNS edge")
    return AssetCheckResult(
        passed=not problems,
        metadata={k: MetadataValue.int(int(v)) for k, v in found.items()},
        description="; ".join(problems) or f"{found['nodes']} nodes, all edges within tenant {tenant_id}",
    )


@asset(
    partitions_def=tenant_partitions(),
    group_name="knowledge",
    kinds={"neo4j"},
    deps=[knowledge_graph],
    automation_condition=KNOWLEDGE_AUTOMATION,
    # Syncs never overlap: each stamps what it writes and deletes the tenant's rest, so a second
    # sync running at once would delete the first one's nodes. The pool's limit is 1 (dagster.yaml).
    pool="neo4j",
    description=(
        "Mirrors the tenant's graph into Neo4j (NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD): a uniqueness "
        "constraint on (:KgNode {tenant_id, key}), batched UNWIND ... MERGE per label and relationship type, "
        "then removal of the tenant's nodes and relationships this sync did not write, so Neo4j equals "
        "core.kg_nodes/kg_edges after every run. Without NEO4J_URI it succeeds and reports that the sync "
        "is not configured."
    ),
)
def neo4j_graph(
    context: AssetExecutionContext, warehouse: WarehouseResource, neo4j: Neo4jResource
) -> MaterializeResult:
    tenant_id = context.partition_key
    if not neo4j.configured:
        context.log.warning(f"{tenant_id}: {NOT_CONFIGURED}")
        return MaterializeResult(
            metadata={
                "status": MetadataValue.text("not configured"),
                "detail": MetadataValue.text(NOT_CONFIGURED),
            }
        )
    # Nodes and edges from one snapshot: an edge whose end changed in between would match nothing.
    with warehouse.tenant_transaction(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
        nodes = [
            {"key": r["node_key"], "node_type": r["node_type"], "label": r["label"],
             "properties": r["properties"]}
            for r in cur.execute(
                f"SELECT node_key, node_type, label, properties FROM {NODES_TABLE} WHERE tenant_id = %s "
                "ORDER BY node_key", (tenant_id,),
            )
        ]  # fmt: skip
        edges = [
            {"src": r["src_key"], "rel": r["rel_type"], "dst": r["dst_key"], "weight": r["weight"],
             "properties": r["properties"]}
            for r in cur.execute(
                f"SELECT src_key, rel_type, dst_key, weight, properties FROM {EDGES_TABLE} "
                "WHERE tenant_id = %s ORDER BY src_key, rel_type, dst_key", (tenant_id,),
            )
        ]  # fmt: skip
    report = neo4j.sync(tenant_id, nodes, edges)
    context.log.info(
        f"{tenant_id}: Neo4j synced {report.nodes_written} nodes, {report.edges_written} relationships, "
        f"removed {report.nodes_removed} nodes and {report.relationships_removed} relationships "
        f"in {report.seconds} s"
    )
    return MaterializeResult(
        metadata={
            "status": MetadataValue.text("synced"),
            "sync_id": MetadataValue.text(report.sync_id),
            "nodes_written": MetadataValue.int(report.nodes_written),
            "edges_written": MetadataValue.int(report.edges_written),
            "nodes_removed": MetadataValue.int(report.nodes_removed),
            "relationships_removed": MetadataValue.int(report.relationships_removed),
            "batches": MetadataValue.int(report.batches),
            "seconds": MetadataValue.float(report.seconds),
        }
    )
