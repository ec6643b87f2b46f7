"""pgvector benchmarks of the knowledge layer's vector store (issue 7), on the bench data folder
(`.data/bench`; only the migrations and the tenant registry, no materialization).

    make bench-knowledge-vectors    (or: python -m bench.knowledge_vectors [--quick] [--repeat 3])

Vectors: 384-d synthetic unit vectors with a stated structure instead of MiniLM embeddings
(embedding 100k entity texts would take ~7 min here): 1,000 cluster centres drawn uniformly on
the sphere, cluster sizes Zipf-like (weight 1/rank^0.8), each vector its centre plus isotropic
Gaussian noise of norm ~0.8, normalised (cosine to its centre ~0.78, to a cluster mate ~0.6, to
anything else ~0, like MiniLM's near/far pairs). In-distribution queries are fresh draws from the
same clusters; out-of-distribution ones are uniform random unit vectors (far from everything,
the hard case for a graph index).

1. Search at N vectors (100k; 10k with --quick) in one tenant's space: recall@10 against the
   exact answer (numpy brute force) and p50/p95 latency through vector_store.nearest (the
   platform's SQL, default ef_search) and the same SQL at higher ef_search values, beside the
   exact scan (nearest_query(exact=True), the baseline). Each query in its own transaction
   with the tenant set, as the API runs it; per-run percentiles, medians over --repeat runs.
2. The HNSW build (core.index_embedding_space) of that leaf: seconds and bytes, per 100k vectors;
   and the load path at 5k vectors (2k with --quick): COPY then build, against building on the
   empty leaf and inserting into it.
3. The 1% tenant: a second tenant with N/100 vectors beside the first: k returned, recall and
   latency for it, against the single-index layout (every vector in one table under one HNSW
   index, filtered by tenant after the scan), built in a throwaway schema as the admin role.

Results go to bench/results/knowledge_vectors.json (knowledge_vectors.quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import psycopg

from bench.api import ROOT
from ml.knowledge.embedders import unit_rows

BIG, SMALL, LOAD = "bench_vec", "bench_vec_small", "bench_vec_load"
MODEL, DIM = "synthetic-384", 384
CLUSTERS, NOISE = 1_000, 0.8
K = 10
EF_VALUES = (100, 200)


class Generator:
    def __init__(self, seed: int = 20260701):
        self.rng = np.random.default_rng(seed)
        self.centres = unit_rows(self.rng.standard_normal((CLUSTERS, DIM)))
        weights = 1 / np.arange(1, CLUSTERS + 1) ** 0.8
        self.weights = weights / weights.sum()

    def clustered(self, n: int) -> np.ndarray:
        picks = self.rng.choice(CLUSTERS, size=n, p=self.weights)
        noise = NOISE * self.rng.standard_normal((n, DIM)) / np.sqrt(DIM)
        return unit_rows(self.centres[picks] + noise)

    def uniform(self, n: int) -> np.ndarray:
        return unit_rows(self.rng.standard_normal((n, DIM)))


def exact_ids(vectors: np.ndarray, queries: np.ndarray, k: int) -> list[set[int]]:
    sims = queries @ vectors.T
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    return [set(row.tolist()) for row in top]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def prepare() -> tuple[str, str]:
    os.environ.setdefault("BIZOSAAS_DATA_DIR", str(ROOT / ".data" / "bench"))
    from orchestration import migrate, postgres, tenants
    from orchestration.settings import load_settings

    settings = load_settings()
    urls = migrate.bootstrap(settings)
    with postgres.connect(urls.admin, autocommit=True) as conn:
        tenants.seed(conn, tenants.load_seed(settings.tenants_file))
        for tenant in (BIG, SMALL, LOAD):
            conn.execute(
                """INSERT INTO core.tenants (tenant_id, display_name, kind, parent_tenant_id, tier, domains)
                   VALUES (%s, 'Vector bench', 'client', 'bizoholic', 'starter', '{}')
                   ON CONFLICT (tenant_id) DO NOTHING""",
                (tenant,),
            )
            reset(conn, tenant)
    return urls.admin, urls.writer


def reset(admin: psycopg.Connection, tenant: str) -> None:
    from orchestration.vector_store import drop_tenant_spaces

    drop_tenant_spaces(admin, tenant)


def in_tenant(conn: psycopg.Connection, tenant: str):
    from orchestration.warehouse import set_tenant

    class _Tx:
        def __enter__(self):
            self.tx = conn.transaction()
            self.tx.__enter__()
            set_tenant(conn, tenant)
            return conn

        def __exit__(self, *exc):
            return self.tx.__exit__(*exc)

    return _Tx()


def rows_of(vectors: np.ndarray, start: int = 0):
    return (("item", str(start + i), "h", f"synthetic {start + i}", v) for i, v in enumerate(vectors))


def load(conn, tenant: str, model: str, vectors: np.ndarray, *, index_first: bool = False) -> dict:
    """ensure_space, then COPY + build (the platform's path) or build + insert; seconds each."""
    from orchestration import vector_store as vs

    timings = {}
    with in_tenant(conn, tenant):
        vs.ensure_space(conn, model, DIM)
    steps = [("index_s", lambda: vs.index_space(conn, model))]
    write = ("write_s", lambda: vs.upsert_vectors(conn, tenant, model, DIM, rows_of(vectors)))
    steps = [*steps, write] if index_first else [write, *steps]
    for name, step in steps:
        started = time.perf_counter()
        with in_tenant(conn, tenant):
            step()
        timings[name] = time.perf_counter() - started
    with in_tenant(conn, tenant):
        vs.analyze_space(conn, model)
    return timings


def space_of(conn, tenant: str, model: str = MODEL):
    from orchestration import vector_store as vs

    with in_tenant(conn, tenant):
        return next(s for s in vs.spaces(conn, tenant) if s.model == model)


def index_size(admin: psycopg.Connection, leaf: str) -> int:
    return admin.execute("SELECT pg_relation_size(%s::regclass)", (f"{leaf}_hnsw",)).fetchone()[0]


def timed_searches(conn, tenant, space, queries, *, k=K, ef=None, exact=False):
    """(seconds per query, returned entity ids per query). ef None and not exact: the
    platform's own call, vector_store.nearest."""
    from orchestration import vector_store as vs

    seconds, found = [], []
    sql, params = vs.nearest_query(space, k, None, exact=exact)
    for query in queries:
        with in_tenant(conn, tenant):
            started = time.perf_counter()
            if ef is None and not exact:
                result = vs.nearest(conn, tenant, space, query, k)
            else:
                conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef or 40),))
                result = vs.rank_neighbours(conn.execute(sql, params(tenant, query)))
            seconds.append(time.perf_counter() - started)
        found.append([int(n.entity_id) for n in result])
    return seconds, found


def measure(conn, tenant, space, queries, truth, repeat, **how) -> dict:
    runs, found = [], None
    timed_searches(conn, tenant, space, queries[: min(20, len(queries))], **how)  # warm cache and plans
    for _ in range(repeat):
        seconds, found = timed_searches(conn, tenant, space, queries, **how)
        runs.append((percentile(seconds, 50) * 1000, percentile(seconds, 95) * 1000))
    k = how.get("k", K)
    recall = statistics.mean(len(set(f) & t) / k for f, t in zip(found, truth, strict=True))
    return {
        "p50_ms": round(statistics.median(r[0] for r in runs), 2),
        "p95_ms": round(statistics.median(r[1] for r in runs), 2),
        f"recall_at_{k}": round(recall, 4),
        "returned_min": min(len(f) for f in found),
        "runs": [[round(a, 2), round(b, 2)] for a, b in runs],
    }


def bench_search(conn, space, vectors, queries, repeat) -> dict:
    from orchestration.vector_store import ef_search_for

    out = {}
    for label, qs in queries.items():
        truth = exact_ids(vectors, qs, K)
        configs = {f"hnsw_ef{ef_search_for(K)}_nearest": {}}
        configs.update({f"hnsw_ef{ef}": {"ef": ef} for ef in EF_VALUES})
        configs["exact_scan"] = {"exact": True}
        out[label] = {}
        for name, how in configs.items():
            out[label][name] = measure(conn, BIG, space, qs, truth, repeat, **how)
            print(label, name, json.dumps(out[label][name]), flush=True)
    return out


def bench_build(admin, conn, leaf, n, repeat) -> dict:
    from orchestration import vector_store as vs

    seconds = []
    for run in range(repeat):
        if run:
            admin.execute(f"DROP INDEX {leaf}_hnsw")
        started = time.perf_counter()
        with in_tenant(conn, BIG):
            assert vs.index_space(conn, MODEL)
        seconds.append(time.perf_counter() - started)
    size = index_size(admin, leaf)
    return {
        "vectors": n,
        "build_s": round(statistics.median(seconds), 2),
        "build_s_runs": [round(s, 2) for s in seconds],
        "build_s_per_100k": round(statistics.median(seconds) * 100_000 / n, 1),
        "index_mb": round(size / 2**20, 1),
        "index_mb_per_100k": round(size / 2**20 * 100_000 / n, 1),
        "bytes_per_vector": round(size / n),
        "heap_mb": round(
            admin.execute("SELECT pg_relation_size(%s::regclass)", (leaf,)).fetchone()[0] / 2**20, 1
        ),
    }


def bench_load_path(admin, conn, gen, n, repeat) -> dict:
    vectors = gen.clustered(n)
    result = {}
    for label, index_first in (("copy_then_build", False), ("build_then_insert", True)):
        totals = []
        for _ in range(repeat):
            reset(admin, LOAD)
            timings = load(conn, LOAD, MODEL, vectors, index_first=index_first)
            totals.append(timings["write_s"] + timings["index_s"])
        result[label] = {
            "total_s": round(statistics.median(totals), 2),
            "runs": [round(t, 2) for t in totals],
        }
        print("load path", label, json.dumps(result[label]), flush=True)
    reset(admin, LOAD)
    result["vectors"] = n
    result["ratio"] = round(result["build_then_insert"]["total_s"] / result["copy_then_build"]["total_s"], 1)
    return result


def bench_small_tenant(admin, conn, gen, big_vectors, queries, repeat) -> dict:
    from orchestration.vector_store import ef_search_for

    n_small = max(100, len(big_vectors) // 100)
    small_vectors = gen.clustered(n_small)
    load(conn, SMALL, MODEL, small_vectors)
    space = space_of(conn, SMALL)
    result = {"vectors": n_small, "share": round(n_small / (n_small + len(big_vectors)), 4)}
    for k in (K, 50):
        truth = exact_ids(small_vectors, queries, k)
        result[f"partitioned_k{k}"] = measure(conn, SMALL, space, queries, truth, repeat, k=k)
        print("small tenant", k, json.dumps(result[f"partitioned_k{k}"]), flush=True)

    # The single-index layout, for comparison: one table, one HNSW index, tenant filtered after.
    admin.execute("DROP SCHEMA IF EXISTS bench_naive CASCADE")
    admin.execute("CREATE SCHEMA bench_naive")
    admin.execute(f"CREATE TABLE bench_naive.vectors (tenant_id text, id int, embedding vector({DIM}))")
    with admin.cursor().copy("COPY bench_naive.vectors FROM STDIN") as copy:
        for tenant, vectors in ((BIG, big_vectors), (SMALL, small_vectors)):
            for i, v in enumerate(vectors):
                copy.write_row((tenant, i, "[" + ",".join(f"{x:.7g}" for x in v) + "]"))
    started = time.perf_counter()
    admin.execute("SET maintenance_work_mem = '1GB'")
    admin.execute(
        "CREATE INDEX bench_naive_hnsw ON bench_naive.vectors USING hnsw (embedding vector_cosine_ops)"
    )
    admin.execute("ANALYZE bench_naive.vectors")
    naive_build = time.perf_counter() - started
    sql = (
        "SELECT id FROM bench_naive.vectors WHERE tenant_id = %s "
        f"ORDER BY embedding <=> %s::vector({DIM}) LIMIT {K}"
    )
    naive = {"build_s": round(naive_build, 2)}
    for label, force_index in (("planner_choice", False), ("hnsw_scan", True)):
        counts, seconds = [], []
        for query in queries:
            literal = "[" + ",".join(f"{x:.7g}" for x in query) + "]"
            with admin.transaction():
                admin.execute(f"SET LOCAL hnsw.ef_search = {ef_search_for(K)}")
                if force_index:
                    admin.execute("SET LOCAL enable_seqscan = off")
                plan = [r[0] for r in admin.execute("EXPLAIN " + sql, (SMALL, literal))]
                started = time.perf_counter()
                counts.append(len(admin.execute(sql, (SMALL, literal)).fetchall()))
                seconds.append(time.perf_counter() - started)
        naive[label] = {
            "plan": next(line.strip().removeprefix("->").strip().split("  ")[0] for line in plan[1:]),
            "returned_mean": round(statistics.mean(counts), 2),
            "returned_max": max(counts),
            "queries_with_k": sum(c == K for c in counts),
            "p50_ms": round(percentile(seconds, 50) * 1000, 2),
        }
        print("single index", label, json.dumps(naive[label]), flush=True)
    admin.execute("DROP SCHEMA bench_naive CASCADE")
    result["single_index_layout"] = naive
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k vectors instead of 100k")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (medians)")
    parser.add_argument("--queries", type=int, default=None, help="queries per set (200; 100 quick)")
    args = parser.parse_args()
    n = 10_000 if args.quick else 100_000
    n_load = 2_000 if args.quick else 5_000
    n_queries = args.queries or (100 if args.quick else 200)

    admin_url, writer_url = prepare()
    gen = Generator()
    vectors = gen.clustered(n)
    queries = {"in_distribution": gen.clustered(n_queries), "out_of_distribution": gen.uniform(n_queries)}
    report: dict = {
        "cores": os.cpu_count(),
        "quick": args.quick,
        "repeat": args.repeat,
        "vectors": n,
        "dim": DIM,
        "queries_per_set": n_queries,
        "k": K,
        "data": f"synthetic: {CLUSTERS} clusters (Zipf 0.8 sizes), noise {NOISE}, unit vectors",
        # The cores are shared: the load says how quiet the machine was.
        "loadavg_start": round(os.getloadavg()[0], 2),
    }
    with psycopg.connect(admin_url, autocommit=True) as admin, psycopg.connect(writer_url) as conn:
        report["pgvector"] = admin.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()[0]
        started = time.perf_counter()
        with in_tenant(conn, BIG):
            from orchestration.vector_store import ensure_space, upsert_vectors

            leaf = ensure_space(conn, MODEL, DIM)
        with in_tenant(conn, BIG):
            upsert_vectors(conn, BIG, MODEL, DIM, rows_of(vectors))
        report["copy_s"] = round(time.perf_counter() - started, 2)
        report["build"] = bench_build(admin, conn, leaf, n, args.repeat)
        print("build", json.dumps(report["build"]), flush=True)
        space = space_of(conn, BIG)
        report["search"] = bench_search(conn, space, vectors, queries, args.repeat)
        report["small_tenant"] = bench_small_tenant(
            admin, conn, gen, vectors, queries["in_distribution"], args.repeat
        )
        report["load_path"] = bench_load_path(admin, conn, gen, n_load, args.repeat)
        for tenant in (BIG, SMALL, LOAD):
            reset(admin, tenant)

    report["loadavg_end"] = round(os.getloadavg()[0], 2)
    out = (
        ROOT
        / "bench"
        / "results"
        / ("knowledge_vectors.quick.json" if args.quick else "knowledge_vectors.json")
    )
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
