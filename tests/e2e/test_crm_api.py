"""CRM routes over real HTTP against the real Postgres, isolated by RLS.

Two client tenants of Bizoholic of the tests' own get a seeded synthetic CRM history
(orchestration.crm_seed) and keys of their own. Scores, registry versions and insights are written
by stand-ins for the model and insights assets (tests/e2e/crm_stand_ins.py, and rows inserted here),
and the CRM marts are rebuilt with dbt on top. Expected answers are read from the warehouse as the
admin sees it."""

import json
import os
import subprocess
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from psycopg.types.json import Jsonb

from ml.crm.synthetic import generate_history
from orchestration import tenants
from orchestration.crm_seed import load_history
from orchestration.runtime import DBT_EXECUTABLE, DBT_PROJECT_DIR
from orchestration.warehouse import WarehouseResource
from serving import keys
from tests.e2e.conftest import Api
from tests.e2e.crm_stand_ins import write_stand_in_scores
from tests.e2e.test_api import assert_error, get

ALPHA, BETA = "crm_api_alpha", "crm_api_beta"
LEADS = "/api/brain/django-crm/leads"
INSIGHTS = "/api/brain/crm/campaigns/insights"
FUNNEL = "/api/brain/analytics/crm"
CAMPAIGNS = "/api/brain/analytics/crm/campaigns"
MODELS = "/api/brain/analytics/crm/models"
END = date(2026, 11, 25)


def insight(dimension, value, leads, conversions, uplift, ci):
    """A campaign_insights row (these stand in for the campaign_insights asset)."""
    return {"dimension": dimension, "value": value, "label": value.replace("_", " "),
            "leads": leads, "conversions": conversions,
            "conversion_rate": conversions / leads, "spend": 1000.0, "cost_per_lead": 1000.0 / leads,
            "cost_per_conversion": 1000.0 / conversions, "uplift": uplift, "uplift_ci_low": uplift - ci,
            "uplift_ci_high": uplift + ci, "computed_at": datetime(2026, 11, 25, 3, tzinfo=UTC)}  # fmt: skip


INSIGHTS_ROWS = [
    insight("channel", "paid_search", 400, 60, 0.05, 0.02),
    insight("channel", "paid_social", 380, 20, -0.08, 0.03),
    insight("channel", "email", 120, 16, 0.01, 0.05),
    insight("source", "referral", 90, 25, 0.17, 0.06),
    insight("segment", "smb", 300, 33, -0.01, 0.02),
]


def registry(version, kind, status, roc_auc):
    """A model registry version (stands in for the lead_scoring_model asset)."""
    return {"version": version, "kind": kind, "algorithm": "logistic_regression",
            "features": Jsonb(["a", "b"]), "params": Jsonb({}),
            "metrics": Jsonb({"roc_auc": roc_auc, "pr_auc": 0.4, "brier": 0.11, "baseline_roc_auc": 0.6}),
            "holdout": Jsonb({"rows": 200, "positives": 30}), "training_rows": 800, "outcomes_seen": 300,
            "status": status, "decision": status,
            "trained_at": datetime(2026, 11, version, tzinfo=UTC)}  # fmt: skip


def insert(conn, tenant, table, row):
    columns = ["tenant_id", *row]
    conn.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
        [tenant, *row.values()],
    )


@pytest.fixture(scope="module")
def crm(api, platform, tmp_path_factory):
    issued = {}
    with platform.admin() as conn:
        for tenant in (ALPHA, BETA):
            conn.execute(
                """INSERT INTO core.tenants (tenant_id, display_name, kind, parent_tenant_id, tier, domains)
                   VALUES (%s, %s, 'client', 'bizoholic', 'starter', '{crm}')
                   ON CONFLICT (tenant_id) DO NOTHING""",
                (tenant, tenant),
            )
            issued[tenant], _ = keys.create(conn, tenant, "reader", f"e2e {tenant}")
    warehouse = WarehouseResource(database_url=platform.writer_url)
    for tenant, rate, version in ((ALPHA, 20, 2), (BETA, 5, 1)):
        history = generate_history(tenant, date(2026, 9, 1), END, leads_per_day=rate, duplicate_rate=0.06)
        with warehouse.tenant_transaction(tenant) as conn:
            load_history(conn, history)
            write_stand_in_scores(conn, tenant, history.now, model_version=version)
            for table in ("crm_model_registry", "crm_campaign_insights", "crm_insight_reports"):
                conn.execute(f"DELETE FROM core.{table} WHERE tenant_id = %s", (tenant,))
            if tenant == ALPHA:
                insert(conn, tenant, "core.crm_model_registry", registry(1, "baseline", "retired", 0.6))
                insert(conn, tenant, "core.crm_model_registry", registry(2, "model", "champion", 0.77))
                for row in INSIGHTS_ROWS:
                    insert(conn, tenant, "core.crm_campaign_insights", row)
            narrative = "Referrals convert best." if tenant == BETA else None
            insert(conn, tenant, "core.crm_insight_reports", {
                "baseline_rate": 0.11, "leads": 900, "conversions": 99,
                "recommendations": Jsonb([{"action": "shift budget to paid_search", "dimension": "channel",
                                           "value": "paid_search", "evidence": "uplift +5.0 pp"}]),
                "narrative": narrative, "narrative_model": "gpt-test" if narrative else None,
                "narrative_status": "ok" if narrative else "not configured",
                "computed_at": datetime(2026, 11, 25, 3, tzinfo=UTC),
            })  # fmt: skip
    target = tmp_path_factory.mktemp("dbt_crm_api")
    proc = subprocess.run(
        [DBT_EXECUTABLE, "run", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(target), "--select", "stg_crm_leads+", "stg_crm_model_registry+",
         "stg_crm_campaigns+"],
        capture_output=True, text=True, env=os.environ.copy(), cwd=DBT_PROJECT_DIR, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert {r["status"] for r in json.loads((target / "run_results.json").read_text())["results"]} == {
        "success"
    }
    yield Api(api.url, {**api.keys, **issued})
    with platform.admin() as conn:
        for tenant in (ALPHA, BETA):
            tenants.offboard(conn, tenant)


def admin_rows(platform, sql, params=()):
    with platform.admin() as conn:
        conn.row_factory = psycopg.rows.dict_row
        return conn.execute(sql, params or None).fetchall()


def everything(api, path, key, **params):
    rows, offset = [], 0
    while True:
        body = get(api, path, key, limit=200, offset=offset, **params).json()
        rows += body["data"]
        if body["page"]["next_offset"] is None:
            return rows, body["page"]["total"]
        offset = body["page"]["next_offset"]


def test_leads_come_best_first_with_reasons_and_model_unscored_last(crm, platform):
    counts = admin_rows(
        platform,
        "SELECT count(*) AS leads, count(ai_score) AS scored FROM core.crm_leads WHERE tenant_id = %s",
        (ALPHA,),
    )[0]
    rows, total = everything(crm, LEADS, ALPHA)
    assert total == len(rows) == counts["leads"] > 500
    assert 0 < counts["scored"] < counts["leads"]
    assert {r["tenant_id"] for r in rows} == {ALPHA}
    scores = [r["ai_score"] for r in rows]
    scored = [s for s in scores if s is not None]
    assert scored == sorted(scored, reverse=True) and scores[: len(scored)] == scored  # unscored last
    top = rows[0]
    assert top["model_kind"] == "model" and top["model_version"] == 2 and top["scored_at"]
    assert 1 <= len(top["top_reasons"]) <= 3 and {"feature", "text"} <= set(top["top_reasons"][0])
    unscored = rows[-1]
    assert (
        unscored["ai_score"] is None and unscored["top_reasons"] == [] and unscored["model_version"] is None
    )
    ties = [r["lead_id"] for r in rows if r["ai_score"] == top["ai_score"]]
    assert ties == sorted(ties)  # a stable order within a score, so pages never overlap


def test_other_sort_orders(crm):
    ascending = get(crm, LEADS, ALPHA, sort="ai_score", limit=100).json()["data"]
    values = [r["ai_score"] for r in ascending if r["ai_score"] is not None]
    assert values and values == sorted(values) and values[0] <= 2
    newest = get(crm, LEADS, ALPHA, sort="-created_at", limit=100).json()["data"]
    assert [r["created_at"] for r in newest] == sorted((r["created_at"] for r in newest), reverse=True)
    oldest = get(crm, LEADS, ALPHA, sort="created_at", limit=5).json()["data"]
    assert oldest[0]["created_at"] < newest[-1]["created_at"]


def test_lead_filters(crm, platform):
    rows, _ = everything(crm, LEADS, ALPHA, status="won")
    expected = admin_rows(
        platform, "SELECT count(*) AS n FROM core.crm_leads WHERE tenant_id = %s AND status = 'won'", (ALPHA,)
    )[0]["n"]
    assert len(rows) == expected > 0 and {r["status"] for r in rows} == {"won"}
    assert all(r["ai_score"] is None for r in rows)  # closed leads are not scored
    hot = get(crm, LEADS, ALPHA, min_score=90, limit=200).json()
    assert hot["data"] and all(r["ai_score"] >= 90 for r in hot["data"])
    referral = get(crm, LEADS, ALPHA, source="Referral", limit=200).json()["data"]
    assert referral and {r["source"] for r in referral} == {"referral"}
    campaign = admin_rows(
        platform,
        "SELECT campaign_id, count(*) AS n FROM core.crm_leads"
        " WHERE tenant_id = %s AND campaign_id IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 1",
        (ALPHA,),
    )[0]
    by_campaign = get(crm, LEADS, ALPHA, campaign_id=campaign["campaign_id"]).json()
    assert by_campaign["page"]["total"] == campaign["n"]
    window = get(crm, LEADS, ALPHA, created_after="2026-10-01T00:00:00Z", created_before="2026-10-08",
                 limit=200).json()  # fmt: skip
    assert window["data"] and all("2026-10-01" <= r["created_at"] < "2026-10-08" for r in window["data"])


def test_q_finds_leads_by_the_start_of_their_email_or_name(crm, platform):
    lead = admin_rows(
        platform,
        "SELECT email_key, name FROM core.crm_leads WHERE tenant_id = %s ORDER BY lead_id LIMIT 1",
        (ALPHA,),
    )[0]
    by_email = get(crm, LEADS, ALPHA, q=lead["email_key"][:6].upper(), limit=200).json()["data"]
    assert by_email and all(
        r["email"].strip().lower().startswith(lead["email_key"][:6]) or r["name"].lower().startswith(
            lead["email_key"][:6])
        for r in by_email
    )  # fmt: skip
    assert lead["email_key"] in {r["email"].strip().lower() for r in by_email}
    first_name = lead["name"].split()[0]
    by_name = everything(crm, LEADS, ALPHA, q=first_name.lower())[0]
    named = admin_rows(
        platform,
        "SELECT count(*) AS n FROM core.crm_leads"
        " WHERE tenant_id = %s AND (lower(name) LIKE %s OR email_key LIKE %s)",
        (ALPHA, first_name.lower() + "%", first_name.lower() + "%"),
    )[0]["n"]
    assert len(by_name) == named > 0
    assert get(crm, LEADS, ALPHA, q="%").json()["page"]["total"] == 0  # a wildcard is text


@pytest.mark.parametrize(
    "params",
    [
        {"min_score": 101},
        {"min_score": -1},
        {"status": "maybe"},
        {"sort": "email"},
        {"sort": "-ai_score,bogus"},
        {"created_after": "yesterday"},
        {"created_after": "2026-10-08", "created_before": "2026-10-01"},
        {"source": "   "},
        {"limit": 0},
        {"q": "x" * 121},
    ],
)
def test_bad_parameters_are_422(crm, params):
    assert_error(get(crm, LEADS, ALPHA, **params), 422)


def test_a_lead_in_detail_with_history_outcomes_touches_and_every_reason(crm, platform):
    lead = admin_rows(
        platform,
        """SELECT l.lead_id FROM core.crm_leads l WHERE l.tenant_id = %s AND l.source_records > 1
              AND l.ai_score IS NOT NULL
              AND EXISTS (SELECT 1 FROM core.crm_touches t
                           WHERE t.tenant_id = l.tenant_id AND t.lead_id = l.lead_id)
              AND EXISTS (SELECT 1 FROM core.crm_lead_outcomes o
                           WHERE o.tenant_id = l.tenant_id AND o.lead_id = l.lead_id)
            ORDER BY l.lead_id LIMIT 1""",
        (ALPHA,),
    )[0]["lead_id"]
    body = get(crm, f"{LEADS}/{lead}", ALPHA).json()
    assert body["lead_id"] == lead and body["tenant_id"] == ALPHA
    assert [r["action"] for r in body["records"]][0] == "created"
    assert len(body["records"]) == body["source_records"] >= 2 and "merged" in {
        r["action"] for r in body["records"]
    }
    outcomes = admin_rows(
        platform,
        "SELECT outcome FROM core.crm_lead_outcomes WHERE tenant_id = %s AND lead_id = %s"
        " ORDER BY occurred_at",
        (ALPHA, lead),
    )
    assert [o["outcome"] for o in body["outcomes"]] == [o["outcome"] for o in outcomes]
    touches = admin_rows(
        platform,
        "SELECT kind, count(*) AS n, min(touched_at) AS first FROM core.crm_touches"
        " WHERE tenant_id = %s AND lead_id = %s GROUP BY kind",
        (ALPHA, lead),
    )
    assert body["touches"]["by_kind"] == {t["kind"]: t["n"] for t in touches}
    assert body["touches"]["total"] == sum(t["n"] for t in touches)
    assert sum(c["touches"] for c in body["touches"]["campaigns"]) == body["touches"]["total"]
    assert len(body["reasons"]) == 4 and body["top_reasons"] == body["reasons"][:3]
    assert body["probability"] == pytest.approx(body["ai_score"] / 100)
    assert body["model_version"] == 2


def test_unknown_and_other_tenants_leads_are_404(crm, platform):
    assert_error(get(crm, f"{LEADS}/ld_000000000000000000000000", ALPHA), 404)
    assert_error(get(crm, f"{LEADS}/{'x' * 200}", ALPHA), 404)
    beta_lead = admin_rows(
        platform, "SELECT lead_id FROM core.crm_leads WHERE tenant_id = %s LIMIT 1", (BETA,)
    )
    alpha_lead = admin_rows(
        platform, "SELECT lead_id FROM core.crm_leads WHERE tenant_id = %s LIMIT 1", (ALPHA,)
    )
    assert_error(get(crm, f"{LEADS}/{beta_lead[0]['lead_id']}", ALPHA), 404)
    assert_error(get(crm, f"{LEADS}/{alpha_lead[0]['lead_id']}", "coreldove"), 404)
    assert_error(get(crm, f"{LEADS}/{alpha_lead[0]['lead_id']}", "directory"), 404)
    assert get(crm, f"{LEADS}/{alpha_lead[0]['lead_id']}", ALPHA).status_code == 200


def test_tenants_never_see_each_others_leads(crm, platform):
    beta_rows, beta_total = everything(crm, LEADS, BETA)
    assert beta_rows and {r["tenant_id"] for r in beta_rows} == {BETA}
    for key in ("coreldove", "directory"):
        seen = everything(crm, LEADS, key)[0]
        assert not {r["lead_id"] for r in seen} & {r["lead_id"] for r in beta_rows}
        assert {r["tenant_id"] for r in seen} <= {crm_tenant(key)}
    assert get(crm, LEADS, BETA, q=beta_rows[0]["email"].strip()[:8]).json()["page"]["total"] >= 1
    alpha_email = admin_rows(
        platform, "SELECT email_key FROM core.crm_leads WHERE tenant_id = %s LIMIT 1", (ALPHA,)
    )
    found = get(crm, LEADS, BETA, q=alpha_email[0]["email_key"]).json()["data"]
    assert all(r["tenant_id"] == BETA for r in found)


def crm_tenant(key):
    return {"coreldove": "coreldove", "directory": "business_directory"}[key]


def test_the_master_sees_its_clients_leads_in_list_and_detail(crm, platform):
    alpha_lead = admin_rows(
        platform, "SELECT lead_id FROM core.crm_leads WHERE tenant_id = %s ORDER BY lead_id LIMIT 1", (ALPHA,)
    )[0]["lead_id"]
    detail = get(crm, f"{LEADS}/{alpha_lead}", "master")
    assert detail.status_code == 200 and detail.json()["tenant_id"] == ALPHA
    everyone = get(crm, LEADS, "master", limit=200).json()
    total = admin_rows(
        platform, "SELECT count(*) AS n FROM core.crm_leads WHERE tenant_id IN (%s, %s)", (ALPHA, BETA)
    )[0]["n"]
    assert everyone["page"]["total"] >= total
    tenants_seen = {r["tenant_id"] for r in everything(crm, LEADS, "master", min_score=95)[0]}
    assert {ALPHA, BETA} <= tenants_seen
    narrowed = get(crm, LEADS, "master", headers={"X-Tenant-ID": BETA}, limit=200).json()
    assert {r["tenant_id"] for r in narrowed["data"]} == {BETA}


def test_campaign_insights_with_the_tenants_report(crm):
    body = get(crm, INSIGHTS, ALPHA).json()
    assert body["page"]["total"] == len(INSIGHTS_ROWS) == len(body["data"])
    uplifts = [r["uplift"] for r in body["data"]]
    assert uplifts == sorted(uplifts, reverse=True) and body["data"][0]["value"] == "referral"
    report = body["report"]
    assert report["tenant_id"] == ALPHA and report["recommendations"][0]["value"] == "paid_search"
    assert report["narrative"] is None and report["has_narrative"] is False
    channels = get(crm, INSIGHTS, ALPHA, dimension="channel", sort="cost_per_lead").json()["data"]
    assert [r["value"] for r in channels] == ["paid_search", "paid_social", "email"]
    significant = get(crm, INSIGHTS, ALPHA, significant="true").json()["data"]
    assert {r["value"] for r in significant} == {"paid_search", "paid_social", "referral"}
    beta = get(crm, INSIGHTS, BETA).json()
    assert beta["data"] == [] and beta["report"]["narrative"] == "Referrals convert best."
    # CorelDove's own insights (the campaign_insights asset ran in the session), never alpha's.
    assert {r["tenant_id"] for r in get(crm, INSIGHTS, "coreldove", limit=100).json()["data"]} <= {
        "coreldove"
    }
    assert_error(get(crm, INSIGHTS, ALPHA, dimension="city"), 422)
    assert_error(get(crm, INSIGHTS, ALPHA, sort="narrative"), 422)


def test_crm_analytics_read_the_marts(crm, platform):
    funnel = get(crm, FUNNEL, ALPHA).json()
    expected = admin_rows(
        platform, "SELECT source, leads, won FROM marts.crm_lead_funnel WHERE tenant_id = %s", (ALPHA,)
    )
    assert {(r["source"], r["leads"], r["won"]) for r in funnel["data"]} == {
        (e["source"], e["leads"], e["won"]) for e in expected
    }
    assert [r["leads"] for r in funnel["data"]] == sorted((r["leads"] for r in funnel["data"]), reverse=True)
    assert sum(r["leads"] for r in funnel["data"]) == get(crm, LEADS, ALPHA).json()["page"]["total"]
    campaigns = get(crm, CAMPAIGNS, ALPHA, channel="paid_search").json()["data"]
    assert campaigns and {c["channel"] for c in campaigns} == {"paid_search"}
    assert all(c["cost_per_lead"] is None or c["cost_per_lead"] > 0 for c in campaigns)
    models = get(crm, MODELS, ALPHA).json()["data"]
    assert [(m["version"], m["kind"], m["is_current"]) for m in models] == [
        (1, "baseline", False),
        (2, "model", True),
    ]
    assert models[1]["auc_change"] == pytest.approx(0.17)
    assert get(crm, MODELS, BETA).json()["data"] == []
    assert {r["tenant_id"] for r in get(crm, FUNNEL, BETA).json()["data"]} == {BETA}
    assert_error(get(crm, MODELS, ALPHA, status="best"), 422)
    assert_error(get(crm, CAMPAIGNS, ALPHA, sort="-secret"), 422)


def test_the_default_sort_reads_the_score_index(crm, platform):
    with platform.admin() as conn:
        conn.execute("ANALYZE core.crm_leads")
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                """EXPLAIN SELECT lead_id FROM core.crm_leads t WHERE t.tenant_id = %s
                    ORDER BY ai_score DESC NULLS LAST, t.tenant_id, t.lead_id LIMIT 50""",
                (ALPHA,),
            )
        )
    assert "crm_leads_score_idx" in plan and "Sort" not in plan, plan


def test_created_window_in_utc(crm):
    day = datetime(2026, 10, 1, tzinfo=UTC)
    naive = get(crm, LEADS, ALPHA, created_after="2026-10-01T00:00:00", created_before="2026-10-02T00:00:00")
    aware = get(
        crm, LEADS, ALPHA, created_after=day.isoformat(), created_before=(day + timedelta(days=1)).isoformat()
    )
    assert naive.json()["page"]["total"] == aware.json()["page"]["total"] > 0
