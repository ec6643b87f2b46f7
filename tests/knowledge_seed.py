"""Stand-in for the `embeddings` and `knowledge_graph` assets while they are built in parallel
(issue 7): it writes what they write, in the same shape, so retrieval can be tested now. After
the merge, `seed_knowledge` is the one place to switch to materializing the real assets.

Vectors go through orchestration.vector_store (ensure_space, upsert_vectors, index_space,
mark_ready) with the session embedder. The graph mirrors the knowledge_graph asset's layout:
Tenant -OWNS-> entity; Business -IN_CATEGORY-> Category (subcategory) and -LOCATED_IN-> City;
Game -HAS_GENRE-> Genre and -ON_PLATFORM-> Platform; Product -IN_CATEGORY-> Category;
Campaign -VIA_CHANNEL-> Channel; Lead -CAME_FROM-> Campaign; SIMILAR_TO between an entity and
its nearest neighbours of the same type (k=5, similarity >= 0.5, weight = similarity).
Leads are left out by default: thousands of templated texts would cost the suite ~10 s of
embedding, and no labelled query is about a lead.
"""

from __future__ import annotations

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from ml.knowledge.entities import CAMPAIGN, ENTITY_TYPES, LEAD, NODE_TYPES, Entity, node_key, slug
from orchestration import vector_store
from orchestration.knowledge_entities import load_entities
from orchestration.warehouse import set_tenant

SEEDED_TYPES = tuple(t for t in ENTITY_TYPES if t != LEAD)
SIMILAR_K, SIMILAR_MIN = 5, 0.5


def _links(entity: Entity) -> list[tuple[str, str, str, str]]:
    """(rel, node type, node id, label) of the named nodes an entity links to."""
    a = entity.attrs
    links = []
    if entity.entity_type == "business":
        if a.get("subcategory"):
            links.append(
                ("IN_CATEGORY", "Category", slug(a["subcategory"]), a["subcategory"].replace("_", " "))
            )
        if a.get("city"):
            place = ", ".join(p for p in (a["city"], a.get("state")) if p)
            links.append(("LOCATED_IN", "City", slug(place), place))
    elif entity.entity_type == "game":
        links += [("HAS_GENRE", "Genre", slug(g), g) for g in a.get("genres", ())]
        links += [("ON_PLATFORM", "Platform", slug(p), p) for p in a.get("platforms", ())]
    elif entity.entity_type == "product" and a.get("category"):
        links.append(("IN_CATEGORY", "Category", slug(a["category"]), a["category"]))
    elif entity.entity_type == "campaign" and a.get("channel"):
        links.append(("VIA_CHANNEL", "Channel", slug(a["channel"]), a["channel"].replace("_", " ")))
    elif entity.entity_type == "lead" and a.get("campaign_id"):
        links.append(("CAME_FROM", NODE_TYPES[CAMPAIGN], a["campaign_id"], a["campaign_id"]))
    return links


def build_graph(tenant_id: str, entities: list[Entity], vectors: np.ndarray):
    """(nodes, edges) as kg_nodes / kg_edges rows: (key, type, label) and (src, rel, dst, weight)."""
    tenant = node_key("Tenant", tenant_id)
    nodes = {tenant: ("Tenant", tenant_id)}
    edges = {}
    for entity in entities:
        nodes[entity.key] = (NODE_TYPES[entity.entity_type], entity.label)
        edges[(tenant, "OWNS", entity.key)] = 1.0
        for rel, node_type, node_id, label in _links(entity):
            target = node_key(node_type, node_id)
            nodes.setdefault(target, (node_type, label))
            edges[(entity.key, rel, target)] = 1.0
    for entity_type in ENTITY_TYPES:
        index = [i for i, e in enumerate(entities) if e.entity_type == entity_type]
        if len(index) < 2:
            continue
        sims = vectors[index] @ vectors[index].T
        np.fill_diagonal(sims, -1)
        for row, i in enumerate(index):
            for col in np.argsort(-sims[row], kind="stable")[:SIMILAR_K]:
                if sims[row, col] >= SIMILAR_MIN:
                    src, dst = sorted((entities[i].key, entities[index[col]].key))
                    edges[(src, "SIMILAR_TO", dst)] = float(sims[row, col])
    return nodes, edges


def seed_knowledge(conn: psycopg.Connection, tenant_id: str, embedder, types=SEEDED_TYPES) -> dict:
    """Embed the tenant's entities and build its graph, replacing what it had (conn autocommit,
    with rights on core.embeddings and core.kg_*: the admin connection)."""
    with conn.transaction():
        set_tenant(conn, tenant_id)
        entities = load_entities(conn, tenant_id, types)
    vectors = embedder.embed([e.text for e in entities]) if entities else np.zeros((0, embedder.dim))
    with conn.transaction():
        set_tenant(conn, tenant_id)
        vector_store.ensure_space(conn, embedder.model, embedder.dim)
    with conn.transaction():
        set_tenant(conn, tenant_id)
        conn.execute(
            "DELETE FROM core.embeddings WHERE tenant_id = %s AND model = %s", (tenant_id, embedder.model)
        )
        rows = (
            (e.entity_type, e.entity_id, e.content_hash, e.text, v)
            for e, v in zip(entities, vectors, strict=True)
        )
        vector_store.upsert_vectors(conn, tenant_id, embedder.model, embedder.dim, rows)
        vector_store.index_space(conn, embedder.model)
        vector_store.analyze_space(conn, embedder.model)
        vector_store.mark_ready(conn, tenant_id, embedder.model)
        nodes, edges = build_graph(tenant_id, entities, vectors)
        conn.execute("DELETE FROM core.kg_edges WHERE tenant_id = %s", (tenant_id,))
        conn.execute("DELETE FROM core.kg_nodes WHERE tenant_id = %s", (tenant_id,))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO core.kg_nodes (tenant_id, node_key, node_type, label, properties) "
                "VALUES (%s, %s, %s, %s, %s)",
                [(tenant_id, key, t, label, Jsonb({})) for key, (t, label) in sorted(nodes.items())],
            )
            cur.executemany(
                "INSERT INTO core.kg_edges (tenant_id, src_key, rel_type, dst_key, weight) "
                "VALUES (%s, %s, %s, %s, %s)",
                [(tenant_id, s, r, d, w) for (s, r, d), w in sorted(edges.items())],
            )
    return {"entities": len(entities), "nodes": len(nodes), "edges": len(edges)}
