"""Knowledge graph build time per 100k entities (issue 7), on the bench data folder (`.data/bench`).

    python -m bench.knowledge_graph [--quick] [--runs N]

A bench tenant gets ~100k synthetic entities (20k with --quick) in equal shares of the five types,
with realistic attributes (40 business subcategories in 200 cities, 20 genres and 15 platforms,
30 product categories and 50 product types, 8 lead sources, 6 campaign channels), written straight
into the domain tables, and a 384-d unit vector each in its MiniLM embedding space (random vectors
clustered around one centroid per category: embedding 100k texts with MiniLM is its own benchmark).
Each run times the knowledge_graph asset's steps as it performs them: loading the entities, loading
the vectors, the exact SIMILAR_TO neighbours (blockwise numpy, per type), building the graph, and
writing it to Postgres (replacing the previous build in one transaction). Medians over the runs,
normalised per 100k entities.

The Neo4j sync is not measured: no Neo4j server can run on these machines, and timing the Cypher
batching without one measures nothing. With a server, the bench should time `Neo4jResource.sync`
for this tenant (first sync into an empty database, then a re-sync with nothing changed, then one
after 1% of the entities changed) and report rows per second per batch size (500, 1,000, 5,000).

Results go to bench/results/knowledge_graph.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import UTC, date, datetime

import numpy as np

from bench.api import ROOT

BENCH_TENANT = "bench_kg"
DIM = 384
NOW = datetime(2026, 11, 20, tzinfo=UTC)


def _prepare() -> tuple[dict[str, str], str]:
    os.environ.setdefault("BIZOSAAS_DATA_DIR", str(ROOT / ".data" / "bench"))
    from orchestration import postgres, runtime, tenants
    from orchestration.settings import load_settings

    settings = load_settings()
    env = runtime.prepare(settings)
    runtime.export(env)
    admin = postgres.admin_url(settings)
    with postgres.connect(admin, autocommit=True) as conn:
        tenants.seed(conn, tenants.load_seed(settings.tenants_file))
        conn.execute(
            """INSERT INTO core.tenants (tenant_id, display_name, kind, parent_tenant_id, tier, domains)
               VALUES (%s, 'Bench knowledge graph', 'client', 'bizoholic', 'starter', '{crm}')
               ON CONFLICT (tenant_id) DO UPDATE SET status = 'active'""",
            (BENCH_TENANT,),
        )
    return env, admin


def _seed(admin: str, per_type: int, rng: np.random.Generator) -> dict[str, list[str]]:
    """The bench tenant's domain rows (replaced), and each entity's category for its vector."""
    from orchestration import postgres

    subcats = [f"subcategory_{i}" for i in range(40)]
    cities = [(f"City {i}", f"S{i % 50}") for i in range(200)]
    genres, platforms = [f"Genre {i}" for i in range(20)], [f"Platform {i}" for i in range(15)]
    categories, kinds = [f"Category {i}" for i in range(30)], [f"Type {i}" for i in range(50)]
    sources, channels = [f"source_{i}" for i in range(8)], [f"channel_{i}" for i in range(6)]
    groups: dict[str, list[str]] = {t: [] for t in ("business", "game", "product", "lead", "campaign")}
    tables = ["core.businesses_master", "core.gaming_catalogue", "core.ecommerce_products", "core.crm_leads",
              "core.crm_campaigns"]  # fmt: skip
    with postgres.connect(admin, autocommit=True) as conn, conn.transaction():
        for table in tables:
            conn.execute(f"DELETE FROM {table} WHERE tenant_id = %s", (BENCH_TENANT,))
        with conn.cursor().copy(
            "COPY core.businesses_master (tenant_id, business_id, name, name_key, category, subcategory, "
            "lat, lon, city, state, osm_refs, sources, searches, attribution, status, content_hash, "
            "first_seen, last_seen, changed_at) FROM STDIN"
        ) as copy:
            for i in range(per_type):
                sub, (city, state) = subcats[rng.integers(40)], cities[rng.integers(200)]
                groups["business"].append(sub)
                copy.write_row((BENCH_TENANT, f"osm:n{i}", f"Business {i}", f"business {i}", "amenity", sub,
                                30.0, -97.0, city, state, [], ["osm"], [], "OSM", "active", "h", NOW, NOW,
                                NOW))  # fmt: skip
        with conn.cursor().copy(
            "COPY core.gaming_catalogue (tenant_id, igdb_id, popularity_rank, name, name_key, release_date, "
            "genres, platforms, steam_status, opencritic_status, igdb_fetched_at, content_hash, first_seen, "
            "changed_at, answers_run_id) FROM STDIN"
        ) as copy:
            for i in range(per_type):
                g = [genres[j] for j in rng.choice(20, size=2, replace=False)]
                p = [platforms[j] for j in rng.choice(15, size=3, replace=False)]
                groups["game"].append(g[0])
                copy.write_row((BENCH_TENANT, i + 1, i + 1, f"Game {i}", f"game {i}", date(2020, 1, 1), g, p,
                                "not_on_steam", "not_searched", NOW, "h", NOW, NOW, "bench"))  # fmt: skip
        with conn.cursor().copy(
            "COPY core.ecommerce_products (tenant_id, product_id, name, slug, category, product_type, "
            "variant_count, variants_in_stock, in_stock, created_at, updated_at, fetched_at) FROM STDIN"
        ) as copy:
            for i in range(per_type):
                category = categories[rng.integers(30)]
                groups["product"].append(category)
                copy.write_row((BENCH_TENANT, f"P{i}", f"Product {i}", f"product-{i}", category,
                                kinds[rng.integers(50)], 1, 1, True, NOW, NOW, NOW))  # fmt: skip
        with conn.cursor().copy(
            "COPY core.crm_campaigns (tenant_id, campaign_id, name, channel, segment) FROM STDIN"
        ) as copy:
            for i in range(per_type):
                channel = channels[rng.integers(6)]
                groups["campaign"].append(channel)
                copy.write_row((BENCH_TENANT, f"c{i}", f"Campaign {i}", channel, "SMB"))
        with conn.cursor().copy(
            "COPY core.crm_leads (tenant_id, lead_id, email, email_key, company_name, source, campaign_id, "
            "status, created_at, updated_at) FROM STDIN"
        ) as copy:
            for i in range(per_type):
                source = sources[rng.integers(8)]
                groups["lead"].append(source)
                copy.write_row((BENCH_TENANT, f"l{i}", f"l{i}@x.test", f"l{i}@x.test", f"Company {i % 997}",
                                source, f"c{rng.integers(per_type)}", "open", NOW, NOW))  # fmt: skip
    return groups


def _vectors(warehouse, groups: dict[str, list[str]], rng: np.random.Generator) -> None:
    from ml.knowledge.embedders import MINILM, unit_rows
    from orchestration.knowledge_entities import load_entities
    from orchestration.vector_store import ensure_space, index_space, mark_ready, upsert_vectors

    with warehouse.tenant_transaction(BENCH_TENANT) as conn:
        entities = load_entities(conn, BENCH_TENANT)
        ensure_space(conn, MINILM, DIM)
        conn.execute("DELETE FROM core.embeddings WHERE tenant_id = %s", (BENCH_TENANT,))
    names = sorted({name for values in groups.values() for name in values})
    centroids = dict(zip(names, unit_rows(rng.normal(size=(len(names), DIM))), strict=True))
    # load_entities orders ids as text, the seed wrote them in numeric order: match each entity to
    # its group by the number in its id.
    index = {t: list(values) for t, values in groups.items()}
    rows = []
    for entity in entities:
        digits = int("".join(ch for ch in entity.entity_id if ch.isdigit()))
        position = digits - 1 if entity.entity_type == "game" else digits
        centre = centroids[index[entity.entity_type][position]]
        vector = unit_rows((centre + 0.6 * rng.normal(size=DIM) / np.sqrt(DIM))[None, :])[0]
        rows.append((entity.entity_type, entity.entity_id, entity.content_hash, entity.text, vector))
    with warehouse.tenant_transaction(BENCH_TENANT) as conn:
        upsert_vectors(conn, BENCH_TENANT, MINILM, DIM, rows)
    with warehouse.tenant_transaction(BENCH_TENANT) as conn:
        index_space(conn, MINILM)
        mark_ready(conn, BENCH_TENANT, MINILM)


def one_build(warehouse) -> dict[str, float]:
    """One build of the knowledge_graph asset's own steps (`rebuild_graph`), each timed."""
    from assets.knowledge_graph import rebuild_graph
    from ml.knowledge.embedders import MINILM
    from orchestration.knowledge_settings import KnowledgeSettings

    built = rebuild_graph(warehouse, BENCH_TENANT, KnowledgeSettings(), MINILM, "bench")
    names = {"load": "load_entities_and_vectors", "neighbours": "similar_to_neighbours", "build": "build",
             "write": "write_postgres"}  # fmt: skip
    timings = {names[step]: s for step, s in built.seconds.items()}
    timings["total"] = sum(timings.values())
    timings["entities"] = len(built.entities)
    timings["nodes"] = len(built.graph.nodes)
    timings["edges"] = len(built.graph.edges)
    timings["similar_to_edges"] = built.graph.edges_by_type().get("SIMILAR_TO", 0)
    timings["rows_written"] = len(built.written.upsert_nodes) + len(built.written.upsert_edges)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="20k entities instead of 100k")
    parser.add_argument("--runs", type=int, default=None, help="builds to take the median of (3; 2 quick)")
    args = parser.parse_args()
    total = 20_000 if args.quick else 100_000
    runs = args.runs or (2 if args.quick else 3)
    started = time.perf_counter()
    env, admin = _prepare()
    from orchestration import postgres
    from orchestration.warehouse import WarehouseResource

    warehouse = WarehouseResource(database_url=env["BIZOSAAS_WRITER_URL"])
    rng = np.random.default_rng(20261125)
    seeded = time.perf_counter()
    groups = _seed(admin, total // 5, rng)
    _vectors(warehouse, groups, rng)
    setup_s = time.perf_counter() - seeded
    builds, rebuilds = [], []
    for i in range(runs):
        # A first build (the tenant's graph emptied), then a rebuild from unchanged tables, which
        # writes no row.
        with postgres.connect(admin, autocommit=True) as conn:
            conn.execute("DELETE FROM core.kg_edges WHERE tenant_id = %s", (BENCH_TENANT,))
            conn.execute("DELETE FROM core.kg_nodes WHERE tenant_id = %s", (BENCH_TENANT,))
        builds.append(one_build(warehouse))
        rebuilds.append(one_build(warehouse))
        print(json.dumps({"run": i + 1, **{k: round(v, 3) for k, v in builds[-1].items()}}), flush=True)
        print(json.dumps({"rebuild": i + 1, **{k: round(v, 3) for k, v in rebuilds[-1].items()}}), flush=True)
    entities = builds[0]["entities"]
    steps = ["load_entities_and_vectors", "similar_to_neighbours", "build", "write_postgres", "total"]
    median = {s: round(statistics.median(b[s] for b in builds), 3) for s in steps}
    median_rebuild = {s: round(statistics.median(b[s] for b in rebuilds), 3) for s in steps}
    report = {
        "cores": os.cpu_count(),
        "quick": args.quick,
        "entities": entities,
        "nodes": builds[0]["nodes"],
        "edges": builds[0]["edges"],
        "similar_to_edges": builds[0]["similar_to_edges"],
        "runs": runs,
        "setup_s": round(setup_s, 1),
        "median_s": median,
        "median_per_100k_s": {s: round(v * 100_000 / entities, 2) for s, v in median.items()},
        # A rebuild from unchanged tables: the same steps, and no row written.
        "rebuild_median_s": median_rebuild,
        "rebuild_rows_written": max(b["rows_written"] for b in rebuilds),
        "seconds": round(time.perf_counter() - started, 1),
    }
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / "knowledge_graph.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")
    print(f"\n{entities} entities -> {report['nodes']} nodes, {report['edges']} edges "
          f"({report['similar_to_edges']} SIMILAR_TO); median of {runs}")  # fmt: skip
    print("\n| step | first build s | per 100k entities | no-change rebuild s |\n|---|---|---|---|")
    for s in steps:
        print(f"| {s} | {median[s]} | {report['median_per_100k_s'][s]} | {median_rebuild[s]} |")


if __name__ == "__main__":
    main()
