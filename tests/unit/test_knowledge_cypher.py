"""The Cypher of the Neo4j sync (ml.knowledge.cypher), checked without a server."""

import pytest

from ml.knowledge import cypher

NODES = [
    {
        "key": f"game:{i}",
        "node_type": "Game",
        "label": f"Game {i}",
        "properties": {"genres": ["RPG"], "year": 2015},
    }
    for i in range(5)
] + [
    {
        "key": "genre:rpg",
        "node_type": "Genre",
        "label": "RPG",
        "properties": {"nested": {"a": 1}, "gone": None},
    }
]
EDGES = [{"src": f"game:{i}", "rel": "HAS_GENRE", "dst": "genre:rpg"} for i in range(5)] + [
    {"src": "game:0", "rel": "SIMILAR_TO", "dst": "game:1", "weight": 0.83}
]


def test_nodes_are_merged_per_label_in_batches_keyed_by_tenant_and_key():
    statements = cypher.node_statements("acme", NODES, "sync1", batch_size=2)
    assert [s.rows for s in statements] == [2, 2, 1, 1]  # Game in three batches, then Genre
    game, genre = statements[0], statements[-1]
    assert "MERGE (n:KgNode {tenant_id: $tenant_id, key: row.key})" in game.text
    assert "n:Game" in game.text and "n:Genre" in genre.text
    assert game.params["tenant_id"] == "acme" and game.params["sync_id"] == "sync1"
    assert [r["key"] for s in statements[:3] for r in s.params["rows"]] == [f"game:{i}" for i in range(5)]
    # Neo4j cannot store maps or nulls as properties: JSON text, or left out.
    assert genre.params["rows"][0]["props"] == {"nested": '{"a": 1}'}
    assert game.params["rows"][0]["props"] == {"genres": ["RPG"], "year": 2015}
    assert "acme" not in game.text and "Game 0" not in game.text  # data only ever as parameters


def test_relationships_match_both_ends_within_the_tenant():
    statements = cypher.edge_statements("acme", EDGES, "sync1", batch_size=3)
    assert [(s.text.split("[r:")[1].split("]")[0], s.rows) for s in statements] == [
        ("HAS_GENRE", 3), ("HAS_GENRE", 2), ("SIMILAR_TO", 1)]  # fmt: skip
    text = statements[0].text
    assert "MATCH (a:KgNode {tenant_id: $tenant_id, key: row.src})" in text
    assert "MATCH (b:KgNode {tenant_id: $tenant_id, key: row.dst})" in text
    assert "MERGE (a)-[r:HAS_GENRE]->(b)" in text and "r.sync_id = $sync_id" in text
    assert statements[-1].params["rows"] == [{"src": "game:0", "dst": "game:1", "weight": 0.83, "props": {}}]
    assert statements[0].params["rows"][0]["weight"] == 1.0


@pytest.mark.parametrize(
    "bad", ["Game) DETACH DELETE n //", "game", "Game Node", "`Game`", "Ga-me", "", "G" * 65, None]
)
def test_labels_that_could_change_the_statement_are_refused(bad):
    with pytest.raises(ValueError, match="not a safe Neo4j label"):
        cypher.node_statements("acme", [{"key": "x:1", "node_type": bad, "label": "x"}], "s")


@pytest.mark.parametrize("bad", ["OWNS]->(b) DETACH DELETE b //", "owns", "HAS GENRE", "", "1OWNS"])
def test_relationship_types_that_could_change_the_statement_are_refused(bad):
    with pytest.raises(ValueError, match="not a safe relationship type"):
        cypher.edge_statements("acme", [{"src": "a:1", "rel": bad, "dst": "b:1"}], "s")


def test_removal_is_scoped_to_the_tenant_and_spares_this_sync():
    relationships, nodes = cypher.removal_statements("acme", "sync2", batch_size=500)
    for statement in (relationships, nodes):
        assert statement.params == {"tenant_id": "acme", "sync_id": "sync2", "limit": 500}
        assert "{tenant_id: $tenant_id}" in statement.text
        assert "<> $sync_id" in statement.text and "LIMIT $limit" in statement.text
        assert "RETURN count(*) AS removed" in statement.text
    assert "DELETE r" in relationships.text and "DETACH DELETE n" in nodes.text
    # Both ends of a removed relationship are the tenant's: another tenant's graph is never reached.
    assert relationships.text.count("tenant_id: $tenant_id") == 2
    with pytest.raises(ValueError):
        cypher.removal_statements("acme", "s", batch_size=0)


def test_constraints_cover_the_merge_key():
    assert any("REQUIRE (n.tenant_id, n.key) IS UNIQUE" in c for c in cypher.CONSTRAINTS)
    assert all("IF NOT EXISTS" in c for c in cypher.CONSTRAINTS)
