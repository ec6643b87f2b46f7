"""Retrieval quality on the labelled queries (fixtures/knowledge/labelled_queries.yaml), and the
retriever's reads against the real database: recall@10 and MRR of the hybrid retriever and of
vectors alone, over the bundled replay data (vectors and graph written by the real embeddings
and knowledge_graph assets in the `materialized` session fixture)."""

import json

import psycopg
import pytest
import yaml

from ml.knowledge.retrieval import MAX_HOPS, recall_at, reciprocal_rank
from orchestration import vector_store
from orchestration.knowledge_retrieval import retrieve
from orchestration.settings import PROJECT_ROOT
from orchestration.warehouse import set_tenant

LABELLED = PROJECT_ROOT / "fixtures" / "knowledge" / "labelled_queries.yaml"
K = 10
# Floors the system clears with margin; a regression in the embeddings, the graph or the ranking
# shows here first. Measured on the real assets' vectors and graph (leads included): on the demo
# data alone, vectors only recall@10 0.735, MRR 0.774, hybrid 0.738, 0.780; in the full test
# session, where earlier tests have added entities (leads, products) to the demo tenants that
# compete for untyped questions, 0.663 / 0.702 and 0.667 / 0.708.
MIN_RECALL, MIN_MRR = 0.6, 0.65


def _search(conn, embedder, query, hops):
    tenant = query["tenant"]
    with conn.transaction():
        set_tenant(conn, tenant)
        space = vector_store.search_space(conn, tenant, embedder.model)
        return retrieve(conn, tenant, space, embedder.embed([query["q"]])[0], k=K,
                        types=query.get("types"), hops=hops)  # fmt: skip


@pytest.fixture(scope="module")
def serving(platform, knowledge):
    with psycopg.connect(platform.serving_url) as conn:
        yield conn


def test_labelled_queries_hybrid_against_vectors_only(serving, embedder, record_property):
    queries = yaml.safe_load(LABELLED.read_text())["queries"]
    assert len(queries) >= 20
    report = {}
    for name, hops in (("vectors_only", 0), ("hybrid", MAX_HOPS)):
        recalls, ranks = [], []
        for query in queries:
            relevant = set(query["relevant"])
            keys = [r.key for r in _search(serving, embedder, query, hops).results]
            assert len(keys) == len(set(keys)) and len(keys) <= K
            # More relevant entities than a top 10 holds: recall counts against 10.
            recalls.append(recall_at(keys, relevant, K) * len(relevant) / min(len(relevant), K))
            ranks.append(reciprocal_rank(keys, relevant))
        report[name] = {"recall@10": round(sum(recalls) / len(recalls), 3),
                        "mrr": round(sum(ranks) / len(ranks), 3), "queries": len(queries)}  # fmt: skip
    print("\nretrieval quality:", json.dumps(report))
    record_property("retrieval_quality", json.dumps(report))
    for name in report:
        assert report[name]["recall@10"] >= MIN_RECALL, report
        assert report[name]["mrr"] >= MIN_MRR, report
    # The graph re-ranks and extends; it must not cost quality.
    assert report["hybrid"]["recall@10"] >= report["vectors_only"]["recall@10"], report
    assert report["hybrid"]["mrr"] >= report["vectors_only"]["mrr"] - 0.02, report


def test_results_carry_typed_evidence_and_stay_in_the_tenant(serving, embedder):
    query = {"tenant": "thrillring", "q": "games like The Witcher 3", "types": ["game"]}
    found = _search(serving, embedder, query, MAX_HOPS)
    assert found.model == embedder.model and found.seeds == 20
    assert set(found.timings_ms) == {"vector", "graph", "rank"}
    results = [r.as_dict() for r in found.results]
    assert len(results) == K and all(r["type"] == "game" for r in results)
    assert results[0]["key"] == "game:1942" and results[0]["label"] == "The Witcher 3: Wild Hunt"
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    paths = [e for r in results for e in r["evidence"] if e["kind"] == "graph"]
    assert paths and all(p["path"][0] != p["path"][-1] for p in paths)
    assert {"HAS_GENRE", "SIMILAR_TO"} & {rel for p in paths for rel in p["relationships"]}
    assert not any(n.startswith("tenant:") for p in paths for n in p["path"])
    # Another tenant's search never sees ThrillRing's games.
    other = _search(serving, embedder, {"tenant": "coreldove", "q": "The Witcher 3"}, MAX_HOPS)
    assert other.results and not any(r.entity_type == "game" for r in other.results)
