"""The vector store's guarantees, as the pipelines' writer and the API's serving role see them:
per-tenant search exact in count (the reason for one leaf per tenant and model), isolation, the
space functions' refusals and their concurrency, and the plans the leaf layout gets.

Synthetic vectors (unit vectors around shared cluster centres, so the tenants' vectors mix)
where only geometry matters; real MiniLM vectors where meaning does."""

import threading
import time

import numpy as np
import psycopg
import pytest

from ml.knowledge.embedders import unit_rows
from orchestration import tenants
from orchestration.vector_store import (
    analyze_space,
    drop_tenant_spaces,
    ef_search_for,
    ensure_space,
    index_space,
    nearest,
    nearest_query,
    rank_neighbours,
    spaces,
    upsert_vectors,
)
from orchestration.warehouse import set_tenant

BIG, SMALL = "vs_big", "vs_small"  # 9,900 and 100 vectors: SMALL holds 1%
MODEL, DIM = "synthetic-32", 32
RARE = 100  # of BIG's vectors are of type "rare" (1%): rarer ones the planner serves from the type index


def clustered(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    picks = rng.integers(len(centres), size=n)
    noise = rng.standard_normal((n, centres.shape[1])) / np.sqrt(centres.shape[1])
    return unit_rows(centres[picks] + 0.6 * noise)


def exact(vectors: np.ndarray, ids: list[str], query: np.ndarray, k: int) -> list[tuple[str, float]]:
    """Brute force: (id, cosine similarity) of the k nearest, nearest first."""
    sims = vectors.astype(np.float64) @ query.astype(np.float64) / np.linalg.norm(query)
    order = np.argsort(-sims, kind="stable")[:k]
    return [(ids[i], float(sims[i])) for i in order]


def transaction(conn: psycopg.Connection, tenant: str | None):
    tx = conn.transaction()

    class _Tx:
        def __enter__(self):
            tx.__enter__()
            if tenant is not None:
                set_tenant(conn, tenant)
            return conn

        def __exit__(self, *exc):
            return tx.__exit__(*exc)

    return _Tx()


def load(conn, tenant, model, dim, rows, index=True):
    with transaction(conn, tenant):
        leaf = ensure_space(conn, model, dim)
    with transaction(conn, tenant):
        upsert_vectors(conn, tenant, model, dim, rows)
    if index:
        with transaction(conn, tenant):
            index_space(conn, model)
    return leaf


def space_of(conn, tenant, model):
    with transaction(conn, tenant):
        return next(s for s in spaces(conn, tenant) if s.model == model)


@pytest.fixture(scope="module")
def layout(platform):
    """BIG and SMALL in their own indexed, analyzed leaves of MODEL, with the vectors kept for
    brute-force answers."""
    rng = np.random.default_rng(20260701)
    centres = unit_rows(rng.standard_normal((40, DIM)))
    with platform.admin() as admin:
        for tenant in (BIG, SMALL):
            admin.execute(
                """INSERT INTO core.tenants (tenant_id, display_name, kind, parent_tenant_id, tier, domains)
                   VALUES (%s, 'Vector store probe', 'client', 'bizoholic', 'starter', '{}')
                   ON CONFLICT (tenant_id) DO NOTHING""",
                (tenant,),
            )
    data = {}
    with psycopg.connect(platform.writer_url) as conn:
        for tenant, n in ((BIG, 9_900), (SMALL, 100)):
            vectors = clustered(rng, centres, n)
            ids = [f"{tenant}-{i}" for i in range(n)]
            types = ["rare" if tenant == BIG and i < RARE else "common" for i in range(n)]
            rows = [(t, i, "h", f"text {i}", v) for t, i, v in zip(types, ids, vectors, strict=True)]
            leaf = load(conn, tenant, MODEL, DIM, rows)
            data[tenant] = {"vectors": vectors, "ids": ids, "types": types, "leaf": leaf}
            data[tenant]["space"] = space_of(conn, tenant, MODEL)
    data["queries"] = clustered(rng, centres, 5)
    data["centres"] = centres
    yield data
    with platform.admin() as admin:
        for tenant in (BIG, SMALL):
            drop_tenant_spaces(admin, tenant)
            tenants.offboard(admin, tenant)


def search(platform, tenant, space, query, k, types=None, role_url=None):
    with psycopg.connect(role_url or platform.writer_url) as conn, transaction(conn, tenant):
        return nearest(conn, tenant, space, query, k, types)


@pytest.mark.parametrize("k", [10, 50])
def test_a_tenant_holding_one_percent_of_the_vectors_gets_exactly_its_k_nearest(platform, layout, k):
    small = layout[SMALL]
    for query in layout["queries"]:
        found = search(platform, SMALL, small["space"], query, k, role_url=platform.serving_url)
        truth = exact(small["vectors"], small["ids"], query, k)
        assert len(found) == k
        assert [n.entity_id for n in found] == [i for i, _ in truth]
        assert np.allclose([n.similarity for n in found], [s for _, s in truth], atol=1e-5)


def test_one_index_over_every_tenant_would_return_fewer_than_k(platform, layout):
    """Why the layout exists: the same 10,000 vectors under one HNSW index, filtered by tenant
    after the scan (pgvector 0.6.2 has no iterative scans), leave SMALL a fraction of its 10."""
    with platform.admin() as admin:
        admin.execute("DROP SCHEMA IF EXISTS vs_naive CASCADE")
        admin.execute("CREATE SCHEMA vs_naive")
        admin.execute(f"CREATE TABLE vs_naive.vectors (tenant_id text, id text, embedding vector({DIM}))")
        with admin.cursor().copy("COPY vs_naive.vectors FROM STDIN") as copy:
            for tenant in (BIG, SMALL):
                for entity_id, vector in zip(layout[tenant]["ids"], layout[tenant]["vectors"], strict=True):
                    copy.write_row((tenant, entity_id, "[" + ",".join(map(str, vector)) + "]"))
        admin.execute(
            "CREATE INDEX vs_naive_hnsw ON vs_naive.vectors USING hnsw (embedding vector_cosine_ops)"
        )
        admin.execute("ANALYZE vs_naive.vectors")
        try:
            counts = []
            for query in layout["queries"]:
                with admin.transaction():
                    admin.execute("SET LOCAL hnsw.ef_search = 40")  # pgvector's default
                    sql = (
                        "SELECT id FROM vs_naive.vectors WHERE tenant_id = %s "
                        f"ORDER BY embedding <=> %s::vector({DIM}) LIMIT 10"
                    )
                    literal = "[" + ",".join(map(str, query)) + "]"
                    plan = "\n".join(r[0] for r in admin.execute("EXPLAIN " + sql, (SMALL, literal)))
                    assert "Index Scan using vs_naive_hnsw" in plan
                    counts.append(len(admin.execute(sql, (SMALL, literal)).fetchall()))
        finally:
            admin.execute("DROP SCHEMA vs_naive CASCADE")
    assert max(counts) < 10, counts
    assert sum(counts) < 10, counts  # ~1% of 40 candidates per query


def test_a_type_rare_within_the_tenant_still_gets_k(platform, layout):
    big = layout[BIG]
    rare = [i for i, t in enumerate(big["types"]) if t == "rare"]
    for query in layout["queries"]:
        with psycopg.connect(platform.writer_url) as conn, transaction(conn, BIG):
            conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef_search_for(10)),))
            sql, params = nearest_query(big["space"], 10, ["rare"])
            first_pass = rank_neighbours(conn.execute(sql, params(BIG, query)))
            found = nearest(conn, BIG, big["space"], query, 10, ["rare"])
        assert len(first_pass) < 10  # the HNSW scan alone falls short: the fallback is exercised
        truth = exact(big["vectors"][rare], [big["ids"][i] for i in rare], query, 10)
        assert [n.entity_id for n in found] == [i for i, _ in truth]
        assert all(n.entity_type == "rare" for n in found)


def test_rows_re_embedded_but_not_yet_vacuumed_do_not_cost_results(platform, layout):
    """Every update leaves a dead version in the HNSW graph until vacuum; those take candidate
    slots, so one scan can fall short even without a type filter."""
    rng = np.random.default_rng(7)
    small = layout[SMALL]
    tenant = SMALL
    with platform.admin() as admin:  # vacuum would clear the dead versions the test is about
        admin.execute(f"ALTER TABLE {small['leaf']} SET (autovacuum_enabled = false)")
    with psycopg.connect(platform.writer_url) as conn:
        for _ in range(3):
            moved = unit_rows(small["vectors"] + 1e-3 * rng.standard_normal(small["vectors"].shape))
            rows = [("common", i, "h2", "t", v) for i, v in zip(small["ids"], moved, strict=True)]
            with transaction(conn, tenant):
                upsert_vectors(conn, tenant, MODEL, DIM, rows)
        # Restore the fixture's vectors (the other tests' brute-force answers use them).
        rows = [("common", i, "h", "t", v) for i, v in zip(small["ids"], small["vectors"], strict=True)]
        with transaction(conn, tenant):
            upsert_vectors(conn, tenant, MODEL, DIM, rows)
        query = layout["queries"][0]
        with transaction(conn, tenant):
            conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef_search_for(50)),))
            sql, params = nearest_query(small["space"], 50, None)
            first_pass = rank_neighbours(conn.execute(sql, params(tenant, query)))
            found = nearest(conn, tenant, small["space"], query, 50)
    with platform.admin() as admin:
        admin.execute(f"ALTER TABLE {small['leaf']} RESET (autovacuum_enabled)")
    assert len(first_pass) < 50
    assert [n.entity_id for n in found] == [i for i, _ in exact(small["vectors"], small["ids"], query, 50)]


def test_a_tenant_never_sees_another_tenants_vectors_even_identical_ones(platform, layout, embedder):
    query_text = "Family-run Italian pizzeria with a wood-fired oven in Berlin Mitte"
    mine = [
        "Neapolitan pizza restaurant with a stone oven in Berlin Kreuzberg",
        "Vegan bakery selling sourdough bread in Hamburg",
        "Bicycle repair shop open on Sundays in Munich",
    ]
    theirs = [query_text, "Italian pizzeria with wood-fired oven, Berlin Mitte, family run"]
    model, dim = embedder.model, embedder.dim
    with psycopg.connect(platform.writer_url) as conn:
        for tenant, texts in ((SMALL, mine), (BIG, theirs)):
            rows = [
                ("business", f"{tenant}-b{i}", "h", text, vector)
                for i, (text, vector) in enumerate(zip(texts, embedder.embed(texts), strict=True))
            ]
            load(conn, tenant, model, dim, rows)
        space_a, space_b = space_of(conn, SMALL, model), space_of(conn, BIG, model)
    query = embedder.embed([query_text])[0]

    found = search(platform, SMALL, space_a, query, 10, role_url=platform.serving_url)
    assert [n.entity_id for n in found][:1] == [f"{SMALL}-b0"]  # the pizzeria, by meaning
    assert {n.entity_id for n in found} == {f"{SMALL}-b{i}" for i in range(len(mine))}
    # B's space holds the query's own vector (similarity 1), and RLS still hides it from A,
    # whichever tenant a buggy caller names.
    assert search(platform, BIG, space_b, query, 1)[0].similarity > 0.999
    with psycopg.connect(platform.serving_url) as conn, transaction(conn, SMALL):
        assert nearest(conn, BIG, space_b, query, 10) == []

    leaf_b = layout[BIG]["leaf"]
    with (
        psycopg.connect(platform.serving_url) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        transaction(conn, SMALL),
    ):
        conn.execute(f"SELECT count(*) FROM {leaf_b}")
    with psycopg.connect(platform.writer_url) as conn, transaction(conn, SMALL):
        assert conn.execute(f"SELECT count(*) FROM {leaf_b}").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("tenant", "model", "dim", "message"),
    [
        (None, "m-ok", 8, "no known tenant"),
        ("vs_nobody", "m-ok", 8, "no known tenant"),
        (SMALL, "bad model; drop table core.embeddings", 8, "invalid model name"),
        (SMALL, "", 8, "invalid model name"),
        (SMALL, "-leading-dash", 8, "invalid model name"),
        (SMALL, "m-ok", 0, "outside 1..2000"),
        (SMALL, "m-ok", 2001, "outside 1..2000"),
        (SMALL, MODEL, DIM * 2, f"has dimension {DIM}"),
    ],
)
def test_ensure_space_refuses(platform, layout, tenant, model, dim, message):
    with psycopg.connect(platform.writer_url) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match=message), transaction(conn, tenant):
            ensure_space(conn, model, dim)
        with transaction(conn, SMALL):
            assert [s.dim for s in spaces(conn, SMALL) if s.model == MODEL] == [DIM]
            assert "m-ok" not in {s.model for s in spaces(conn, SMALL)}


def test_the_serving_role_cannot_create_spaces(platform, layout):
    with (
        psycopg.connect(platform.serving_url) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        transaction(conn, SMALL),
    ):
        ensure_space(conn, "m-serving", 8)


def test_concurrent_ensure_space_calls_for_one_tenant_both_succeed(platform, layout):
    model, results = "concurrent-8", {}
    with psycopg.connect(platform.writer_url) as first, psycopg.connect(platform.writer_url) as second:
        second_pid = second.info.backend_pid

        def create_second():
            with transaction(second, SMALL):
                results["second"] = ensure_space(second, model, 8)

        with transaction(first, SMALL):
            results["first"] = ensure_space(first, model, 8)
            thread = threading.Thread(target=create_second)
            thread.start()
            # Hold the first transaction open until the second is seen waiting on it.
            with platform.admin() as admin:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    waiting = admin.execute(
                        "SELECT wait_event FROM pg_stat_activity WHERE pid = %s", (second_pid,)
                    ).fetchone()
                    if waiting and waiting[0] == "advisory":
                        break
                    time.sleep(0.01)
                assert waiting and waiting[0] == "advisory"
        thread.join(10)
    assert results["first"] == results["second"]
    with psycopg.connect(platform.writer_url) as conn, transaction(conn, SMALL):
        assert [s.leaf_table for s in spaces(conn, SMALL) if s.model == model] == [results["first"]]


def scans(platform, tenant, space) -> list[str]:
    """The scan lines of the k-nearest query's plan."""
    with psycopg.connect(platform.writer_url) as conn, transaction(conn, tenant):
        sql, params = nearest_query(space, 10, None)
        probe = np.ones(space.dim, dtype=np.float32)
        plan = [r[0] for r in conn.execute("EXPLAIN " + sql, params(tenant, probe))]
    return [line.strip().removeprefix("->").strip() for line in plan if "Scan" in line or "Sort" in line]


def test_an_indexed_analyzed_leaf_is_searched_by_its_hnsw_index_alone(platform, layout):
    leaf = layout[BIG]["leaf"].removeprefix("core.")
    found = scans(platform, BIG, layout[BIG]["space"])
    assert len(found) == 1, found
    assert found[0].startswith(f"Index Scan using {leaf}_hnsw on {leaf} ")


def test_stale_statistics_make_the_planner_sort_every_vector_until_analyze_space(platform, layout):
    """A leaf analyzed while empty (or sampled mid-write by autovacuum) has no column statistics:
    the planner estimates one row and sorts the whole leaf instead of using HNSW."""
    model, dim, n = "stale-16", 16, 800
    rng = np.random.default_rng(3)
    with psycopg.connect(platform.writer_url) as conn:
        with transaction(conn, SMALL):
            leaf = ensure_space(conn, model, dim)
        with platform.admin() as admin:  # no autovacuum analyze behind the test's back
            admin.execute(f"ALTER TABLE {leaf} SET (autovacuum_enabled = false)")
        with transaction(conn, SMALL):
            assert index_space(conn, model)  # on the empty leaf
        vectors = unit_rows(rng.standard_normal((n, dim)))
        with transaction(conn, SMALL):
            upsert_vectors(
                conn, SMALL, model, dim, (("x", str(i), "h", "t", v) for i, v in enumerate(vectors))
            )
        space = space_of(conn, SMALL, model)
        stale = scans(platform, SMALL, space)
        with transaction(conn, SMALL):
            analyze_space(conn, model)
    fresh = scans(platform, SMALL, space)
    name = leaf.removeprefix("core.")
    assert stale[0].startswith("Sort") and not any("_hnsw" in line for line in stale), stale
    assert [line.split("  ")[0] for line in fresh] == [f"Index Scan using {name}_hnsw on {name} embeddings"]
