"""The embeddings and ai_training_data assets on the real Postgres (pgvector) and Dagster instance,
for small CRM tenants of their own (rows inserted straight into core.crm_*), with the real MiniLM
(the session `embedder`) behind a counting wrapper, and text-embedding-3-small replayed from
fixtures/embeddings_api (fixtures/generate_embeddings_api.py: the PROBE rows)."""

from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest
from dagster import AssetKey, materialize
from psycopg.types.json import Jsonb

from assets import knowledge
from fixtures.generate_embeddings_api import BASE_URL, PROBE_BATCH, PROBE_CAMPAIGNS, PROBE_LEADS, probe_texts
from ml.knowledge.embedders import MINILM, OPENAI_SMALL
from orchestration import tenants
from orchestration.embedding_model import EmbeddingModelResource
from orchestration.settings import PROJECT_ROOT
from orchestration.vector_store import load_vectors, search_space, spaces, stored_hashes, upsert_vectors
from orchestration.warehouse import WarehouseResource

INCREMENTAL, SWITCH = "kn_incremental", "kn_switch"
CHECKS = [knowledge.embeddings_current, knowledge.embeddings_dims_match]
CALLS: list[int] = []  # texts per embedder call, across the wrapped embedders of a run


class Counting:
    """The real embedder, counted; `fail_on_call` (1-based) raises instead, like a killed run."""

    def __init__(self, inner, fail_on_call: int):
        self.inner, self.fail_on_call = inner, fail_on_call
        self.model, self.dim = inner.model, inner.dim

    def embed(self, texts):
        if len(CALLS) + 1 == self.fail_on_call:
            raise RuntimeError("killed midway (test)")
        CALLS.append(len(texts))
        return self.inner.embed(texts)


class CountingModel(EmbeddingModelResource):
    fail_on_call: int = 0

    def embedder(self, model=None):
        return Counting(super().embedder(model), self.fail_on_call)


def _run(platform, instance, tenant, assets=None, config=None, **model):
    CALLS.clear()
    resource = CountingModel(
        mode="replay",
        fixtures_dir=str(PROJECT_ROOT / "fixtures"),
        base_url=BASE_URL,
        api_key="sk-replay",
        **model,
    )
    return materialize(
        assets or [knowledge.embeddings, *CHECKS],
        partition_key=tenant,
        instance=instance,
        resources={
            "warehouse": WarehouseResource(database_url=platform.writer_url),
            "embedding_model": resource,
        },
        run_config={"ops": {"embeddings": {"config": config}}} if config else None,
        raise_on_error=False,
    )


def _meta(result, key="embeddings"):
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey(key)]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _checks(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _tx(platform, tenant):
    return WarehouseResource(database_url=platform.writer_url).tenant_transaction(tenant)


def _seed(platform, tenant):
    now = datetime(2026, 11, 20, tzinfo=UTC)
    with _tx(platform, tenant) as conn:
        for c in PROBE_CAMPAIGNS:
            conn.execute(
                "INSERT INTO core.crm_campaigns (tenant_id, campaign_id, name, channel, segment) "
                "VALUES (%s, %s, %s, %s, %s)",
                (tenant, c["campaign_id"], c["name"], c["channel"], c["segment"]),
            )
        for lead in PROBE_LEADS:
            email = f"{lead['lead_id']}@probe.example"
            conn.execute(
                "INSERT INTO core.crm_leads (tenant_id, lead_id, email, email_key, company_name, source, "
                "campaign_id, status, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (tenant, lead["lead_id"], email, email, lead["company_name"], lead["source"],
                 lead["campaign_id"], lead["status"], now, now),
            )  # fmt: skip


def _tenant(platform, instance, tenant_id):
    with platform.admin() as conn:
        conn.execute(
            """INSERT INTO core.tenants (tenant_id, display_name, kind, parent_tenant_id, tier, domains)
               VALUES (%s, 'Knowledge probe', 'client', 'bizoholic', 'starter', '{crm}')""",
            (tenant_id,),
        )
    instance.add_dynamic_partitions(knowledge.knowledge_partitions.name, [tenant_id])
    _seed(platform, tenant_id)


def _offboard(platform, instance, tenant_id):
    with platform.admin() as conn:
        tenants.offboard(conn, tenant_id)
    instance.delete_dynamic_partition(knowledge.knowledge_partitions.name, tenant_id)


@pytest.fixture(scope="module")
def probes(platform, dagster_instance, embedder):
    for tenant in (INCREMENTAL, SWITCH):
        _tenant(platform, dagster_instance, tenant)
    yield
    for tenant in (INCREMENTAL, SWITCH):
        _offboard(platform, dagster_instance, tenant)


def _stored(platform, tenant, model=MINILM):
    with _tx(platform, tenant) as conn:
        return stored_hashes(conn, tenant, model)


def test_only_what_changed_is_embedded_and_removed_entities_lose_their_vectors(
    platform, dagster_instance, probes
):
    first = _run(platform, dagster_instance, INCREMENTAL)
    meta = _meta(first)
    assert first.success and _checks(first) == {"embeddings_current": True, "embeddings_dims_match": True}
    assert sum(CALLS) == meta["embedded"] == meta["new"] == 8 and meta["space_ready"] and meta["indexed_now"]
    assert meta["entities_by_type"] == {"campaign": 3, "lead": 5} and meta["model"] == MINILM
    assert meta["retrieval_space"] == MINILM and meta["dim"] == 384
    before = _stored(platform, INCREMENTAL)
    assert len(before) == 8

    again = _run(platform, dagster_instance, INCREMENTAL)
    meta = _meta(again)
    assert again.success and CALLS == [] and meta["embedded"] == 0 and meta["unchanged"] == 8
    assert not meta["indexed_now"] and _stored(platform, INCREMENTAL) == before

    with _tx(platform, INCREMENTAL) as conn:
        conn.execute("UPDATE core.crm_leads SET status = 'won' WHERE tenant_id = %s AND lead_id = 'l-03'",
                     (INCREMENTAL,))  # fmt: skip
    changed = _run(platform, dagster_instance, INCREMENTAL)
    after = _stored(platform, INCREMENTAL)
    assert changed.success and CALLS == [1] and _meta(changed)["changed"] == 1
    assert {k for k in after if after[k] != before[k]} == {("lead", "l-03")}
    with _tx(platform, INCREMENTAL) as conn:
        [(content, run_id)] = conn.execute(
            "SELECT content, dagster_run_id FROM core.embeddings WHERE tenant_id = %s AND entity_id = 'l-03'",
            (INCREMENTAL,),
        ).fetchall()
    assert content.endswith("Status: won.") and run_id == changed.run_id

    with _tx(platform, INCREMENTAL) as conn:
        conn.execute("DELETE FROM core.crm_leads WHERE tenant_id = %s AND lead_id = 'l-04'", (INCREMENTAL,))
    removed = _run(platform, dagster_instance, INCREMENTAL)
    assert removed.success and CALLS == [] and _meta(removed)["removed"] == 1
    assert set(_stored(platform, INCREMENTAL)) == set(after) - {("lead", "l-04")}
    assert _checks(removed) == {"embeddings_current": True, "embeddings_dims_match": True}


def test_training_rows_carry_labels_vectors_and_feedback(platform, dagster_instance, probes):
    result = _run(platform, dagster_instance, INCREMENTAL, [knowledge.embeddings, knowledge.ai_training_data])
    assert result.success
    meta = _meta(result, "ai_training_data")
    with _tx(platform, INCREMENTAL) as conn:
        rows = {
            (t, i): (labels, score, model, features, digest)
            for t, i, labels, score, model, features, digest in conn.execute(
                "SELECT data_type, entity_id, labels, feedback_score, model, processed_features::text, "
                "content_hash FROM core.ai_training_data WHERE tenant_id = %s",
                (INCREMENTAL,),
            )
        }
        vectors = {(v.entity_type, v.entity_id): v for v in load_vectors(conn, INCREMENTAL, MINILM)}
        # The leads as they are now (other tests of this module change some), not as seeded.
        statuses = dict(
            conn.execute("SELECT lead_id, status FROM core.crm_leads WHERE tenant_id = %s", (INCREMENTAL,))
        )
    closed = {i for i, s in statuses.items() if s in ("won", "lost")}
    assert closed  # the probes hold closed leads of both outcomes
    assert {i for t, i in rows if t == "lead"} == closed
    for lead_id in closed:
        labels, score, *_ = rows[("lead", lead_id)]
        assert labels == {"outcome": statuses[lead_id]} and score == (
            1.0 if statuses[lead_id] == "won" else 0.0
        )
    assert {rows[("campaign", c["campaign_id"])][0]["channel"] for c in PROBE_CAMPAIGNS} == {
        c["channel"] for c in PROBE_CAMPAIGNS
    }
    assert all(rows[("campaign", c["campaign_id"])][1] is None for c in PROBE_CAMPAIGNS)
    for key, (_, _, model, features, digest) in rows.items():
        stored = np.array(features.strip("[]").split(","), dtype=np.float32)
        assert model == MINILM and stored.shape == (384,) and digest == vectors[key].content_hash
        assert np.allclose(stored, vectors[key].embedding, atol=1e-6)
    assert meta["rows"] == len(rows) and meta["rows_by_type"] == {"campaign": 3, "lead": len(closed)}
    outcomes = [statuses[i] for i in closed]
    assert meta["label_balance"]["lead"] == {
        f"outcome={o}": outcomes.count(o) for o in ("won", "lost") if o in outcomes
    }


def test_a_model_switch_survives_a_killed_run_and_moves_retrieval_when_complete(
    platform, dagster_instance, probes
):
    assert _run(platform, dagster_instance, SWITCH).success
    with platform.admin() as conn:
        conn.execute("UPDATE core.tenants SET settings = %s WHERE tenant_id = %s",
                     (Jsonb({"knowledge": {"embedding_model": OPENAI_SMALL}}), SWITCH))  # fmt: skip
    small = {"batch_size": PROBE_BATCH, "commit_every": PROBE_BATCH}
    killed = _run(platform, dagster_instance, SWITCH, config=small, fail_on_call=2)
    assert not killed.success and CALLS == [PROBE_BATCH]
    with _tx(platform, SWITCH) as conn:
        during = {s.model: s for s in spaces(conn, SWITCH)}
        serving = search_space(conn, SWITCH, OPENAI_SMALL)
    # Both spaces during the switch; retrieval stays on the complete one.
    assert set(during) == {MINILM, OPENAI_SMALL} and during[OPENAI_SMALL].ready_at is None
    assert serving.model == MINILM and len(_stored(platform, SWITCH, MINILM)) == 8
    assert len(_stored(platform, SWITCH, OPENAI_SMALL)) == PROBE_BATCH

    resumed = _run(platform, dagster_instance, SWITCH, config=small)
    meta = _meta(resumed)
    assert (
        resumed.success and [len(probe_texts()) - PROBE_BATCH] == CALLS and meta["unchanged"] == PROBE_BATCH
    )
    assert meta["space_ready"] and meta["retrieval_space"] == OPENAI_SMALL and meta["dim"] == 1536
    assert meta["previous_spaces"] == [
        {"model": MINILM, "dim": 384, "status": "retired by this run (8 vectors deleted)"}
    ]
    assert _checks(resumed) == {"embeddings_current": True, "embeddings_dims_match": True}
    with _tx(platform, SWITCH) as conn:
        assert search_space(conn, SWITCH, OPENAI_SMALL).model == OPENAI_SMALL
        assert {v.content for v in load_vectors(conn, SWITCH, OPENAI_SMALL)} == set(probe_texts())
    assert _stored(platform, SWITCH, MINILM) == {}


def test_a_tenant_can_neither_read_nor_write_another_tenants_vectors(platform, probes):
    assert _stored(platform, INCREMENTAL)  # written by the tests above
    with _tx(platform, SWITCH) as conn:
        assert stored_hashes(conn, INCREMENTAL, MINILM) == {}
        count = conn.execute("SELECT count(*) FROM core.embeddings WHERE tenant_id = %s", (INCREMENTAL,))
        assert count.fetchone()[0] == 0
    with pytest.raises(psycopg.Error, match="row-level security|no partition"), _tx(platform, SWITCH) as conn:
        row = ("lead", "intruder", "x", "intruder", np.ones(384, dtype=np.float32) / np.sqrt(384))
        upsert_vectors(conn, INCREMENTAL, MINILM, 384, [row])
    assert ("lead", "intruder") not in _stored(platform, INCREMENTAL)
