"""Hybrid retrieval: the query's nearest entities (vectors), re-ranked and extended through the
tenant's knowledge graph, each result with the evidence that put it there.

The ranking is pure: the caller reads the vector hits, the graph around them and the query's
similarity to the entities the graph reached (orchestration.knowledge_retrieval), and this module
scores them. The formula, for an entity e of the requested types:

    score(e)    = sim(e) + support(e)
    sim(e)      = cosine similarity of e's vector to the query (0 if unknown or negative)
    support(e)  = sum over anchors a != e of the strongest path a ~> e of at most `hops` edges:
                  lift(a) * DECAY ** len(path) * prod(weight(edge)) * prod(1 / sqrt(degree(n)))
    lift(a)     = sim(a) - the smallest similarity among the vector hits

The anchors are the ANCHORS best vector hits, and lift(a) is how far an anchor stands out from
the pool of hits: measured on the labelled queries (fixtures/knowledge/labelled_queries.yaml),
spreading every hit's full similarity let entities linked to many mediocre hits (the middle of a
genre, a busy city) crowd out the best matches; a few anchors, by their margin, re-rank without
that. weight(edge) is the cosine similarity for SIMILAR_TO and 1 for the other typed edges, and n
runs over the path's intermediate nodes: a genre shared by 4 games
says more about two of them than a genre shared by 400. Paths never pass through hub nodes (the
Tenant node, which OWNS everything, or any node with more than MAX_DEGREE edges): they connect
everything with everything, so they are evidence of nothing. Edges are walked both ways. Ties are
broken by key, so the same inputs always give the same ranking.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from ml.knowledge.entities import ENTITY_TYPES, split_key
from ml.knowledge.graph import Edge

DECAY = 0.3  # per edge: a neighbour's neighbour counts 9% of the anchor's lift
ANCHORS = 3
MAX_HOPS = 2
# Nodes with more edges are hubs: no path passes through them. Measured on the labelled queries
# (recall@10 / MRR of the hybrid; vectors only 0.735 / 0.774) with ThrillRing's median graph read
# and rank: 500 gave 0.738 / 0.766, 9.5 + 6.6 ms (its Platform nodes link nearly every game, so
# two hops walked the catalogue); 40: 0.744 / 0.787, 10.0 + 5.3 ms; 20: 0.738 / 0.780, 6.4 +
# 1.9 ms; 10: 0.735 / 0.756. A node shared by more than 20 entities says little about any two.
MAX_DEGREE = 20
HUB_TYPES = frozenset({"tenant"})
MAX_EVIDENCE_PATHS = 3


@dataclass(frozen=True)
class Neighbourhood:
    """Edges within `hops` of the seeds, the labels of their nodes, and the full degree of the
    nodes a path may pass through (the reader counts them in the whole tenant graph)."""

    edges: tuple[Edge, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    degrees: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Path:
    seed: str
    nodes: tuple[str, ...]  # seed first, the reached entity last
    steps: tuple[tuple[str, bool, float], ...]  # (rel, forward?, weight) between consecutive nodes
    strength: float

    def text(self) -> str:
        parts = [self.nodes[0]]
        for (rel, forward, _), node in zip(self.steps, self.nodes[1:], strict=True):
            parts.append(f"-{rel}->" if forward else f"<-{rel}-")
            parts.append(node)
        return " ".join(parts)

    def as_dict(self) -> dict:
        return {
            "kind": "graph",
            "text": self.text(),
            "seed": self.seed,
            "path": list(self.nodes),
            "relationships": [rel for rel, _, _ in self.steps],
            "support": round(self.strength, 4),
        }


@dataclass(frozen=True)
class Result:
    key: str
    entity_type: str
    entity_id: str
    label: str
    score: float
    similarity: float | None  # None: the entity has no vector in the searched space
    support: float
    seed: bool  # one of the vector hits
    paths: tuple[Path, ...]

    def evidence(self) -> list[dict]:
        found = []
        if self.similarity is not None:
            kind = "vector match" if self.seed else "similarity to the query"
            found.append({"kind": "vector", "text": f"{kind} {self.similarity:.2f}",
                          "similarity": round(self.similarity, 4)})  # fmt: skip
        return found + [p.as_dict() for p in self.paths]

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "type": self.entity_type,
            "id": self.entity_id,
            "label": self.label,
            "score": round(self.score, 4),
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "graph_support": round(self.support, 4),
            "evidence": self.evidence(),
        }


def node_type_of(key: str) -> str:
    return split_key(key)[0]


def is_entity(key: str) -> bool:
    return node_type_of(key) in ENTITY_TYPES


def is_hub(key: str, degrees: Mapping[str, int]) -> bool:
    return node_type_of(key) in HUB_TYPES or degrees.get(key, 0) > MAX_DEGREE


def _adjacency(edges: Iterable[Edge]) -> dict[str, list[tuple[str, str, bool, float]]]:
    """node -> [(neighbour, rel, forward?, weight)], both directions, in a stable order."""
    adjacent: dict[str, list[tuple[str, str, bool, float]]] = defaultdict(list)
    for edge in sorted(set(edges), key=lambda e: (e.src, e.rel, e.dst)):
        if edge.src == edge.dst:
            continue
        weight = max(float(edge.weight), 0.0)
        adjacent[edge.src].append((edge.dst, edge.rel, True, weight))
        adjacent[edge.dst].append((edge.src, edge.rel, False, weight))
    return adjacent


def paths_from(
    seed: str,
    similarity: float,
    adjacent: Mapping[str, list[tuple[str, str, bool, float]]],
    degrees: Mapping[str, int],
    hops: int,
) -> dict[str, Path]:
    """The strongest path of at most `hops` edges from `seed` to every entity it reaches."""
    best: dict[str, Path] = {}
    frontier = [Path(seed, (seed,), (), similarity)]
    for _ in range(hops):
        extended = []
        for path in frontier:
            here = path.nodes[-1]
            # Passing through a node costs 1/sqrt(its degree); the seed itself costs nothing.
            through = 1.0 if here == seed else 1.0 / math.sqrt(max(degrees.get(here, 1), 1))
            for node, rel, forward, weight in adjacent.get(here, ()):
                if node in path.nodes or is_hub(node, degrees):
                    continue
                strength = path.strength * through * weight * DECAY
                if strength <= 0:
                    continue
                step = Path(seed, (*path.nodes, node), (*path.steps, (rel, forward, weight)), strength)
                extended.append(step)
                if is_entity(node):
                    known = best.get(node)
                    if known is None or (strength, known.nodes) > (known.strength, step.nodes):
                        best[node] = step
        frontier = extended
    return best


def anchors(hits: Mapping[str, float]) -> list[str]:
    """The hits the graph expands from: the ANCHORS most similar (ties by key). Only their
    neighbourhood needs reading: the other hits are ranked by similarity alone."""
    return [key for key, _ in sorted(hits.items(), key=lambda hit: (-hit[1], hit[0]))[:ANCHORS]]


def rank(
    hits: Mapping[str, float],
    neighbourhood: Neighbourhood,
    similarities: Mapping[str, float],
    *,
    k: int,
    types: Collection[str] | None = None,
    hops: int = MAX_HOPS,
) -> list[Result]:
    """The k best entities of `types` (all entity types when None).

    `hits`: the vector hits (entity key -> similarity to the query), the seeds of the expansion;
    `similarities`: the query's similarity to other entities the graph reached (where known);
    `hops`: 0 ranks the hits by similarity alone (vectors only)."""
    if not 0 <= hops <= MAX_HOPS:
        raise ValueError(f"hops must be between 0 and {MAX_HOPS}, not {hops}")
    wanted = set(types or ENTITY_TYPES)
    degrees = dict(neighbourhood.degrees)
    adjacent = _adjacency(neighbourhood.edges if hops else ())
    for node, links in adjacent.items():
        degrees.setdefault(node, len(links))
    known = {**similarities, **hits}

    reached: dict[str, list[Path]] = defaultdict(list)
    floor = min(hits.values(), default=0.0)
    for seed in anchors(hits):
        lift = hits[seed] - floor
        if lift <= 0 or is_hub(seed, degrees):
            continue
        for node, path in paths_from(seed, lift, adjacent, degrees, hops).items():
            reached[node].append(path)

    results = []
    for key in set(hits) | set(reached):
        entity_type, entity_id = split_key(key)
        if entity_type not in wanted:
            continue
        paths = sorted(reached.get(key, ()), key=lambda p: (-p.strength, p.nodes))
        similarity = known.get(key)
        support = sum(p.strength for p in paths)
        score = max(similarity or 0.0, 0.0) + support
        label = neighbourhood.labels.get(key, key)
        results.append(
            Result(
                key,
                entity_type,
                entity_id,
                label,
                score,
                similarity,
                support,
                key in hits,
                tuple(paths[:MAX_EVIDENCE_PATHS]),
            )  # fmt: skip
        )
    results.sort(key=lambda r: (-round(r.score, 9), r.key))
    return results[:k]


def recall_at(ranked: list[str], relevant: Collection[str], k: int = 10) -> float:
    """Share of the relevant keys among the first k."""
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def reciprocal_rank(ranked: list[str], relevant: Collection[str]) -> float:
    """1 / the rank of the first relevant key (0 when none is ranked)."""
    return next((1.0 / rank for rank, key in enumerate(ranked, 1) if key in relevant), 0.0)
