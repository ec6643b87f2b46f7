"""The Cypher that mirrors a tenant's Postgres graph into Neo4j, built without a server.

Every node carries the common label `KgNode` and its type label (`Business`, `Genre`, ...), keyed
by (tenant_id, key) under one uniqueness constraint; relationships carry their tenant too. A sync
stamps everything it writes with a fresh sync id, then deletes the tenant's nodes and
relationships that carry another one, so Neo4j holds exactly the Postgres graph afterwards.

Labels and relationship types cannot be query parameters in Cypher, so they are formatted into the
statements, and only after matching a strict pattern; everything else is a parameter.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

COMMON_LABEL = "KgNode"
LABEL_PATTERN = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")
REL_TYPE_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
DEFAULT_BATCH_SIZE = 1000

CONSTRAINTS = (
    f"CREATE CONSTRAINT kg_node_key IF NOT EXISTS FOR (n:{COMMON_LABEL}) "
    "REQUIRE (n.tenant_id, n.key) IS UNIQUE",
    f"CREATE INDEX kg_node_sync IF NOT EXISTS FOR (n:{COMMON_LABEL}) ON (n.tenant_id, n.sync_id)",
)


@dataclass(frozen=True)
class Statement:
    text: str
    params: dict[str, Any]
    rows: int = 0  # rows the statement writes (0 for removals: they report their own count)


def label(value: str) -> str:
    if not isinstance(value, str) or not LABEL_PATTERN.match(value):
        raise ValueError(f"not a safe Neo4j label: {value!r} (expected {LABEL_PATTERN.pattern})")
    return value


def rel_type(value: str) -> str:
    if not isinstance(value, str) or not REL_TYPE_PATTERN.match(value):
        raise ValueError(f"not a safe relationship type: {value!r} (expected {REL_TYPE_PATTERN.pattern})")
    return value


def neo4j_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    """Neo4j stores scalars and lists of one scalar type: nested values become JSON text, and
    None (which Neo4j treats as 'no property') is left out."""
    out: dict[str, Any] = {}
    for name, value in properties.items():
        if value is None:
            continue
        if isinstance(value, str | int | float | bool):
            out[name] = value
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            out[name] = list(value)
        else:
            out[name] = json.dumps(value, sort_keys=True, default=str)
    return out


def batches(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def node_statements(
    tenant_id: str,
    nodes: Iterable[Mapping[str, Any]],
    sync_id: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[Statement]:
    """UNWIND ... MERGE per node type and batch. `nodes`: {key, node_type, label, properties}."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for node in nodes:
        by_type[label(node["node_type"])].append(
            {
                "key": node["key"],
                "label": node["label"],
                "props": neo4j_properties(node.get("properties") or {}),
            }
        )
    statements = []
    for node_type in sorted(by_type):
        # Properties are replaced as a whole (n = ...), then the identity is set again: a property
        # dropped in Postgres disappears in Neo4j too.
        text = (
            f"UNWIND $rows AS row MERGE (n:{COMMON_LABEL} {{tenant_id: $tenant_id, key: row.key}}) "
            f"SET n = row.props, n:{node_type}, n.tenant_id = $tenant_id, n.key = row.key, "
            f"n.node_type = '{node_type}', n.label = row.label, n.sync_id = $sync_id"
        )
        statements += _batched(text, by_type[node_type], tenant_id, sync_id, batch_size)
    return statements


def edge_statements(
    tenant_id: str,
    edges: Iterable[Mapping[str, Any]],
    sync_id: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[Statement]:
    """UNWIND ... MATCH both ends ... MERGE per relationship type and batch. `edges`:
    {src, rel, dst, weight, properties}. Ends are matched within the tenant only."""
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for edge in edges:
        by_type[rel_type(edge["rel"])].append(
            {"src": edge["src"], "dst": edge["dst"], "weight": float(edge.get("weight", 1.0)),
             "props": neo4j_properties(edge.get("properties") or {})}
        )  # fmt: skip
    statements = []
    for rel in sorted(by_type):
        text = (
            f"UNWIND $rows AS row "
            f"MATCH (a:{COMMON_LABEL} {{tenant_id: $tenant_id, key: row.src}}) "
            f"MATCH (b:{COMMON_LABEL} {{tenant_id: $tenant_id, key: row.dst}}) "
            f"MERGE (a)-[r:{rel}]->(b) "
            f"SET r = row.props, r.tenant_id = $tenant_id, r.weight = row.weight, r.sync_id = $sync_id"
        )
        statements += _batched(text, by_type[rel], tenant_id, sync_id, batch_size)
    return statements


def _batched(text: str, rows: list, tenant_id: str, sync_id: str, batch_size: int) -> list[Statement]:
    """`text` once per batch of `rows`, with the tenant and the sync id."""
    return [
        Statement(text, {"tenant_id": tenant_id, "sync_id": sync_id, "rows": list(chunk)}, len(chunk))
        for chunk in batches(rows, batch_size)
    ]


def removal_statements(tenant_id: str, sync_id: str, batch_size: int = DEFAULT_BATCH_SIZE) -> list[Statement]:
    """What the sync did not stamp, within the tenant: relationships first, then nodes (with any
    relationship left on them). Each returns `removed`; run each until it returns 0."""
    params = {"tenant_id": tenant_id, "sync_id": sync_id, "limit": int(batch_size)}
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    return [
        Statement(
            f"MATCH (:{COMMON_LABEL} {{tenant_id: $tenant_id}})-[r]->"
            f"(:{COMMON_LABEL} {{tenant_id: $tenant_id}}) "
            "WHERE r.sync_id IS NULL OR r.sync_id <> $sync_id "
            "WITH r LIMIT $limit DELETE r RETURN count(*) AS removed",
            params,
        ),
        Statement(
            f"MATCH (n:{COMMON_LABEL} {{tenant_id: $tenant_id}}) "
            "WHERE n.sync_id IS NULL OR n.sync_id <> $sync_id "
            "WITH n LIMIT $limit DETACH DELETE n RETURN count(*) AS removed",
            params,
        ),
    ]


def read_back_statements(tenant_id: str) -> tuple[Statement, Statement]:
    """The tenant's nodes and relationships as Neo4j holds them (for the round-trip test)."""
    params = {"tenant_id": tenant_id}
    return (
        Statement(
            f"MATCH (n:{COMMON_LABEL} {{tenant_id: $tenant_id}}) "
            "RETURN n.key AS key, n.node_type AS node_type, n.label AS label ORDER BY key",
            params,
        ),
        Statement(
            f"MATCH (a:{COMMON_LABEL} {{tenant_id: $tenant_id}})-[r]->(b:{COMMON_LABEL}) "
            "WHERE r.tenant_id = $tenant_id "
            "RETURN a.key AS src, type(r) AS rel, b.key AS dst, r.weight AS weight ORDER BY src, rel, dst",
            params,
        ),
    )
