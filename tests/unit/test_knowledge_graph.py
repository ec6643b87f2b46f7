"""The knowledge graph builder and its exact nearest neighbours (ml.knowledge.graph), in memory."""

import random
from datetime import date

import numpy as np
import pytest

from ml.knowledge.embedders import unit_rows
from ml.knowledge.entities import (
    business_entity,
    campaign_entity,
    game_entity,
    lead_entity,
    product_entity,
)
from ml.knowledge.graph import build_graph, graph_changes, nearest_neighbours


def entities():
    return [
        business_entity({"business_id": "b1", "name": "Franklin Barbecue", "category": "amenity",
                         "subcategory": "restaurant", "cuisine": ["barbecue"], "city": "Austin",
                         "state": "TX"}),
        business_entity({"business_id": "b2", "name": "Epoch Coffee", "category": "amenity",
                         "subcategory": "cafe", "cuisine": None, "city": "Austin", "state": "TX"}),
        game_entity({"igdb_id": 1942, "name": "The Witcher 3", "genres": ["Role-playing (RPG)", "Adventure"],
                     "platforms": ["PC (Microsoft Windows)", "PlayStation 4"],
                     "release_date": date(2015, 5, 19)}),
        game_entity({"igdb_id": 7346, "name": "Zelda BOTW", "genres": ["Adventure"],
                     "platforms": ["Nintendo Switch"], "release_date": None}),
        product_entity({"product_id": "UHJvZHVjdDox", "name": "Linen Shirt", "category": "Apparel",
                        "product_type": "Shirt"}),
        campaign_entity({"campaign_id": "c1", "name": "Spring search", "channel": "paid_search",
                         "segment": "SMB"}),
        lead_entity({"lead_id": "l1", "company_name": "Acme", "source": "paid_search", "campaign_id": "c1",
                     "status": "won", "campaign_name": "Spring search"}),
        lead_entity({"lead_id": "l2", "company_name": None, "source": "referral", "campaign_id": "c-gone",
                     "status": "open", "campaign_name": None}),
    ]  # fmt: skip


def edge_set(graph):
    return {(e.src, e.rel, e.dst) for e in graph.edges}


def test_typed_nodes_and_edges_for_every_domain_all_within_the_tenant():
    graph = build_graph("acme", entities())
    keys = {n.key: n.node_type for n in graph.nodes}
    edges = edge_set(graph)
    assert keys["tenant:acme"] == "Tenant"
    typed = ("business:b1", "game:1942", "product:UHJvZHVjdDox", "lead:l1", "campaign:c1")
    assert {keys[k] for k in typed} == {"Business", "Game", "Product", "Lead", "Campaign"}
    entity_keys = [k for k, t in keys.items() if t in {"Business", "Game", "Product", "Lead", "Campaign"}]
    assert all(("tenant:acme", "OWNS", k) in edges for k in entity_keys)
    assert {
        ("business:b1", "IN_CATEGORY", "category:restaurant"),
        ("category:restaurant", "IN_CATEGORY", "category:amenity"),
        ("business:b1", "LOCATED_IN", "city:austin-tx"),
        ("city:austin-tx", "LOCATED_IN", "state:tx"),
        ("game:1942", "HAS_GENRE", "genre:role-playing-rpg"),
        ("game:1942", "ON_PLATFORM", "platform:pc-microsoft-windows"),
        ("product:UHJvZHVjdDox", "IN_CATEGORY", "category:apparel"),
        ("product:UHJvZHVjdDox", "OF_TYPE", "producttype:shirt"),
        ("lead:l1", "CAME_FROM", "source:paid-search"),
        ("lead:l1", "CAME_FROM", "campaign:c1"),
        ("campaign:c1", "VIA_CHANNEL", "channel:paid-search"),
    } <= edges
    # Shared named nodes are one node: both Austin businesses, both adventure games.
    assert sum(1 for e in edges if e[2] == "city:austin-tx" and e[1] == "LOCATED_IN") == 2
    assert {
        ("game:1942", "HAS_GENRE", "genre:adventure"),
        ("game:7346", "HAS_GENRE", "genre:adventure"),
    } <= edges
    # A campaign the tenant does not have is neither invented nor linked.
    assert "campaign:c-gone" not in keys and not any(e[2] == "campaign:c-gone" for e in edges)
    # Closed: every edge end is a node of this graph.
    assert all(src in keys and dst in keys for src, _, dst in edges)
    assert keys["city:austin-tx"] == "City" and graph.nodes_by_type()["Genre"] == 2


def test_same_entities_in_any_order_give_the_same_graph_and_hash():
    items = entities()
    neighbours = {"game:1942": [("game:7346", 0.71234567)], "game:7346": [("game:1942", 0.71234567)]}
    first = build_graph("acme", items, neighbours)
    shuffled = items[:]
    random.Random(7).shuffle(shuffled)
    second = build_graph("acme", shuffled, dict(reversed(list(neighbours.items()))))
    assert first == second and first.graph_hash == second.graph_hash
    assert [n.key for n in first.nodes] == sorted(n.key for n in first.nodes)
    assert [e.key for e in first.edges] == sorted(e.key for e in first.edges)
    # Any change shows in the hash: a renamed entity, a dropped one, another tenant.
    renamed = [*items[:-1], lead_entity({"lead_id": "l2", "company_name": "Beta", "source": "referral",
                                         "campaign_id": None, "status": "open"})]  # fmt: skip
    assert build_graph("acme", renamed, neighbours).graph_hash != first.graph_hash
    assert build_graph("acme", items[1:], neighbours).graph_hash != first.graph_hash
    assert build_graph("other", items, neighbours).graph_hash != first.graph_hash


def test_similar_to_links_only_the_tenants_entities_and_growth_counts_changes():
    items = entities()
    neighbours = {
        "game:1942": [("game:7346", 0.8), ("game:999", 0.9)],  # a vector left from a deleted game
        "game:404": [("game:1942", 0.9)],
    }
    graph = build_graph("acme", items, neighbours)
    similar = [e for e in graph.edges if e.rel == "SIMILAR_TO"]
    assert [(e.src, e.dst, e.weight) for e in similar] == [("game:1942", "game:7346", 0.8)]

    smaller = build_graph("acme", items[1:], neighbours)  # business b1 removed
    change = graph_changes(*stored(graph), smaller)
    # b1 and its restaurant category go; its four edges (OWNS, IN_CATEGORY, LOCATED_IN, and the
    # category's own IN_CATEGORY to amenity) go with them.
    growth = change.growth
    assert (growth.nodes_added, growth.nodes_removed) == (0, 2)
    assert (growth.edges_added, growth.edges_removed) == (0, 4)
    assert len(change.delete_nodes) == 2 and len(change.delete_edges) == 4
    assert not change.upsert_nodes and not change.upsert_edges
    # Nothing changed: nothing to write.
    same = graph_changes(*stored(smaller), smaller)
    assert same.growth == type(growth)(0, 0, 0, 0)
    assert not (same.upsert_nodes or same.delete_nodes or same.upsert_edges or same.delete_edges)


def test_graph_changes_rewrite_only_what_differs():
    items = entities()
    graph = build_graph("acme", items, {"game:1942": [("game:7346", 0.8)]})
    nodes, edges = stored(graph)
    # The stored weight went through `real`: equal to 6 decimals is equal.
    key = next(k for k in edges if k[1] == "SIMILAR_TO")
    edges[key] = (float(np.float32(edges[key][0])), edges[key][1])
    assert not graph_changes(nodes, edges, graph).upsert_edges
    moved = build_graph("acme", items, {"game:1942": [("game:7346", 0.75)]})
    change = graph_changes(nodes, edges, moved)
    assert [e.key for e in change.upsert_edges] == [key] and not change.upsert_nodes
    relabelled = dict(nodes)
    some = next(iter(relabelled))
    relabelled[some] = (relabelled[some][0], "old label", relabelled[some][2])
    assert [n.key for n in graph_changes(relabelled, edges, graph).upsert_nodes] == [some]


def stored(graph):
    """The graph as the stored rows graph_changes compares against."""
    return (
        {n.key: (n.node_type, n.label, dict(n.properties)) for n in graph.nodes},
        {e.key: (e.weight, dict(e.properties)) for e in graph.edges},
    )


def test_duplicate_entities_are_refused():
    items = entities()
    with pytest.raises(ValueError, match="appears twice"):
        build_graph("acme", [*items, items[0]])


def brute_force(keys, vectors, k, min_similarity):
    vectors = vectors.astype(np.float64)
    scores = np.round(vectors @ vectors.T, 6)
    found = {}
    for i, key in enumerate(keys):
        ranked = sorted((j for j in range(len(keys)) if j != i), key=lambda j: (-scores[i, j], keys[j]))[:k]
        row = [(keys[j], float(scores[i, j])) for j in ranked if scores[i, j] >= min_similarity]
        if row:
            found[key] = row
    return found


def test_nearest_neighbours_are_exact_with_ties_by_key_whatever_the_block_size():
    rng = np.random.default_rng(3)
    vectors = unit_rows(rng.normal(size=(60, 16)))
    vectors[[10, 20, 30]] = vectors[5]  # identical texts: exact ties
    keys = [f"game:{i:03d}" for i in range(60)]
    expected = brute_force(keys, vectors, 5, 0.0)
    assert nearest_neighbours(keys, vectors, 5, 0.0) == expected
    assert nearest_neighbours(keys, vectors, 5, 0.0, block_bytes=1) == expected  # one row per block
    # Rows arrive in any order; ties still resolve by key.
    order = rng.permutation(60)
    assert nearest_neighbours([keys[i] for i in order], vectors[order], 5, 0.0, block_bytes=2000) == expected
    assert [k for k, _ in expected["game:005"][:3]] == ["game:010", "game:020", "game:030"]


def test_nearest_neighbours_respect_k_and_the_minimum_similarity():
    vectors = unit_rows([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]])
    keys = ["b:a", "b:b", "b:c", "b:d"]
    found = nearest_neighbours(keys, vectors, 2, 0.5)
    assert found == {"b:a": [("b:b", pytest.approx(0.993884, abs=1e-6))],
                     "b:b": [("b:a", pytest.approx(0.993884, abs=1e-6))]}  # fmt: skip
    assert nearest_neighbours(keys, vectors, 0, 0.5) == {}
    assert len(nearest_neighbours(keys, vectors, 10, -1.0)["b:a"]) == 3  # k capped at the others
    with pytest.raises(ValueError, match="4 keys but 3 vectors"):
        nearest_neighbours(keys, vectors[:3], 2)
