"""The CRM dbt marts against the real Postgres: built from a seeded synthetic history, they agree
with figures computed here from the history itself, their dbt tests pass (and catch a bad row),
and they stay tenant-isolated for the serving role."""

import json
import os
import statistics
import subprocess
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from psycopg.types.json import Jsonb

from ml.crm.emails import email_key
from ml.crm.synthetic import generate_history
from orchestration import tenants
from orchestration.crm_seed import load_history
from orchestration.runtime import DBT_EXECUTABLE, DBT_PROJECT_DIR
from orchestration.warehouse import WarehouseResource, set_tenant

ALPHA, BETA = "crm_marts_alpha", "crm_marts_beta"
START, END = date(2026, 8, 1), date(2026, 10, 1)
CRM_SELECTION = ["stg_crm_leads+", "stg_crm_lead_outcomes+", "stg_crm_campaigns+", "stg_crm_model_registry+"]


def dbt(command: str, target_path, *select: str):
    proc = subprocess.run(
        [DBT_EXECUTABLE, command, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
         str(DBT_PROJECT_DIR), "--target-path", str(target_path), "--select", *select],
        capture_output=True, text=True, env=os.environ.copy(), cwd=DBT_PROJECT_DIR, timeout=600,
    )  # fmt: skip
    results = json.loads((target_path / "run_results.json").read_text())["results"]
    return proc.returncode, {r["unique_id"].split(".")[-1]: r["status"] for r in results}


def registry_row(version, kind, status, roc_auc, baseline, trained_at):
    """A registry version as the lead_scoring_model asset records it (this stands in for it)."""
    return {
        "version": version,
        "kind": kind,
        "algorithm": "logistic_regression" if kind == "model" else "source_conversion_rate",
        "features": Jsonb(["corporate_email", "phone_present", "early_touches"]),
        "params": Jsonb({"C": 1.0}),
        "metrics": Jsonb(
            {"roc_auc": roc_auc, "pr_auc": roc_auc - 0.3, "brier": 0.12, "baseline_roc_auc": baseline}
        ),  # fmt: skip
        "holdout": Jsonb({"cutoff": "2026-09-01", "rows": 300, "positives": 40}),
        "training_rows": 900 + 100 * version,
        "outcomes_seen": 400 + 100 * version,
        "status": status,
        "decision": f"v{version}: {status}",
        "trained_at": trained_at,
    }


REGISTRY = [
    registry_row(1, "baseline", "retired", 0.61, 0.61, datetime(2026, 9, 1, tzinfo=UTC)),
    registry_row(2, "model", "champion", 0.74, 0.62, datetime(2026, 9, 15, tzinfo=UTC)),
    registry_row(3, "model", "rejected", 0.71, 0.62, datetime(2026, 9, 29, tzinfo=UTC)),
]


def insert(conn, tenant, table, rows):
    for row in rows:
        columns = ["tenant_id", *row]
        conn.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
            [tenant, *row.values()],
        )


@pytest.fixture(scope="module")
def built(platform, tmp_path_factory):
    with platform.admin() as conn:
        for tenant in (ALPHA, BETA):
            conn.execute(
                """INSERT INTO core.tenants (tenant_id, display_name, kind, parent_tenant_id, tier, domains)
                   VALUES (%s, %s, 'client', 'bizoholic', 'starter', '{crm}')
                   ON CONFLICT (tenant_id) DO NOTHING""",
                (tenant, tenant),
            )
    warehouse = WarehouseResource(database_url=platform.writer_url)
    histories = {
        ALPHA: generate_history(ALPHA, START, END, leads_per_day=20),
        BETA: generate_history(BETA, START, END, leads_per_day=6),
    }
    for tenant, history in histories.items():
        with warehouse.tenant_transaction(tenant) as conn:
            load_history(conn, history)
            conn.execute("DELETE FROM core.crm_model_registry WHERE tenant_id = %s", (tenant,))
            if tenant == ALPHA:
                insert(conn, tenant, "core.crm_model_registry", REGISTRY)
    code, statuses = dbt("build", tmp_path_factory.mktemp("dbt_crm"), *CRM_SELECTION)
    assert code == 0, statuses
    yield histories, statuses
    with platform.admin() as conn:
        for tenant in (ALPHA, BETA):
            tenants.offboard(conn, tenant)


def mart(platform, name, tenant):
    with platform.admin() as conn:
        conn.row_factory = psycopg.rows.dict_row
        return conn.execute(f"SELECT * FROM marts.{name} WHERE tenant_id = %s", (tenant,)).fetchall()


def expected_funnel(history):
    """Per source: leads, won, lost, qualified and median days to win, from the history alone."""
    first: dict[str, tuple] = {}
    for record in history.records:
        key = email_key(record.email)
        if key is not None and key not in first:
            first[key] = (record.source, record.created_at)
    outcomes = defaultdict(dict)
    for o in history.outcomes:
        outcomes[o.email_key][o.outcome] = o.occurred_at
    funnel = defaultdict(Counter)
    days = defaultdict(list)
    for key, (source, created) in first.items():
        seen = outcomes.get(key, {})
        funnel[source]["leads"] += 1
        funnel[source]["won"] += "won" in seen
        funnel[source]["lost"] += "lost" in seen and "won" not in seen
        funnel[source]["qualified"] += "qualified" in seen or "won" in seen
        if "won" in seen:
            days[source].append((seen["won"] - created) / timedelta(days=1))
    return funnel, {s: statistics.median(d) for s, d in days.items()}


def test_the_crm_marts_and_their_dbt_tests_build(built):
    _, statuses = built
    assert {"crm_lead_funnel", "crm_campaign_performance", "crm_model_performance"} <= set(statuses)
    assert {"assert_crm_funnel_matches_leads", "assert_crm_campaign_performance_matches_sources",
            "assert_crm_model_performance_one_champion"} <= set(statuses)  # fmt: skip
    assert set(statuses.values()) <= {"success", "pass"}


def test_the_funnel_matches_the_history(platform, built):
    histories, _ = built
    funnel, median_days = expected_funnel(histories[ALPHA])
    rows = {r["source"]: r for r in mart(platform, "crm_lead_funnel", ALPHA)}
    assert set(rows) == set(funnel) and len(rows) >= 5
    for source, counts in funnel.items():
        row = rows[source]
        assert (row["leads"], row["won"], row["lost"], row["qualified"]) == (
            counts["leads"], counts["won"], counts["lost"], counts["qualified"],
        ), source  # fmt: skip
        assert row["open"] == counts["leads"] - counts["won"] - counts["lost"]
        assert row["win_rate"] == pytest.approx(counts["won"] / counts["leads"], abs=1e-4)
        if source in median_days:
            assert row["median_days_to_win"] == pytest.approx(median_days[source], abs=0.01)
        else:
            assert row["median_days_to_win"] is None
    # The planted signal shows in the funnel: referrals win more often than cold outbound.
    assert rows["referral"]["win_rate"] > rows["paid_social"]["win_rate"]


def test_campaign_performance_matches_the_history(platform, built):
    histories, _ = built
    history = histories[ALPHA]
    spend = defaultdict(float)
    clicks = Counter()
    impressions = Counter()
    for day in history.campaign_days:
        spend[day.campaign_id] += float(day.spend)
        clicks[day.campaign_id] += day.clicks
        impressions[day.campaign_id] += day.impressions
    leads = Counter()
    seen = set()
    for record in history.records:
        key = email_key(record.email)
        if key and key not in seen:
            seen.add(key)
            if record.campaign_id:
                leads[record.campaign_id] += 1
    rows = {r["campaign_id"]: r for r in mart(platform, "crm_campaign_performance", ALPHA)}
    assert set(rows) == {c.campaign_id for c in history.campaigns}
    for campaign in history.campaigns:
        row = rows[campaign.campaign_id]
        assert (row["channel"], row["segment"]) == (campaign.channel, campaign.segment)
        assert float(row["spend"]) == pytest.approx(spend[campaign.campaign_id], abs=0.01)
        assert row["leads"] == leads[campaign.campaign_id]
        if impressions[campaign.campaign_id]:
            assert row["ctr"] == pytest.approx(
                clicks[campaign.campaign_id] / impressions[campaign.campaign_id], abs=1e-5
            )
        if row["leads"]:
            assert float(row["cost_per_lead"]) == pytest.approx(float(row["spend"]) / row["leads"], abs=0.01)
    assert sum(r["leads"] for r in rows.values()) == sum(leads.values()) > 0


def test_model_performance_shows_each_version_against_the_champion_before_it(platform, built):
    rows = sorted(mart(platform, "crm_model_performance", ALPHA), key=lambda r: r["version"])
    assert [(r["version"], r["kind"], r["status"], r["is_current"]) for r in rows] == [
        (1, "baseline", "retired", False), (2, "model", "champion", True), (3, "model", "rejected", False),
    ]  # fmt: skip
    assert rows[0]["auc_change"] is None
    assert rows[1]["auc_change"] == pytest.approx(0.74 - 0.61)
    assert rows[2]["auc_change"] == pytest.approx(0.71 - 0.74)  # compared with the champion, v2
    assert rows[1]["auc_over_baseline"] == pytest.approx(0.12)
    assert rows[1]["holdout_rows"] == 300 and rows[1]["feature_count"] == 3
    assert mart(platform, "crm_model_performance", BETA) == []


def test_the_marts_are_tenant_isolated_for_the_serving_role(platform, built):
    with psycopg.connect(platform.serving_url) as conn:
        for name in ("crm_lead_funnel", "crm_campaign_performance"):
            with conn.transaction():
                set_tenant(conn, BETA)
                seen = conn.execute(f"SELECT DISTINCT tenant_id FROM marts.{name}").fetchall()
            assert seen == [(BETA,)]
        assert conn.execute("SELECT count(*) FROM marts.crm_lead_funnel").fetchone()[0] == 0


def test_a_wrong_mart_row_fails_the_funnel_test(platform, built, tmp_path):
    with platform.admin() as conn:
        conn.execute(
            "UPDATE marts.crm_lead_funnel SET won = won + 1 WHERE tenant_id = %s AND source = 'referral'",
            (ALPHA,),
        )
    code, statuses = dbt("test", tmp_path, "crm_lead_funnel")
    assert code != 0 and statuses["assert_crm_funnel_matches_leads"] == "fail"
    code, statuses = dbt("build", tmp_path / "rebuilt", "crm_lead_funnel+")
    assert code == 0 and statuses["assert_crm_funnel_matches_leads"] == "pass"
