"""The hybrid ranking (ml.knowledge.retrieval) and the order of retrieval's reads, without a database."""

import math

import numpy as np
import pytest

from ml.knowledge.graph import Edge
from ml.knowledge.retrieval import (
    DECAY,
    MAX_DEGREE,
    Neighbourhood,
    rank,
    recall_at,
    reciprocal_rank,
)
from orchestration.knowledge_retrieval import retrieval_reads
from orchestration.vector_store import Space, ef_search_for, needs_exact

WITCHER, ZELDA, SKYRIM, FIFA = "game:1942", "game:7346", "game:472", "game:99"
RPG, SPORT, TENANT = "genre:rpg", "genre:sport", "tenant:thrillring"


def graph(*edges, degrees=None):
    labels = {WITCHER: "The Witcher 3", ZELDA: "Zelda", SKYRIM: "Skyrim", RPG: "RPG"}
    return Neighbourhood(tuple(edges), labels, degrees or {})


def test_vectors_only_ranks_by_similarity_and_filters_types():
    hits = {WITCHER: 0.4, ZELDA: 0.7, "business:b1": 0.9}
    ranked = rank(hits, graph(), {}, k=10, types=["game"], hops=0)
    assert [r.key for r in ranked] == [ZELDA, WITCHER]
    assert ranked[0].evidence() == [{"kind": "vector", "text": "vector match 0.70", "similarity": 0.7}]
    assert rank(hits, graph(), {}, k=1, hops=0)[0].key == "business:b1"


def test_a_shared_genre_supports_both_games_with_a_typed_path():
    edges = [Edge(WITCHER, "HAS_GENRE", RPG), Edge(ZELDA, "HAS_GENRE", RPG), Edge(FIFA, "HAS_GENRE", SPORT)]
    hits = {WITCHER: 0.6, FIFA: 0.5}
    ranked = rank(hits, graph(*edges), {ZELDA: 0.2}, k=10, hops=2)
    by_key = {r.key: r for r in ranked}
    # Zelda is reached through the genre (degree 2), from the Witcher only, by the Witcher's lift
    # over the weakest hit.
    expected = (0.6 - 0.5) * DECAY**2 / math.sqrt(2)
    assert by_key[ZELDA].support == pytest.approx(expected)
    assert by_key[ZELDA].score == pytest.approx(0.2 + expected)
    assert not by_key[ZELDA].seed
    path = by_key[ZELDA].evidence()[1]
    assert path["text"] == "game:1942 -HAS_GENRE-> genre:rpg <-HAS_GENRE- game:7346"
    assert path["relationships"] == ["HAS_GENRE", "HAS_GENRE"]
    assert by_key[ZELDA].evidence()[0]["text"] == "similarity to the query 0.20"
    # Genres are not entities: never returned.
    assert RPG not in by_key
    # One hop cannot reach across a genre.
    assert ZELDA not in {r.key for r in rank(hits, graph(*edges), {ZELDA: 0.2}, k=10, hops=1)}


def test_similar_to_is_weighted_by_its_similarity_and_can_reorder_seeds():
    edges = [Edge(WITCHER, "SIMILAR_TO", SKYRIM, 0.9), Edge(ZELDA, "SIMILAR_TO", FIFA, 0.1)]
    hits = {WITCHER: 0.6, SKYRIM: 0.40, ZELDA: 0.45, FIFA: 0.42}
    ranked = rank(hits, graph(*edges), {}, k=4, hops=1)
    skyrim = next(r for r in ranked if r.key == SKYRIM)
    assert skyrim.support == pytest.approx((0.6 - 0.4) * 0.9 * DECAY)
    # Skyrim is not among the anchors (the best three hits): it supports nobody.
    assert next(r for r in ranked if r.key == WITCHER).support == 0
    # Skyrim, last by similarity alone, moves up to second on the Witcher's support.
    assert [r.key for r in rank(hits, graph(*edges), {}, k=4, hops=0)] == [WITCHER, ZELDA, FIFA, SKYRIM]
    assert [r.key for r in ranked] == [WITCHER, SKYRIM, ZELDA, FIFA]
    assert skyrim.evidence()[1]["text"] == "game:1942 -SIMILAR_TO-> game:472"


def test_hubs_are_not_evidence():
    edges = [Edge(TENANT, "OWNS", WITCHER), Edge(TENANT, "OWNS", ZELDA)]
    ranked = rank({WITCHER: 0.6, FIFA: 0.2}, graph(*edges), {ZELDA: 0.3}, k=10, hops=2)
    assert [r.key for r in ranked] == [WITCHER, FIFA]
    # Nor is a node linked to more than MAX_DEGREE others.
    edges = [Edge(WITCHER, "HAS_GENRE", RPG), Edge(ZELDA, "HAS_GENRE", RPG)]
    busy = graph(*edges, degrees={RPG: MAX_DEGREE + 1})
    assert [r.key for r in rank({WITCHER: 0.6, FIFA: 0.2}, busy, {ZELDA: 0.3}, k=10, hops=2)] == [
        WITCHER,
        FIFA,
    ]
    assert ZELDA in {
        r.key for r in rank({WITCHER: 0.6, FIFA: 0.2}, graph(*edges), {ZELDA: 0.3}, k=10, hops=2)
    }


def test_the_ranking_is_deterministic_and_ties_break_by_key():
    edges = [Edge(WITCHER, "HAS_GENRE", RPG), Edge(ZELDA, "HAS_GENRE", RPG), Edge(SKYRIM, "HAS_GENRE", RPG)]
    hits = {SKYRIM: 0.5, ZELDA: 0.5, WITCHER: 0.5}
    first = rank(hits, graph(*edges), {}, k=10, hops=2)
    again = rank(dict(reversed(hits.items())), graph(*reversed(edges)), {}, k=10, hops=2)
    assert [r.as_dict() for r in first] == [r.as_dict() for r in again]
    assert [r.key for r in first] == sorted(hits)


def test_bad_hops_are_refused():
    with pytest.raises(ValueError, match="hops"):
        rank({}, graph(), {}, k=10, hops=3)


def test_recall_and_reciprocal_rank():
    ranked = ["a", "b", "c"]
    assert recall_at(ranked, {"b", "z"}, 10) == 0.5
    assert recall_at(ranked, {"c"}, 2) == 0.0
    assert reciprocal_rank(ranked, {"c", "z"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(ranked, {"z"}) == 0.0


def test_the_exact_fallback_runs_only_when_short_and_more_rows_exist():
    assert not needs_exact(20, 20)  # the HNSW result stands: no count
    assert needs_exact(7, 20)  # short: count the candidates first
    assert needs_exact(7, 20, available=300)  # more exist than the scan found: exact scan
    assert not needs_exact(7, 20, available=7)  # the tenant has only these: they are all there is


def _drive(reads, answers):
    """Run a retrieval_reads generator, answering each read with the next rows; the reads sent."""
    sent, rows = [], None
    try:
        while True:
            sent.append(reads.send(rows))
            rows = answers[len(sent) - 1]
    except StopIteration as done:
        return sent, done.value


def _hit(key, similarity):
    entity_type, entity_id = key.split(":", 1)
    return {"entity_type": entity_type, "entity_id": entity_id, "content": f"{key}. text",
            "similarity": similarity}  # fmt: skip


def test_retrieval_reads_fall_back_then_expand_only_from_the_anchors():
    space = Space("all-MiniLM-L6-v2", 3, "leaf", None)
    vector = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    hits = [_hit(WITCHER, 0.9), _hit(ZELDA, 0.8), _hit(SKYRIM, 0.7), _hit(FIFA, 0.6), _hit("game:5", 0.5)]
    edge = {"kind": "edge", "a": WITCHER, "b": "HAS_GENRE", "c": RPG, "w": 1.0}
    answers = [
        hits[:2],  # HNSW: short of seed_count(1) = 20
        [{"available": 5}],  # the tenant has 5 of the type: more than found
        hits,  # the exact scan
        [edge, {"kind": "edge", "a": "game:77", "b": "HAS_GENRE", "c": RPG, "w": 1.0}],
        [{"entity_type": "game", "entity_id": "77", "similarity": 0.3}],
    ]
    reads = retrieval_reads("thrillring", space, vector, k=1, types=["game"], hops=2)
    sent, gathered = _drive(reads, answers)
    assert len(sent) == 5 and sent[0].settings == {"hnsw.ef_search": str(ef_search_for(20))}
    assert "+ 0" not in sent[0].query and "+ 0" in sent[2].query and "count(*)" in sent[1].query
    # The graph read names the anchors only, not all five hits.
    assert sent[3].params == ("thrillring", "thrillring", [WITCHER, ZELDA, SKYRIM], "thrillring",
                              [WITCHER, ZELDA, SKYRIM])  # fmt: skip
    assert len(gathered.hits) == 5 and gathered.similarities == {"game:77": 0.3}
    # When the count shows nothing more to find, the short HNSW result stands.
    sent, gathered = _drive(retrieval_reads("thrillring", space, vector, k=1, types=["game"], hops=0),
                            [hits[:2], [{"available": 2}]])  # fmt: skip
    assert len(sent) == 2 and set(gathered.hits) == {WITCHER, ZELDA}
