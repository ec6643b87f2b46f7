"""Reads a tenant's entities for the knowledge layer from the modelled tables.

One query per entity type, each returning the columns its builder in `ml.knowledge.entities`
takes, in a stable order (so the graph built from them is deterministic). A tenant without a
domain simply has no rows of that type; a new domain joins the layer by adding its query and
builder here.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from dagster import AssetDep, AutomationCondition, IdentityPartitionMapping
from psycopg.rows import dict_row

from ml.knowledge.entities import BUILDERS, BUSINESS, CAMPAIGN, ENTITY_TYPES, GAME, LEAD, PRODUCT, Entity

QUERIES = {
    BUSINESS: """
        SELECT business_id, name, category, subcategory, cuisine, city, state
          FROM core.businesses_master WHERE tenant_id = %(t)s AND status = 'active'
         ORDER BY business_id""",
    GAME: """
        SELECT igdb_id, name, genres, platforms, release_date
          FROM core.gaming_catalogue WHERE tenant_id = %(t)s ORDER BY igdb_id""",
    PRODUCT: """
        SELECT product_id, name, category, product_type
          FROM core.ecommerce_products WHERE tenant_id = %(t)s ORDER BY product_id""",
    LEAD: """
        SELECT l.lead_id, l.company_name, l.source, l.campaign_id, l.status, c.name AS campaign_name
          FROM core.crm_leads l
          LEFT JOIN core.crm_campaigns c ON c.tenant_id = l.tenant_id AND c.campaign_id = l.campaign_id
         WHERE l.tenant_id = %(t)s ORDER BY l.lead_id""",
    CAMPAIGN: """
        SELECT campaign_id, name, channel, segment
          FROM core.crm_campaigns WHERE tenant_id = %(t)s ORDER BY campaign_id""",
}


# The assets writing the tables above. They are partitioned by their domain's tenants
# (tenant_directory, tenant_gaming, ...), a subset of `tenant`; the identity mapping (which Dagster
# also infers between two DynamicPartitionsDefinitions) maps partition keys by name: thrillring's
# knowledge depends on thrillring's game_catalogue and on no businesses_master partition, since it
# has none. Declared explicitly so the cross-definition mapping is a decision on record.
ENTITY_ASSETS = ("businesses_master", "game_catalogue", "products", "crm_leads", "crm_campaigns")
ENTITY_DEPS = [AssetDep(key, partition_mapping=IdentityPartitionMapping()) for key in ENTITY_ASSETS]

# Eager: the knowledge assets follow as soon as any entity table of the tenant changes (a run with
# nothing changed costs a hash diff, no embedder call and no graph write, so frequent upstream
# syncs are cheap). Without eager's "no dependency missing" clause: a tenant's entities join the
# layer domain by domain, so a domain not materialized yet must not hold back the others.
KNOWLEDGE_AUTOMATION = AutomationCondition.eager().without(~AutomationCondition.any_deps_missing())


def load_entities(
    conn: psycopg.Connection, tenant_id: str, types: Iterable[str] = ENTITY_TYPES
) -> list[Entity]:
    """The tenant's entities of `types`, grouped by type in ENTITY_TYPES order, each sorted by id.
    `conn` must be in a transaction with the tenant set (RLS)."""
    wanted = set(types)
    unknown = wanted - set(ENTITY_TYPES)
    if unknown:
        raise ValueError(f"unknown entity types {sorted(unknown)}; choose from {', '.join(ENTITY_TYPES)}")
    entities: list[Entity] = []
    with conn.cursor(row_factory=dict_row) as cur:
        for entity_type in ENTITY_TYPES:
            if entity_type in wanted:
                build = BUILDERS[entity_type]
                entities.extend(build(row) for row in cur.execute(QUERIES[entity_type], {"t": tenant_id}))
    return entities
