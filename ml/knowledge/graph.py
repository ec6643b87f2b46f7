"""The tenant's knowledge graph, built deterministically from its entities and their vectors.

Nodes are the tenant itself, its entities (Business, Game, Product, Lead, Campaign) and the named
things they link through (Category, City, State, Genre, Platform, ProductType, Source, Channel).
Edges:

    OWNS         Tenant -> every entity
    IN_CATEGORY  Business -> Category (its subcategory), Category -> its parent Category,
                 Product -> Category
    LOCATED_IN   Business -> City, City -> State
    HAS_GENRE    Game -> Genre
    ON_PLATFORM  Game -> Platform
    OF_TYPE      Product -> ProductType
    CAME_FROM    Lead -> Source, Lead -> Campaign (when the campaign is one of the tenant's)
    VIA_CHANNEL  Campaign -> Channel
    SIMILAR_TO   entity -> its nearest entities of the same type (weight: cosine similarity)

Node keys are '<type>:<id>' (`entities.node_key`): an entity's own id, or the slug of a name
('genre:role-playing-rpg', 'city:austin-tx'). The same entities and neighbours give the same nodes
and edges in the same order and the same `graph_hash`, whatever order they arrive in.

A new entity type joins by adding its builder in `entities` and its linker in `LINKERS` below
(QuantTrade's Strategy: link it to its instruments/markets there once core has strategies).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ml.knowledge.entities import BUSINESS, CAMPAIGN, GAME, LEAD, NODE_TYPES, PRODUCT, Entity, node_key, slug

OWNS, IN_CATEGORY, LOCATED_IN = "OWNS", "IN_CATEGORY", "LOCATED_IN"
HAS_GENRE, ON_PLATFORM, OF_TYPE = "HAS_GENRE", "ON_PLATFORM", "OF_TYPE"
CAME_FROM, VIA_CHANNEL, SIMILAR_TO = "CAME_FROM", "VIA_CHANNEL", "SIMILAR_TO"
REL_TYPES = (
    OWNS,
    IN_CATEGORY,
    LOCATED_IN,
    HAS_GENRE,
    ON_PLATFORM,
    OF_TYPE,
    CAME_FROM,
    VIA_CHANNEL,
    SIMILAR_TO,
)

TENANT, CATEGORY, CITY, STATE = "Tenant", "Category", "City", "State"
GENRE, PLATFORM, PRODUCT_TYPE, SOURCE, CHANNEL = "Genre", "Platform", "ProductType", "Source", "Channel"

# Similarities are computed in float64 and compared (and stored) to this many decimals, so the
# rounding noise of different BLAS paths (block sizes, row orders) cannot reorder neighbours or
# change the hash: in float32 it reaches the 7th digit and did.
SIMILARITY_DECIMALS = 6


@dataclass(frozen=True)
class Node:
    key: str
    node_type: str
    label: str
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Edge:
    src: str
    rel: str
    dst: str
    weight: float = 1.0
    # Not hashed (a dict is not hashable), so edges can live in sets; still compared.
    properties: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.src, self.rel, self.dst)


@dataclass(frozen=True)
class Graph:
    tenant_id: str
    nodes: tuple[Node, ...]  # sorted by key
    edges: tuple[Edge, ...]  # sorted by (src, rel, dst)

    @property
    def graph_hash(self) -> str:
        """sha256 of the canonical nodes and edges: equal graphs, equal hashes."""
        digest = hashlib.sha256(f"tenant\t{self.tenant_id}\n".encode())
        for n in self.nodes:
            digest.update(f"n\t{n.key}\t{n.node_type}\t{n.label}\t{_canonical(n.properties)}\n".encode())
        for e in self.edges:
            digest.update(
                f"e\t{e.src}\t{e.rel}\t{e.dst}\t{e.weight:.{SIMILARITY_DECIMALS}f}\t"
                f"{_canonical(e.properties)}\n".encode()
            )
        return digest.hexdigest()

    def nodes_by_type(self) -> dict[str, int]:
        return dict(sorted(Counter(n.node_type for n in self.nodes).items()))

    def edges_by_type(self) -> dict[str, int]:
        return dict(sorted(Counter(e.rel for e in self.edges).items()))


@dataclass(frozen=True)
class Growth:
    nodes_added: int
    nodes_removed: int
    edges_added: int
    edges_removed: int


@dataclass(frozen=True)
class GraphChanges:
    """What a rebuild changes in the stored graph: only these rows are written."""

    upsert_nodes: tuple[Node, ...]
    delete_nodes: tuple[str, ...]
    upsert_edges: tuple[Edge, ...]
    delete_edges: tuple[tuple[str, str, str], ...]
    growth: Growth


def graph_changes(
    previous_nodes: Mapping[str, tuple[str, str, Mapping[str, Any]]],
    previous_edges: Mapping[tuple[str, str, str], tuple[float, Mapping[str, Any]]],
    graph: Graph,
) -> GraphChanges:
    """The difference between the stored graph (node key -> (type, label, properties); edge key ->
    (weight, properties)) and `graph`. A rebuild from unchanged tables changes nothing, so a no-change
    run writes no row."""

    def same_node(n: Node) -> bool:
        stored = previous_nodes.get(n.key)
        return (
            stored is not None
            and stored[:2] == (n.node_type, n.label)
            and (_canonical(stored[2]) == _canonical(n.properties))
        )

    def same_edge(e: Edge) -> bool:
        stored = previous_edges.get(e.key)
        # Weights are stored as `real`: equal to the 6 decimals they are rounded to.
        return (
            stored is not None
            and abs(stored[0] - e.weight) < 10**-SIMILARITY_DECIMALS
            and (_canonical(stored[1]) == _canonical(e.properties))
        )

    now_nodes, now_edges = {n.key for n in graph.nodes}, {e.key for e in graph.edges}
    return GraphChanges(
        upsert_nodes=tuple(n for n in graph.nodes if not same_node(n)),
        delete_nodes=tuple(sorted(set(previous_nodes) - now_nodes)),
        upsert_edges=tuple(e for e in graph.edges if not same_edge(e)),
        delete_edges=tuple(sorted(set(previous_edges) - now_edges)),
        growth=Growth(
            nodes_added=len(now_nodes - set(previous_nodes)),
            nodes_removed=len(set(previous_nodes) - now_nodes),
            edges_added=len(now_edges - set(previous_edges)),
            edges_removed=len(set(previous_edges) - now_edges),
        ),
    )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


# --- linking entities to named things ------------------------------------------------------------

# (rel, target node type, target id, target label, target properties)
Link = tuple[str, str, str, str, dict[str, Any]]


def _named(rel: str, node_type: str, name: str, **properties: Any) -> Link:
    return (rel, node_type, slug(name), name, properties)


def _business_links(entity: Entity) -> list[Link]:
    attrs = entity.attrs
    links: list[Link] = []
    category, subcategory = attrs.get("category") or "", attrs.get("subcategory") or ""
    if subcategory:
        links.append(_named(IN_CATEGORY, CATEGORY, subcategory.replace("_", " "), parent=category or None))
    elif category:
        links.append(_named(IN_CATEGORY, CATEGORY, category.replace("_", " ")))
    city, state = attrs.get("city") or "", attrs.get("state") or ""
    if city:
        place = f"{city}, {state}" if state else city
        links.append(_named(LOCATED_IN, CITY, place, city=city, state=state or None))
    elif state:
        links.append(_named(LOCATED_IN, STATE, state))
    return links


def _game_links(entity: Entity) -> list[Link]:
    return [_named(HAS_GENRE, GENRE, g) for g in entity.attrs.get("genres", ())] + [
        _named(ON_PLATFORM, PLATFORM, p) for p in entity.attrs.get("platforms", ())
    ]


def _product_links(entity: Entity) -> list[Link]:
    links = []
    if entity.attrs.get("category"):
        links.append(_named(IN_CATEGORY, CATEGORY, entity.attrs["category"]))
    if entity.attrs.get("product_type"):
        links.append(_named(OF_TYPE, PRODUCT_TYPE, entity.attrs["product_type"]))
    return links


def _lead_links(entity: Entity) -> list[Link]:
    links = []
    if entity.attrs.get("source"):
        links.append(_named(CAME_FROM, SOURCE, entity.attrs["source"].replace("_", " ")))
    if entity.attrs.get("campaign_id"):
        # Resolved against the tenant's campaigns in build_graph (only those become edges).
        campaign_id = entity.attrs["campaign_id"]
        links.append((CAME_FROM, NODE_TYPES[CAMPAIGN], campaign_id, campaign_id, {}))
    return links


def _campaign_links(entity: Entity) -> list[Link]:
    channel = entity.attrs.get("channel")
    return [_named(VIA_CHANNEL, CHANNEL, channel.replace("_", " "))] if channel else []


LINKERS: dict[str, Callable[[Entity], list[Link]]] = {
    BUSINESS: _business_links,
    GAME: _game_links,
    PRODUCT: _product_links,
    LEAD: _lead_links,
    CAMPAIGN: _campaign_links,
    # STRATEGY: _strategy_links,  (QuantTrade, when its strategies become entities)
}

# Named-node hierarchy: a business subcategory's Category sits IN_CATEGORY its parent Category;
# a City is LOCATED_IN its State.
_PARENTS = {CATEGORY: ("parent", IN_CATEGORY, CATEGORY), CITY: ("state", LOCATED_IN, STATE)}


def _entity_properties(entity: Entity) -> dict[str, Any]:
    props = {"entity_type": entity.entity_type, "entity_id": entity.entity_id}
    for name, value in sorted(entity.attrs.items()):
        if value in (None, "", ()):
            continue
        props[name] = list(value) if isinstance(value, tuple | list) else value
    return props


def build_graph(
    tenant_id: str,
    entities: Iterable[Entity],
    neighbours: Mapping[str, Sequence[tuple[str, float]]] | None = None,
) -> Graph:
    """The tenant's graph from its `entities` and, per entity key, its nearest neighbours
    [(neighbour key, cosine similarity)] for SIMILAR_TO (see `nearest_neighbours`). Neighbours
    that are not among the entities (a vector left from a deleted row) are dropped."""
    nodes: dict[str, Node] = {}
    edges: dict[tuple[str, str, str], Edge] = {}
    tenant_key = node_key(TENANT, tenant_id)
    nodes[tenant_key] = Node(tenant_key, TENANT, tenant_id, {})

    def add_edge(src: str, rel: str, dst: str, weight: float = 1.0) -> None:
        edges[(src, rel, dst)] = Edge(src, rel, dst, float(weight))

    entities = sorted(entities, key=lambda e: e.key)
    for entity in entities:
        if entity.entity_type not in LINKERS:
            raise ValueError(f"no graph linker for entity type {entity.entity_type!r}")
        if entity.key in nodes:
            raise ValueError(f"entity {entity.key} appears twice")
        nodes[entity.key] = Node(entity.key, NODE_TYPES[entity.entity_type], entity.label,
                                 _entity_properties(entity))  # fmt: skip
        add_edge(tenant_key, OWNS, entity.key)

    entity_keys = {e.key for e in entities}
    for entity in entities:
        for rel, node_type, node_id, label, props in LINKERS[entity.entity_type](entity):
            target = node_key(node_type, node_id)
            if node_type in NODE_TYPES.values():
                if target in entity_keys:  # an entity link: only to the tenant's own entities
                    add_edge(entity.key, rel, target)
                continue
            if target not in nodes:
                clean = {k: v for k, v in sorted(props.items()) if v not in (None, "")}
                nodes[target] = Node(target, node_type, label, clean)
                parent = _PARENTS.get(node_type)
                if parent and clean.get(parent[0]):
                    name = str(clean[parent[0]]).replace("_", " ")
                    parent_key = node_key(parent[2], slug(name))
                    nodes.setdefault(parent_key, Node(parent_key, parent[2], name, {}))
                    add_edge(target, parent[1], parent_key)
            add_edge(entity.key, rel, target)

    for src, found in (neighbours or {}).items():
        if src not in entity_keys:
            continue
        for dst, similarity in found:
            if dst in entity_keys and dst != src:
                add_edge(src, SIMILAR_TO, dst, round(float(similarity), SIMILARITY_DECIMALS))

    return Graph(
        tenant_id,
        tuple(nodes[k] for k in sorted(nodes)),
        tuple(edges[k] for k in sorted(edges)),
    )


# --- SIMILAR_TO: exact nearest neighbours ----------------------------------------------------------

DEFAULT_BLOCK_BYTES = 64 * 2**20


def nearest_neighbours(
    keys: Sequence[str],
    vectors: np.ndarray,
    k: int,
    min_similarity: float = -1.0,
    *,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> dict[str, list[tuple[str, float]]]:
    """Each key's k most similar other keys (cosine; `vectors` are unit rows), at least
    `min_similarity`, most similar first with ties broken by key. Exact: every pair is scored,
    a block of rows at a time so memory stays near `block_bytes` whatever the count."""
    n = len(keys)
    if len(vectors) != n:
        raise ValueError(f"{n} keys but {len(vectors)} vectors")
    if k < 1 or n < 2:
        return {}
    order = sorted(range(n), key=keys.__getitem__)  # ties by key == ties by position
    keys = [keys[i] for i in order]
    matrix = np.ascontiguousarray(np.asarray(vectors, dtype=np.float64)[order])
    k = min(k, n - 1)
    # Per row of a block: the float64 scores, their argpartition (int64) and a mask.
    rows_per_block = max(1, int(block_bytes // (n * 17)))
    result: dict[str, list[tuple[str, float]]] = {}
    for start in range(0, n, rows_per_block):
        stop = min(n, start + rows_per_block)
        scores = np.round(matrix[start:stop] @ matrix.T, SIMILARITY_DECIMALS)
        scores[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # never one's own neighbour
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        kth = scores[np.arange(stop - start)[:, None], top].min(axis=1)
        ties = (scores >= kth[:, None]).sum(axis=1) > k
        for row in range(stop - start):
            # A tie at the k-th score: choose among all tied columns by key, not by partition luck.
            cols = np.flatnonzero(scores[row] >= kth[row]) if ties[row] else top[row]
            sims = scores[row, cols]
            ranked = cols[np.lexsort((cols, -sims))][:k]
            found = [(keys[c], float(scores[row, c])) for c in ranked if scores[row, c] >= min_similarity]
            if found:
                result[keys[start + row]] = found
    return result
