"""campaign_insights on the real Postgres and Dagster: a synthetic history loaded with crm_seed
under tenants of this module's own, materialized with its blocking check."""

import json

import pytest
from dagster import AssetKey, materialize

from assets import crm_insights
from fixtures.generate_llm import BASE_URL, END, MODEL, START, scenario_tenant
from ml.crm.insights import compute_insights, inputs_from_history
from ml.crm.synthetic import generate_history
from orchestration import tenants
from orchestration.crm_seed import load_history
from orchestration.llm import LlmResource
from orchestration.settings import PROJECT_ROOT
from orchestration.warehouse import WarehouseResource

PROBE = "crm_insights_probe"
LLM_TENANT = scenario_tenant("ok")
INVENTED_TENANT = scenario_tenant("invented")
SMALL = "crm_insights_small"
EMPTY = "crm_insights_empty"


def _add_tenant(platform, tenant_id: str) -> None:
    with platform.admin() as conn:
        conn.execute(
            """INSERT INTO core.tenants (tenant_id, display_name, kind, parent_tenant_id, tier, domains)
               VALUES (%s, %s, 'client', 'bizoholic', 'starter', '{crm}')
               ON CONFLICT (tenant_id) DO NOTHING""",
            (tenant_id, tenant_id),
        )


@pytest.fixture(scope="module")
def seeded(platform, dagster_instance):
    warehouse = WarehouseResource(database_url=platform.writer_url)
    histories = {
        PROBE: generate_history("coreldove", START, END),
        LLM_TENANT: generate_history(LLM_TENANT, START, END),
        INVENTED_TENANT: generate_history(INVENTED_TENANT, START, END),
        SMALL: generate_history("bizoholic", START, END),
    }
    for tenant_id, history in histories.items():
        _add_tenant(platform, tenant_id)
        history.tenant_id = tenant_id  # the same people under this module's tenant
        with warehouse.tenant_transaction(tenant_id) as conn:
            load_history(conn, history)
    _add_tenant(platform, EMPTY)  # a CRM tenant whose ingestion has loaded nothing yet
    dagster_instance.add_dynamic_partitions(crm_insights.tenant_partitions("crm").name, [*histories, EMPTY])
    yield histories
    with platform.admin() as conn:
        for tenant_id in [*histories, EMPTY]:
            tenants.offboard(conn, tenant_id)


def run(platform, instance, tenant_id, llm=None):
    return materialize(
        [crm_insights.campaign_insights, crm_insights.campaign_insights_valid],
        partition_key=tenant_id,
        instance=instance,
        resources={
            "warehouse": WarehouseResource(database_url=platform.writer_url),
            "llm": llm or LlmResource(),
        },
        raise_on_error=False,
    )


def query(platform, tenant_id, sql):
    return WarehouseResource(database_url=platform.writer_url).query(tenant_id, sql, (tenant_id,))


def metadata(result):
    event = result.get_asset_materialization_events()[0]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def checks(result):
    return {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}


def test_insights_match_the_pure_figures_and_the_check_passes(platform, dagster_instance, seeded):
    result = run(platform, dagster_instance, PROBE)
    assert result.success and checks(result) == {"campaign_insights_valid": True}
    expected = compute_insights(*inputs_from_history(seeded[PROBE]), now=seeded[PROBE].now)
    stored = query(platform, PROBE, "SELECT * FROM core.crm_campaign_insights WHERE tenant_id = %s")
    assert len(stored) == len(expected.rows)
    by_key = {(r["dimension"], r["value"]): r for r in stored}
    for row in expected.rows:
        got = by_key[(row.dimension, row.value)]
        assert (got["leads"], got["conversions"], got["spend"]) == (row.leads, row.conversions, row.spend)
        assert got["uplift_ci_low"] == pytest.approx(row.uplift_ci_low)
    report = query(platform, PROBE, "SELECT * FROM core.crm_insight_reports WHERE tenant_id = %s")[0]
    assert report["narrative"] is None and report["narrative_status"] == "not configured"
    assert report["recommendations"][0]["action"] == "shift_budget"
    assert report["method"]["young_leads_excluded"] == expected.young_leads > 0
    meta = metadata(result)
    assert meta["narrative_status"] == "not configured" and meta["llm_calls"] == 0
    assert meta["rows_campaign"] == sum(1 for r in expected.rows if r.dimension == "campaign")
    assert "shift_budget" in meta["recommendations"] and meta["baseline_rate"] == pytest.approx(
        expected.baseline_rate
    )


def test_a_small_tenant_is_told_there_is_too_little_data(platform, dagster_instance, seeded):
    result = run(platform, dagster_instance, SMALL)
    assert result.success
    report = query(platform, SMALL, "SELECT * FROM core.crm_insight_reports WHERE tenant_id = %s")[0]
    assert [r["action"] for r in report["recommendations"]] == ["insufficient_data"]
    assert report["method"]["sufficient_data"] is False
    assert metadata(result)["sufficient_data"] is False


def llm_resource():
    return LlmResource(
        mode="replay",
        fixtures_dir=str(PROJECT_ROOT / "fixtures"),
        base_url=BASE_URL,
        model=MODEL,
        backoff_s=0,
    )


def test_a_configured_endpoint_adds_a_grounded_narrative(platform, dagster_instance, seeded):
    # The prompt built from the warehouse must be byte-for-byte the recorded one, or replay fails.
    result = run(platform, dagster_instance, LLM_TENANT, llm=llm_resource())
    assert result.success
    report = query(platform, LLM_TENANT, "SELECT * FROM core.crm_insight_reports WHERE tenant_id = %s")[0]
    recorded = json.loads((PROJECT_ROOT / "fixtures/llm/chat_completions_ok.json").read_text())
    assert report["narrative"] == recorded["responses"][0]["json"]["choices"][0]["message"]["content"]
    assert (report["narrative_status"], report["narrative_model"]) == ("ok", "gpt-4o-mini-2024-07-18")
    assert metadata(result)["llm_calls"] == 1


def test_an_invented_number_drops_the_narrative_and_keeps_the_figures(platform, dagster_instance, seeded):
    result = run(platform, dagster_instance, INVENTED_TENANT, llm=llm_resource())
    assert result.success and checks(result) == {"campaign_insights_valid": True}
    report = query(platform, INVENTED_TENANT, "SELECT * FROM core.crm_insight_reports WHERE tenant_id = %s")[
        0
    ]
    assert report["narrative"] is None and report["narrative_status"].startswith(
        "rejected: it quotes numbers"
    )
    assert len(report["recommendations"]) > 1


def test_the_check_fails_on_a_recommendation_without_its_row(platform, dagster_instance, seeded):
    assert run(platform, dagster_instance, PROBE).success
    warehouse = WarehouseResource(database_url=platform.writer_url)
    with warehouse.tenant_transaction(PROBE) as conn:
        value = conn.execute(
            "SELECT recommendations->0->>'value' FROM core.crm_insight_reports WHERE tenant_id = %s", (PROBE,)
        ).fetchone()[0]
        conn.execute(
            "DELETE FROM core.crm_campaign_insights "
            "WHERE tenant_id = %s AND dimension = 'campaign' AND value = %s",
            (PROBE, value),
        )
    outcome = crm_insights.check_tenant_insights(warehouse, PROBE)
    assert outcome.passed is False and "name no insight row" in outcome.description
    assert value in json.dumps(outcome.metadata["missing_references"].value)


def test_a_tenant_without_crm_data_succeeds_and_says_so(platform, dagster_instance, seeded):
    result = run(platform, dagster_instance, EMPTY)
    assert result.success and checks(result) == {"campaign_insights_valid": True}
    report = query(platform, EMPTY, "SELECT * FROM core.crm_insight_reports WHERE tenant_id = %s")[0]
    assert (report["leads"], report["baseline_rate"]) == (0, None)
    assert report["recommendations"][0]["text"].startswith("Too little data to say: 0 mature leads")


def test_insights_depend_on_the_ingestion_assets():
    spec = crm_insights.campaign_insights
    assert {k.to_user_string() for k in spec.dependency_keys} >= {
        AssetKey(n).to_user_string() for n in crm_insights.UPSTREAM
    }
