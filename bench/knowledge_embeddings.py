"""Knowledge-layer embedding benchmarks (issue 7), on the bench data folder (`.data/bench`).

    python -m bench.knowledge_embeddings [--quick] [--skip-demo]

1. Throughput, rows/s, on N realistic entity texts (a bench tenant's synthetic CRM history loaded
   into Postgres, read back through orchestration.knowledge_entities; N = 20,000, 2,000 with
   --quick): the platform's embed step (EmbeddingModelResource's MiniLM embedder in the asset's
   batches of 256: de-duplicated, normalised) against the plain sentence-transformers baseline
   (`SentenceTransformer(path).encode(texts)` with its defaults), in one process on the same texts
   after one warm-up each; the median of REPEATS runs. The share of distinct texts is reported:
   the platform embeds each distinct text once, the baseline every text; `distinct_only` repeats
   the comparison on the distinct texts alone (equal work: the platform path's own overhead).
2. The `embeddings` asset on the real Dagster instance for the bench tenant at N entities: the
   first run (fresh space: load, then HNSW index) against a no-change re-run (hash diff only),
   wall-clock, with the embedder calls each made.
3. The demo's share (unless --skip-demo): every seeded tenant materialized as `bizosaas demo`
   does (bench.api.prepare_platform), then per tenant the `embeddings` step's time in that first
   run and a no-change re-run of the asset.

Results go to bench/results/knowledge_embeddings.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import date

from bench.api import ROOT

BENCH_TENANT = "bench_knowledge"
START, END = date(2026, 6, 1), date(2026, 11, 25)
REPEATS = 3
ASSET_BATCH = 256  # EmbeddingsConfig.batch_size's default


def _median_rate(fn, texts: list[str], repeats: int) -> dict:
    fn(texts[:64])  # warm-up: first-call allocations, not the model load (already loaded)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn(texts)
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    return {"median_s": round(median, 3), "rows_per_s": round(len(texts) / median, 1),
            "runs_s": [round(s, 3) for s in seconds]}  # fmt: skip


def bench_throughput(texts: list[str], repeats: int) -> dict:
    from ml.knowledge.embedders import MINILM, MiniLmEmbedder
    from ml.knowledge.incremental import chunks
    from orchestration.embedding_model import EmbeddingModelResource

    started = time.perf_counter()
    model = MiniLmEmbedder.load()
    load_s = time.perf_counter() - started
    embedder = EmbeddingModelResource().embedder(MINILM)
    distinct = list(dict.fromkeys(texts))

    def platform(batch: list[str]) -> None:
        for part in chunks(batch, ASSET_BATCH):
            embedder.embed(list(part))

    def baseline(batch: list[str]) -> None:
        model.encode(batch)  # sentence-transformers' defaults: batch 32, no normalisation

    return {
        "texts": len(texts),
        "distinct_texts": len(set(texts)),
        "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
        "model_load_s": round(load_s, 2),
        "platform": _median_rate(platform, texts, repeats),
        "sentence_transformers_baseline": _median_rate(baseline, texts, repeats),
        # The same work on both sides (no repeated texts): the platform path's own overhead.
        "distinct_only": {
            "platform": _median_rate(platform, distinct, repeats),
            "sentence_transformers_baseline": _median_rate(baseline, distinct, repeats),
        },
    }


def _bench_tenant(env: dict, entities: int):
    """The bench tenant with a synthetic CRM history of about `entities` leads, and no vectors."""
    from psycopg.types.json import Jsonb

    from ml.crm.synthetic import generate_history
    from orchestration import postgres
    from orchestration.crm_seed import load_history
    from orchestration.settings import load_settings
    from orchestration.warehouse import WarehouseResource

    admin = postgres.admin_url(load_settings())
    with postgres.connect(admin, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO core.tenants
                      (tenant_id, display_name, kind, parent_tenant_id, tier, domains, settings)
               VALUES (%s, 'Bench knowledge', 'client', 'bizoholic', 'starter', '{crm}', %s)
               ON CONFLICT (tenant_id) DO UPDATE SET status = 'active'""",
            (BENCH_TENANT, Jsonb({})),
        )
        # A fresh space each time, so the first run measures load-then-index.
        for (leaf,) in conn.execute(
            "SELECT leaf_table FROM core.embedding_spaces WHERE tenant_id = %s", (BENCH_TENANT,)
        ).fetchall():
            conn.execute(f"DROP TABLE {leaf}")
        conn.execute("DELETE FROM core.embedding_spaces WHERE tenant_id = %s", (BENCH_TENANT,))
    warehouse = WarehouseResource(database_url=env["BIZOSAAS_WRITER_URL"])
    days = (END - START).days
    history = generate_history(BENCH_TENANT, START, END, leads_per_day=entities / days / 0.87)
    with warehouse.tenant_transaction(BENCH_TENANT) as conn:
        load_history(conn, history)
    return warehouse


class _Counting:
    def __init__(self, inner, calls: list[int]):
        self.inner, self.calls, self.model, self.dim = inner, calls, inner.model, inner.dim

    def embed(self, texts):
        self.calls.append(len(texts))
        return self.inner.embed(texts)


def _embeddings_run(instance, warehouse, tenant: str) -> tuple[float, int, dict]:
    from dagster import AssetKey, materialize

    from assets import knowledge
    from orchestration.embedding_model import EmbeddingModelResource

    calls: list[int] = []

    class Counted(EmbeddingModelResource):
        def embedder(self, model=None):
            return _Counting(super().embedder(model), calls)

    started = time.perf_counter()
    result = materialize(
        [knowledge.embeddings],
        partition_key=tenant,
        instance=instance,
        resources={"warehouse": warehouse, "embedding_model": Counted()},
    )
    seconds = time.perf_counter() - started
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey("embeddings")]
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    return seconds, len(calls), meta


def bench_asset(env: dict, entities: int) -> tuple[dict, list[str]]:
    from dagster import DagsterInstance

    from assets import knowledge
    from orchestration.knowledge_entities import load_entities

    warehouse = _bench_tenant(env, entities)
    with warehouse.tenant_transaction(BENCH_TENANT) as conn:
        texts = [e.text for e in load_entities(conn, BENCH_TENANT)]
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(knowledge.knowledge_partitions.name, [BENCH_TENANT])
        first_s, first_calls, first = _embeddings_run(instance, warehouse, BENCH_TENANT)
        again_s, again_calls, again = _embeddings_run(instance, warehouse, BENCH_TENANT)
    result = {
        "entities": first["entities"],
        "first_run_s": round(first_s, 2),
        "first_run_embedder_calls": first_calls,
        "first_run_embedded": first["embedded"],
        "first_run_seconds_embedding": first["seconds_embedding"],
        "first_run_indexed": first["indexed_now"],
        "no_change_rerun_s": round(again_s, 2),
        "no_change_rerun_embedder_calls": again_calls,
        "no_change_rerun_embedded": again["embedded"],
    }
    return result, texts


def bench_demo_share(env: dict) -> dict:
    """Per seeded tenant: the `embeddings` step's seconds in the demo's run, and a re-run's."""
    from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, DagsterInstance

    from orchestration.warehouse import WarehouseResource

    warehouse = WarehouseResource(database_url=env["BIZOSAAS_WRITER_URL"])
    shares = {}
    with DagsterInstance.get() as instance:
        for tenant in ("bizoholic", "coreldove", "business_directory", "thrillring", "quanttrade"):
            records = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=AssetKey("embeddings"), asset_partitions=[tenant]),
                limit=1,
                # The first materialization: the demo's, which embedded everything (a later one on a
                # reused bench folder would be a no-change run).
                ascending=True,
            ).records
            if not records:
                continue
            run_id = records[0].event_log_entry.run_id
            steps = {}
            for entry in instance.all_logs(
                run_id, of_type={DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS}
            ):
                if entry.step_key == "embeddings":
                    steps[entry.dagster_event.event_type] = entry.timestamp
            meta = {k: v.value for k, v in records[0].event_log_entry.asset_materialization.metadata.items()}
            rerun_s, rerun_calls, _ = _embeddings_run(instance, warehouse, tenant)
            shares[tenant] = {
                "entities": meta["entities"],
                "demo_step_s": round(
                    steps[DagsterEventType.STEP_SUCCESS] - steps[DagsterEventType.STEP_START], 2
                ),
                # A tenant without entities embeds nothing (and reports no embedding time).
                "demo_seconds_embedding": meta.get("seconds_embedding", 0.0),
                "no_change_rerun_s": round(rerun_s, 2),
                "no_change_rerun_embedder_calls": rerun_calls,
            }
            print(json.dumps({tenant: shares[tenant]}), flush=True)
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 entities instead of 20,000")
    parser.add_argument("--skip-demo", action="store_true", help="no demo materialization (faster)")
    args = parser.parse_args()
    entities = 2_000 if args.quick else 20_000
    started = time.perf_counter()
    report: dict = {"cores": os.cpu_count(), "quick": args.quick, "target_entities": entities}

    from bench.api import prepare_platform

    if args.skip_demo:
        os.environ.setdefault("BIZOSAAS_DATA_DIR", str(ROOT / ".data" / "bench"))
        from orchestration import postgres, runtime, tenants
        from orchestration.settings import load_settings

        settings = load_settings()
        env = runtime.prepare(settings)
        runtime.export(env)
        with postgres.connect(postgres.admin_url(settings), autocommit=True) as conn:
            tenants.seed(conn, tenants.load_seed(settings.tenants_file))
    else:
        demo_started = time.perf_counter()
        env, _ = prepare_platform()
        report["demo_total_s"] = round(time.perf_counter() - demo_started, 1)
        report["demo_share"] = bench_demo_share(env)

    report["asset"], texts = bench_asset(env, entities)
    print(json.dumps(report["asset"]), flush=True)
    report["throughput"] = bench_throughput(texts[:entities], REPEATS)
    print(json.dumps(report["throughput"]), flush=True)
    report["seconds"] = round(time.perf_counter() - started, 1)

    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / "knowledge_embeddings.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
