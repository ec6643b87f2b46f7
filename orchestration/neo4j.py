"""Neo4j, the graph database the tenant graphs are mirrored into, through the official driver.

Not configured (no NEO4J_URI), nothing connects anywhere: the sync asset says so and succeeds.
The statements come from `ml.knowledge.cypher`; this resource only runs them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from ml.knowledge import cypher
from orchestration.settings import ENV_NEO4J_PASSWORD, ENV_NEO4J_URI, ENV_NEO4J_USER

NOT_CONFIGURED = (
    f"Neo4j sync is not configured: set {ENV_NEO4J_URI} (e.g. neo4j://localhost:7687), "
    f"{ENV_NEO4J_USER} and {ENV_NEO4J_PASSWORD} to mirror each tenant's graph into Neo4j"
)


@dataclass(frozen=True)
class SyncReport:
    sync_id: str
    nodes_written: int
    edges_written: int
    relationships_removed: int
    nodes_removed: int
    batches: int
    seconds: float


class Neo4jResource(ConfigurableResource):
    uri: str | None = Field(default=None, description=f"Bolt/neo4j URI ({ENV_NEO4J_URI}); unset: no sync.")
    user: str | None = Field(default=None, description=f"User name ({ENV_NEO4J_USER}).")
    password: str | None = Field(default=None, description=f"Password ({ENV_NEO4J_PASSWORD}).")
    database: str | None = Field(default=None, description="Database name (default: the server's default).")
    batch_size: int = Field(default=cypher.DEFAULT_BATCH_SIZE, ge=1, description="Rows per UNWIND statement.")
    connection_timeout_s: float = Field(default=10.0, description="Seconds to wait for a connection.")

    @property
    def configured(self) -> bool:
        return bool((self.uri or "").strip())

    def driver(self):
        if not self.configured:
            raise RuntimeError(NOT_CONFIGURED)
        from neo4j import GraphDatabase

        auth = (self.user or "neo4j", self.password or "") if self.user or self.password else None
        return GraphDatabase.driver(self.uri.strip(), auth=auth, connection_timeout=self.connection_timeout_s)

    def _session(self, driver):
        return driver.session(database=self.database) if self.database else driver.session()

    def sync(
        self, tenant_id: str, nodes: Iterable[Mapping[str, Any]], edges: Iterable[Mapping[str, Any]]
    ) -> SyncReport:
        """Make the tenant's Neo4j graph equal `nodes` and `edges` (the Postgres graph)."""
        started = time.perf_counter()
        sync_id = uuid.uuid4().hex
        node_writes = cypher.node_statements(tenant_id, nodes, sync_id, self.batch_size)
        edge_writes = cypher.edge_statements(tenant_id, edges, sync_id, self.batch_size)
        removed = [0, 0]
        batches = 0
        with self.driver() as driver:
            driver.verify_connectivity()
            with self._session(driver) as session:
                for statement in cypher.CONSTRAINTS:
                    session.run(statement).consume()
                for statement in [*node_writes, *edge_writes]:
                    session.execute_write(lambda tx, s=statement: tx.run(s.text, s.params).consume())
                    batches += 1
                for i, statement in enumerate(cypher.removal_statements(tenant_id, sync_id, self.batch_size)):
                    while True:
                        count = session.execute_write(
                            lambda tx, s=statement: tx.run(s.text, s.params).single()["removed"]
                        )
                        batches += 1
                        removed[i] += count
                        if count < self.batch_size:
                            break
        return SyncReport(
            sync_id,
            sum(s.rows for s in node_writes),
            sum(s.rows for s in edge_writes),
            removed[0],
            removed[1],
            batches,
            round(time.perf_counter() - started, 3),
        )

    def read_back(self, tenant_id: str) -> tuple[list[dict], list[dict]]:
        """The tenant's nodes and relationships as Neo4j holds them."""
        node_query, edge_query = cypher.read_back_statements(tenant_id)
        with self.driver() as driver, self._session(driver) as session:
            nodes = [r.data() for r in session.run(node_query.text, node_query.params)]
            edges = [r.data() for r in session.run(edge_query.text, edge_query.params)]
        return nodes, edges
