"""The knowledge_graph and neo4j_graph assets on the real Postgres and Dagster instance, for probe
tenants seeded straight into the domain tables (each domain's ingestion has its own tests), with
vectors written through the vector store by the session's MiniLM embedder."""

import os
from datetime import UTC, date, datetime

import psycopg
import pytest
from dagster import materialize
from psycopg.types.json import Jsonb

from assets.knowledge import embeddings
from assets.knowledge_graph import knowledge_graph, knowledge_graph_within_tenant, neo4j_graph
from orchestration import tenants
from orchestration.embedding_model import EmbeddingModelResource
from orchestration.neo4j import Neo4jResource
from orchestration.partitions import tenant_partitions
from orchestration.settings import ENV_NEO4J_PASSWORD, ENV_NEO4J_URI, ENV_NEO4J_USER
from orchestration.warehouse import WarehouseResource, set_tenant

A, B, BARE = "kg_probe_a", "kg_probe_b", "kg_probe_bare"
MASTER = "bizoholic"
NOW = datetime(2026, 11, 20, tzinfo=UTC)
KNOWLEDGE = {"similar_k": 2, "similar_min": 0.2}
GAMES = [
    (1942, "The Witcher 3: Wild Hunt", ["Role-playing (RPG)", "Adventure"], ["PC (Microsoft Windows)"]),
    (1020, "Grand Theft Auto V", ["Shooter", "Adventure"], ["PC (Microsoft Windows)", "PlayStation 4"]),
    (119133, "Elden Ring", ["Role-playing (RPG)", "Adventure"], ["PlayStation 5"]),
]


def _tenant(platform, instance, tenant_id):
    with platform.admin() as conn:
        conn.execute(
            """INSERT INTO core.tenants
                      (tenant_id, display_name, kind, parent_tenant_id, tier, domains, settings)
               VALUES (%s, 'Knowledge graph probe', 'client', %s, 'starter', '{crm}', %s)
               ON CONFLICT (tenant_id) DO NOTHING""",
            (tenant_id, MASTER, Jsonb({"knowledge": KNOWLEDGE})),
        )
    instance.add_dynamic_partitions(tenant_partitions().name, [tenant_id])


def _business(conn, tenant_id, business_id, name, subcategory, city):
    conn.execute(
        """INSERT INTO core.businesses_master (tenant_id, business_id, name, name_key, category, subcategory,
                  lat, lon, city, state, osm_refs, sources, searches, attribution, status, content_hash,
                  first_seen, last_seen, changed_at)
           VALUES (%s, %s, %s, lower(%s), 'amenity', %s, 30.27, -97.74, %s, 'TX', '{}', '{osm}', '{}', 'OSM',
                   'active', 'h', %s, %s, %s)""",
        (tenant_id, business_id, name, name, subcategory, city, NOW, NOW, NOW),
    )


def _seed(conn, tenant_id, games):
    for igdb_id, name, genres, platforms in games:
        conn.execute(
            """INSERT INTO core.gaming_catalogue (tenant_id, igdb_id, popularity_rank, name, name_key,
                      release_date, genres, platforms, steam_status, opencritic_status, igdb_fetched_at,
                      content_hash, first_seen, changed_at, answers_run_id)
               VALUES (%s, %s, 1, %s, lower(%s), %s, %s, %s, 'not_on_steam', 'not_searched', %s, 'h', %s, %s,
                       'seed')""",
            (tenant_id, igdb_id, name, name, date(2020, 1, 1), genres, platforms, NOW, NOW, NOW),
        )


def _seed_a(conn):
    _business(conn, A, "osm:n1", "Franklin Barbecue", "restaurant", "Austin")
    _business(conn, A, "osm:n2", "Terry Black's Barbecue", "restaurant", "Austin")
    _business(conn, A, "osm:n3", "Epoch Coffee", "cafe", "Round Rock")
    _seed(conn, A, GAMES)
    products = [("UHJvZHVjdDox", "Linen Shirt", "Apparel", "Shirt"),
                ("UHJvZHVjdDoy", "Oxford Shirt", "Apparel", "Shirt"),
                ("UHJvZHVjdDoz", "Espresso Beans", "Groceries", "Coffee")]  # fmt: skip
    for product_id, name, category, kind in products:
        conn.execute(
            """INSERT INTO core.ecommerce_products (tenant_id, product_id, name, slug, category, product_type,
                      variant_count, variants_in_stock, in_stock, created_at, updated_at, fetched_at)
               VALUES (%s, %s, %s, lower(%s), %s, %s, 1, 1, true, %s, %s, %s)""",
            (A, product_id, name, name, category, kind, NOW, NOW, NOW),
        )
    conn.execute(
        """INSERT INTO core.crm_campaigns (tenant_id, campaign_id, name, channel, segment)
           VALUES (%s, 'cmp1', 'Spring search', 'paid_search', 'SMB'),
                  (%s, 'cmp2', 'Newsletter', 'email', NULL)""",
        (A, A),
    )
    for lead_id, company, source, campaign, status in [("ld1", "Acme", "paid_search", "cmp1", "won"),
                                                       ("ld2", None, "referral", None, "open")]:  # fmt: skip
        conn.execute(
            """INSERT INTO core.crm_leads (tenant_id, lead_id, email, email_key, company_name, source,
                      campaign_id, status, created_at, updated_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                A,
                lead_id,
                f"{lead_id}@x.test",
                f"{lead_id}@x.test",
                company,
                source,
                campaign,
                status,
                NOW,
                NOW,
            ),
        )


def _build(
    platform, instance, tenant_id, assets=(knowledge_graph, knowledge_graph_within_tenant), **resources
):
    result = materialize(
        list(assets),
        partition_key=tenant_id,
        instance=instance,
        resources={
            "warehouse": WarehouseResource(database_url=platform.writer_url),
            "embedding_model": EmbeddingModelResource(),
            "neo4j": Neo4jResource(),
            **resources,
        },
    )
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    materialization = result.get_asset_materialization_events()[0].materialization
    return {k: v.value for k, v in materialization.metadata.items()}, checks


def _graph(platform, tenant_id):
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, tenant_id)
        nodes = conn.execute(
            "SELECT node_key, node_type, label, properties FROM core.kg_nodes WHERE tenant_id = %s "
            "ORDER BY node_key",
            (tenant_id,),
        ).fetchall()
        edges = conn.execute(
            "SELECT src_key, rel_type, dst_key, weight FROM core.kg_edges WHERE tenant_id = %s "
            "ORDER BY src_key, rel_type, dst_key",
            (tenant_id,),
        ).fetchall()
    return nodes, edges


@pytest.fixture(scope="module")
def probes(platform, dagster_instance, embedder):
    for tenant_id in (A, B, BARE):
        _tenant(platform, dagster_instance, tenant_id)
    with platform.admin() as conn:
        _seed_a(conn)
        _seed(conn, B, GAMES)  # the same games: B's vectors are exactly A's, the nearest possible
        conn.execute(
            """INSERT INTO core.crm_campaigns (tenant_id, campaign_id, name, channel)
               VALUES (%s, 'only', 'Bare campaign', 'display')""",
            (BARE,),
        )
    # The real embeddings asset (the model is the session's, loaded once per process).
    for tenant_id in (A, B):
        _build(platform, dagster_instance, tenant_id, assets=(embeddings,))
    first = _build(platform, dagster_instance, A)
    yield first
    with platform.admin() as conn:
        for tenant_id in (A, B, BARE):
            tenants.offboard(conn, tenant_id)
    for tenant_id in (A, B, BARE):
        dagster_instance.delete_dynamic_partition(tenant_partitions().name, tenant_id)


def test_graph_links_every_domain_and_similar_entities_of_the_same_type(platform, probes):
    metadata, checks = probes
    assert checks == {"knowledge_graph_within_tenant": True}
    nodes, edges = _graph(platform, A)
    types = {key: node_type for key, node_type, _, _ in nodes}
    rels = {rel for _, rel, _ in (e[:3] for e in edges)}
    assert rels == {"OWNS", "IN_CATEGORY", "LOCATED_IN", "HAS_GENRE", "ON_PLATFORM", "OF_TYPE", "CAME_FROM",
                    "VIA_CHANNEL", "SIMILAR_TO"}  # fmt: skip
    assert {"Tenant", "Business", "Category", "City", "State", "Game", "Genre", "Platform", "Product",
            "ProductType", "Lead", "Source", "Campaign", "Channel"} == set(types.values())  # fmt: skip
    assert ("business:osm:n1", "LOCATED_IN", "city:austin-tx") in {e[:3] for e in edges}
    assert ("lead:ld1", "CAME_FROM", "campaign:cmp1") in {e[:3] for e in edges}
    similar = [e for e in edges if e[1] == "SIMILAR_TO"]
    assert similar and all(e[0].split(":")[0] == e[2].split(":")[0] for e in similar)
    assert not any(e[0].startswith("lead:") for e in similar)  # leads are not in similar_types
    assert all(0.2 <= e[3] <= 1.0 for e in similar)
    # The two shirts are each other's nearest product.
    assert ("product:UHJvZHVjdDox", "SIMILAR_TO", "product:UHJvZHVjdDoy") in {e[:3] for e in similar}
    assert metadata["nodes"] == len(nodes) and metadata["edges"] == len(edges)
    assert metadata["edges_by_type"]["SIMILAR_TO"] == len(similar)
    assert metadata["embedding_model"] == "all-MiniLM-L6-v2" and "2 nearest" in metadata["similar_to"]


def test_a_rebuild_is_identical_and_growth_follows_changes(platform, dagster_instance, probes):
    first, _ = probes
    before = _graph(platform, A)
    again, checks = _build(platform, dagster_instance, A)
    assert all(checks.values())
    assert again["graph_hash"] == first["graph_hash"] and _graph(platform, A) == before
    assert [again[k] for k in ("nodes_added", "nodes_removed", "edges_added", "edges_removed")] == [
        0,
        0,
        0,
        0,
    ]
    assert (again["rows_written"], again["rows_deleted"]) == (0, 0)  # nothing changed, nothing written

    with platform.admin() as conn:  # Epoch Coffee closes: its business, cafe category and city go
        conn.execute(
            "DELETE FROM core.businesses_master WHERE tenant_id = %s AND business_id = 'osm:n3'", (A,)
        )
    try:
        changed, checks = _build(platform, dagster_instance, A)
    finally:
        with platform.admin() as conn:
            _business(conn, A, "osm:n3", "Epoch Coffee", "cafe", "Round Rock")
    assert all(checks.values()) and changed["graph_hash"] != first["graph_hash"]
    assert (changed["nodes_added"], changed["nodes_removed"]) == (0, 3)  # business, cafe, Round Rock
    assert changed["edges_removed"] >= 4 and changed["edges_added"] == 0
    assert changed["nodes"] == first["nodes"] - 3
    assert changed["rows_deleted"] == 3 + changed["edges_removed"] and changed["rows_written"] == 0
    restored, _ = _build(platform, dagster_instance, A)
    assert restored["graph_hash"] == first["graph_hash"] and restored["nodes_added"] == 3
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, A)
        sizes = conn.execute(
            "SELECT nodes, graph_hash FROM core.kg_growth WHERE tenant_id = %s ORDER BY measured_at", (A,)
        ).fetchall()
    assert [n for n, _ in sizes[-4:]] == [first["nodes"], first["nodes"], first["nodes"] - 3, first["nodes"]]


def test_graphs_are_isolated_between_tenants_even_when_the_others_are_nearest(
    platform, dagster_instance, probes
):
    metadata_b, _ = _build(platform, dagster_instance, B)
    nodes_a, edges_a = _graph(platform, A)
    nodes_b, edges_b = _graph(platform, B)
    assert metadata_b["graph_hash"] != probes[0]["graph_hash"]
    # Same games, same vectors: B's graph is A's game subgraph under B's own Tenant node, nothing of A's.
    assert {k for k, *_ in nodes_b} == {"tenant:kg_probe_b"} | {
        k for k, t, *_ in nodes_a if k.startswith(("game:", "genre:", "platform:"))}  # fmt: skip
    assert all(e[0] != "tenant:kg_probe_a" for e in edges_b)
    assert any(e[1] == "SIMILAR_TO" for e in edges_b)

    with psycopg.connect(platform.serving_url) as conn:
        for table in ("core.kg_nodes", "core.kg_edges", "core.kg_growth"):
            for me in (A, B, MASTER):
                with conn.transaction():
                    set_tenant(conn, me)
                    seen = {r[0] for r in conn.execute(f"SELECT DISTINCT tenant_id FROM {table}")}
                if me == MASTER:
                    assert {A, B} <= seen, (table, seen)
                else:
                    assert seen == {me}, (table, me, seen)
    with psycopg.connect(platform.writer_url) as conn:  # the master reads its clients but writes only itself
        with conn.transaction():
            set_tenant(conn, MASTER)
            assert conn.execute("SELECT count(*) FROM core.kg_nodes WHERE tenant_id = %s", (A,)).fetchone()[0]
            assert conn.execute("DELETE FROM core.kg_edges WHERE tenant_id = %s", (A,)).rowcount == 0
            assert (
                conn.execute("UPDATE core.kg_nodes SET label = 'x' WHERE tenant_id = %s", (A,)).rowcount == 0
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            set_tenant(conn, MASTER)
            conn.execute(
                "INSERT INTO core.kg_nodes (tenant_id, node_key, node_type, label) "
                "VALUES (%s, 'x:1', 'X', 'x')",
                (A,),
            )
    assert _graph(platform, A) == (nodes_a, edges_a)


def test_without_a_ready_space_the_graph_has_no_similar_to_and_says_why(platform, dagster_instance, probes):
    metadata, checks = _build(platform, dagster_instance, BARE)
    assert all(checks.values())
    assert metadata["edges_by_type"] == {"OWNS": 1, "VIA_CHANNEL": 1} and metadata["similar_to_edges"] == 0
    assert metadata["embedding_model"] == "none ready" and "without SIMILAR_TO" in metadata["similar_to"]


def test_neo4j_sync_without_a_uri_reports_it_is_not_configured(platform, dagster_instance, probes):
    metadata, _ = _build(platform, dagster_instance, A, assets=(neo4j_graph,))
    assert metadata["status"] == "not configured"
    assert all(name in metadata["detail"] for name in (ENV_NEO4J_URI, ENV_NEO4J_USER, ENV_NEO4J_PASSWORD))


@pytest.mark.skipif(not os.environ.get(ENV_NEO4J_URI), reason=f"needs a live Neo4j: set {ENV_NEO4J_URI}")
def test_neo4j_equals_postgres_after_each_sync(platform, dagster_instance, probes):
    neo4j = Neo4jResource(
        uri=os.environ[ENV_NEO4J_URI],
        user=os.environ.get(ENV_NEO4J_USER),
        password=os.environ.get(ENV_NEO4J_PASSWORD),
    )

    def same(tenant_id):
        nodes, edges = _graph(platform, tenant_id)
        got_nodes, got_edges = neo4j.read_back(tenant_id)
        assert [(n["key"], n["node_type"], n["label"]) for n in got_nodes] == [n[:3] for n in nodes]
        assert [(e["src"], e["rel"], e["dst"]) for e in got_edges] == [e[:3] for e in edges]

    _build(platform, dagster_instance, A)
    metadata, _ = _build(platform, dagster_instance, A, assets=(neo4j_graph,), neo4j=neo4j)
    assert metadata["status"] == "synced"
    same(A)
    with platform.admin() as conn:
        conn.execute(
            "DELETE FROM core.businesses_master WHERE tenant_id = %s AND business_id = 'osm:n3'", (A,)
        )
    try:
        _build(platform, dagster_instance, A)
        metadata, _ = _build(platform, dagster_instance, A, assets=(neo4j_graph,), neo4j=neo4j)
        assert metadata["nodes_removed"] == 3
        same(A)
    finally:
        with platform.admin() as conn:
            _business(conn, A, "osm:n3", "Epoch Coffee", "cafe", "Round Rock")
        _build(platform, dagster_instance, A)
