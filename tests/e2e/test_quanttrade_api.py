"""QuantTrade routes over real HTTP against the real Postgres: the desk-only gate, the backtest and
strategy reads, human decisions through core.decide_strategy with their audit rows, the marts,
and the optional client-address allow-list.

QuantTrade and a second trading tenant of the tests' own get the stand-in stages of
tests/e2e/trading_stand_ins.py (written as the writer, as the trading assets would), and the
trading marts are rebuilt with dbt (models and tests) on top. Expected answers are read from the
warehouse as the admin sees it."""

import json
import os
import subprocess

import httpx
import psycopg
import pytest
from dagster import AssetKey

from orchestration import tenants
from orchestration.processes import api_command, free_port, stop, wait_for_http
from orchestration.runtime import DBT_EXECUTABLE, DBT_PROJECT_DIR
from orchestration.settings import ENV_QUANTTRADE_ALLOWED_IPS, PROJECT_ROOT
from orchestration.warehouse import WarehouseResource
from serving import keys
from tests.e2e.conftest import Api
from tests.e2e.test_api import assert_error, get
from tests.e2e.trading_stand_ins import stand_in_candidates, write_stand_in_pipeline

DESK, BETA = "quanttrade", "qt_api_beta"
BACKTESTS = "/api/brain/quanttrade/backtests"
STRATEGIES = "/api/brain/quanttrade/strategies"
BOARD = "/api/brain/analytics/quanttrade"
FUNNEL = "/api/brain/analytics/quanttrade/funnel"
READS = (BACKTESTS, STRATEGIES, BOARD, FUNNEL)
MARTS = ("quanttrade_strategy_leaderboard", "quanttrade_validation_funnel")
EXPECTED = {
    "failed_backtest": ("backtest", "failed"),
    "failed_forward": ("forward_test", "failed"),
    "failed_risk": ("risk", "failed"),
    "queued": ("approval", "pending"),
}
QUEUED = [c.candidate_id for c in stand_in_candidates() if c.outcome == "queued"]


@pytest.fixture(scope="module")
def desk(api, platform, tmp_path_factory):
    issued = {}
    with platform.admin() as conn:
        conn.execute(
            """INSERT INTO core.tenants (tenant_id, display_name, kind, parent_tenant_id, tier, domains)
               VALUES (%s, %s, 'client', 'bizoholic', 'starter', '{trading}')
               ON CONFLICT (tenant_id) DO UPDATE SET status = 'active', offboarded_at = NULL""",
            (BETA, BETA),
        )
        for name, tenant, role in [
            ("desk", DESK, "reader"),
            ("approver", DESK, "approver"),
            ("beta", BETA, "reader"),
            ("beta_approver", BETA, "approver"),
            ("master_approver", "bizoholic", "approver"),
        ]:
            issued[name], _ = keys.create(conn, tenant, role, f"e2e {name}")
    warehouse = WarehouseResource(database_url=platform.writer_url)
    for tenant in (DESK, BETA):
        with warehouse.tenant_transaction(tenant) as conn:
            write_stand_in_pipeline(conn, tenant)
    target = tmp_path_factory.mktemp("dbt_trading")
    proc = subprocess.run(
        [DBT_EXECUTABLE, "build", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
         str(DBT_PROJECT_DIR), "--target-path", str(target), "--select", "stg_trading_backtests+",
         "stg_trading_forward_tests+", "stg_trading_risk_assessments+", "stg_trading_approvals+"],
        capture_output=True, text=True, env=os.environ.copy(), cwd=DBT_PROJECT_DIR, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    results = json.loads((target / "run_results.json").read_text())["results"]
    ran = {r["unique_id"].split(".")[-1]: r["status"] for r in results}
    assert {"quanttrade_strategy_leaderboard", "assert_quanttrade_funnel_matches_leaderboard"} <= set(ran)
    assert set(ran.values()) <= {"success", "pass"}, ran
    yield Api(api.url, {**api.keys, **issued})
    for tenant in (DESK, BETA):
        with warehouse.tenant_transaction(tenant) as conn:
            for table in ("trading_approvals", "trading_risk_assessments", "trading_forward_tests",
                          "trading_backtests"):  # fmt: skip
                conn.execute(f"DELETE FROM core.{table} WHERE candidate_id LIKE 'st.%%'")
    with platform.admin() as conn:
        tenants.offboard(conn, BETA)


def admin_rows(platform, sql, params=()):
    with platform.admin() as conn:
        conn.row_factory = psycopg.rows.dict_row
        return conn.execute(sql, params or None).fetchall()


def post(api, path, key, body=None, headers=None):
    headers = {"X-API-Key": api.keys[key], **(headers or {})}
    return httpx.post(f"{api.url}{path}", headers=headers, json=body, timeout=30)


def everything(api, path, key, **params):
    rows, offset = [], 0
    while True:
        body = get(api, path, key, limit=50, offset=offset, **params).json()
        rows += body["data"]
        if body["page"]["next_offset"] is None:
            return rows, body["page"]["total"]
        offset = body["page"]["next_offset"]


def test_the_session_built_the_trading_marts(dagster_instance, materialized):
    for mart in MARTS:
        assert dagster_instance.get_latest_materialization_event(AssetKey(["marts", mart])) is not None


def test_backtests_page_filter_and_sort(desk, platform):
    expected = admin_rows(
        platform, "SELECT candidate_id, passed FROM core.trading_backtests WHERE tenant_id = %s", (DESK,)
    )
    rows, total = everything(desk, BACKTESTS, "desk")
    assert total == len(rows) == len(expected) >= 12
    assert sorted(r["candidate_id"] for r in rows) == sorted(e["candidate_id"] for e in expected)
    assert {r["tenant_id"] for r in rows} == {DESK}
    sharpes = [r["sharpe"] for r in rows if r["sharpe"] is not None]
    assert sharpes == sorted(sharpes, reverse=True)
    # The real assets' ~400 candidates share the desk with the stand-ins: read every page.
    failed, _ = everything(desk, BACKTESTS, "desk", passed="false")
    assert {r["candidate_id"] for r in failed} == {e["candidate_id"] for e in expected if not e["passed"]}
    assert all(r["fail_reasons"] for r in failed)
    btc = get(desk, BACKTESTS, "desk", symbol="btc-usd", strategy="MA_Crossover", limit=200).json()["data"]
    assert btc and {(r["symbol"], r["strategy"]) for r in btc} == {("BTC-USD", "ma_crossover")}
    by_trades = get(desk, BACKTESTS, "desk", sort="trades,symbol", limit=200).json()["data"]
    assert [r["trades"] for r in by_trades] == sorted(r["trades"] for r in by_trades)


def test_strategies_show_each_stage_with_reasons(desk):
    rows, total = everything(desk, STRATEGIES, "desk")
    ours = {r["candidate_id"]: r for r in rows if r["candidate_id"].startswith("st.")}
    assert len(ours) == 12 and total == len(rows)
    for c in stand_in_candidates():
        row = ours[c.candidate_id]
        stage, status = EXPECTED[c.outcome]
        assert (row["stage"], row["status"]) == (stage, status), c
        assert row["backtest"]["passed"] == (c.outcome != "failed_backtest")
    forward_failed = get(desk, STRATEGIES, "desk", stage="forward_test").json()["data"]
    assert forward_failed and all(
        not r["forward_test"]["passed"] and r["forward_test"]["fail_reasons"] and r["risk"] is None
        for r in forward_failed
    )
    assert all(r["performance_gap"] == r["forward_test"]["performance_gap"] for r in forward_failed)
    risk_failed = get(desk, STRATEGIES, "desk", stage="risk", status="failed").json()["data"]
    assert risk_failed and all(r["risk"]["breaches"] and r["risk"]["limits"] for r in risk_failed)
    backtest_failed = get(desk, STRATEGIES, "desk", stage="backtest").json()["data"]
    assert all(r["forward_test"] is None and r["status"] == "failed" for r in backtest_failed)
    gaps = get(desk, STRATEGIES, "desk", sort="performance_gap", limit=200).json()["data"]
    values = [r["performance_gap"] for r in gaps if r["performance_gap"] is not None]
    assert values and values == sorted(values)


def test_marts_rank_and_funnel_the_candidates(desk, platform):
    board, total = everything(desk, BOARD, "desk")
    assert total == len(board) == len(everything(desk, BACKTESTS, "desk")[0])
    assert [r["rank"] for r in board] == list(range(1, total + 1))
    scored = [r["score"] for r in board if r["score"] is not None]
    assert scored == sorted(scored, reverse=True) and board[0]["score"] == max(scored)
    assert all(r["score"] == r["forward_sharpe"] for r in board)
    funnel = get(desk, FUNNEL, "desk").json()["data"]
    overall, per_strategy = funnel[0], funnel[1:]
    assert (
        overall["strategy"] == "all" and overall["is_total"] and not any(f["is_total"] for f in per_strategy)
    )
    assert overall["candidates"] == total == sum(f["candidates"] for f in per_strategy)
    counts = admin_rows(
        platform,
        """SELECT count(*) FILTER (WHERE b.passed) AS bt, count(f.*) FILTER (WHERE f.passed) AS fw,
                  count(r.*) FILTER (WHERE r.passed) AS rk,
                  percentile_cont(0.5) WITHIN GROUP (ORDER BY f.performance_gap) AS gap,
                  avg((f.performance_gap <= 0.15)::int) AS within
             FROM core.trading_backtests b
             LEFT JOIN core.trading_forward_tests f USING (tenant_id, candidate_id)
             LEFT JOIN core.trading_risk_assessments r USING (tenant_id, candidate_id)
            WHERE b.tenant_id = %s""",
        (DESK,),
    )[0]
    assert (overall["passed_backtest"], overall["passed_forward"], overall["passed_risk"]) == (
        counts["bt"], counts["fw"], counts["rk"])  # fmt: skip
    assert overall["median_gap"] == pytest.approx(counts["gap"], abs=1e-4)
    assert overall["share_within_target"] == pytest.approx(float(counts["within"]), abs=1e-4)
    assert overall["backtest_pass_rate"] == pytest.approx(counts["bt"] / total, abs=1e-4)
    momentum = get(desk, FUNNEL, "desk", strategy="Momentum").json()["data"]
    assert len(momentum) == 1 and momentum[0]["strategy"] == "momentum" and momentum[0]["candidates"] >= 3
    assert get(desk, FUNNEL, "desk", strategy="all").json()["data"] == [overall]
    assert {r["tenant_id"] for r in get(desk, BOARD, "beta", limit=200).json()["data"]} == {BETA}
    assert_error(get(desk, BOARD, "desk", sort="-secret"), 422)


def test_only_the_trading_desk_and_the_master_get_in(desk):
    for key in ("coreldove", "thrillring", "directory"):
        for path in (*READS, f"{STRATEGIES}/{QUEUED[0]}"):
            body = assert_error(get(desk, path, key), 403)
            assert "trading desk" in body["message"]
        assert_error(post(desk, f"{STRATEGIES}/{QUEUED[0]}/approve", key, {"reason": "looks fine"}), 403)
    assert_error(get(desk, BACKTESTS, "master", headers={"X-Tenant-ID": "coreldove"}), 403)
    assert_error(get(desk, BACKTESTS), 401)
    everyone = everything(desk, STRATEGIES, "master")[0]
    assert {DESK, BETA} <= {r["tenant_id"] for r in everyone}
    narrowed = everything(desk, STRATEGIES, "master", headers={"X-Tenant-ID": DESK})[0]
    assert narrowed and {r["tenant_id"] for r in narrowed} == {DESK}
    for path in READS:
        beta = get(desk, path, "beta", limit=200).json()
        assert beta["data"] and {r["tenant_id"] for r in beta["data"]} == {BETA}
    detail = get(desk, f"{STRATEGIES}/{QUEUED[0]}", "beta").json()
    assert detail["tenant_id"] == BETA


def test_approve_and_reject_are_audited(desk, platform):
    approved, rejected = QUEUED[0], QUEUED[1]
    response = post(desk, f"{STRATEGIES}/{approved}/approve", "approver", {"reason": "  Solid forward run. "})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "approved" and body["reason"] == "Solid forward run." and body["decision_id"]
    response = post(
        desk, f"{STRATEGIES}/{rejected}/reject", "approver", {"reason": "Too correlated with BTC"}
    )
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    key_id = keys.parse_key(desk.keys["approver"]).key_id
    audit = admin_rows(
        platform,
        """SELECT candidate_id, decision, reason, approver, approver_via, client_ip, risk_snapshot
             FROM core.trading_decisions WHERE tenant_id = %s AND candidate_id IN (%s, %s)
            ORDER BY decision_id""",
        (DESK, approved, rejected),
    )
    assert [(a["candidate_id"], a["decision"], a["reason"]) for a in audit[-2:]] == [
        (approved, "approve", "Solid forward run."),
        (rejected, "reject", "Too correlated with BTC"),
    ]
    assert {(a["approver"], a["approver_via"], a["client_ip"]) for a in audit[-2:]} == {
        (key_id, "api_key", "127.0.0.1")
    }
    assert (
        audit[-1]["risk_snapshot"]["passed"] is True
        and audit[-1]["risk_snapshot"]["candidate_id"] == rejected
    )
    detail = get(desk, f"{STRATEGIES}/{approved}", "desk").json()
    assert detail["status"] == "approved" and detail["decided_by"] == key_id
    assert detail["status_reason"] == "Solid forward run."
    assert [d["decision"] for d in detail["decisions"]][-1] == "approve"
    assert detail["decisions"][-1]["risk_snapshot"]["passed"] is True
    statuses = {
        r["candidate_id"]: r["status"] for r in get(desk, STRATEGIES, "desk", stage="approval").json()["data"]
    }
    assert statuses[approved] == "approved" and statuses[rejected] == "rejected"
    # The second trading tenant's queue is its own: the same candidate is still pending there.
    assert get(desk, f"{STRATEGIES}/{approved}", "beta").json()["status"] == "pending"
    again = assert_error(
        post(desk, f"{STRATEGIES}/{approved}/reject", "approver", {"reason": "changed mind"}), 409
    )
    assert "not pending" in again["message"] and again["code"] == "conflict"
    beta = post(desk, f"{STRATEGIES}/{approved}/reject", "beta_approver", {"reason": "not for this book"})
    assert beta.status_code == 200 and beta.json()["status"] == "rejected"
    assert get(desk, f"{STRATEGIES}/{approved}", "desk").json()["status"] == "approved"


def test_who_may_decide_and_what(desk, platform):
    pending = QUEUED[2]
    path = f"{STRATEGIES}/{pending}/approve"
    reader = assert_error(post(desk, path, "desk", {"reason": "looks fine"}), 403)
    assert "approver" in reader["message"]
    assert_error(post(desk, path, "master_approver", {"reason": "looks fine"}), 403)
    assert_error(post(desk, path, "master_approver", {"reason": "looks fine"}, {"X-Tenant-ID": DESK}), 403)
    assert_error(post(desk, path, "master", {"reason": "looks fine"}, {"X-Tenant-ID": DESK}), 403)
    for body in (
        {"reason": "   "},
        {"reason": "ok"},
        {},
        {"reason": "x" * 2001},
        {"reason": "a\x00bcd"},
        None,
    ):
        assert_error(post(desk, path, "approver", body), 422)
    assert_error(post(desk, f"{STRATEGIES}/st.no_such:candidate=1:BTC-USD/approve", "approver",
                      {"reason": "looks fine"}), 404)  # fmt: skip
    assert_error(post(desk, f"{STRATEGIES}/bad%00id/approve", "approver", {"reason": "looks fine"}), 404)
    assert_error(get(desk, f"{STRATEGIES}/st.no_such:candidate=1:BTC-USD", "desk"), 404)
    # The risk stage re-ran and the candidate no longer passes: approving it now is a conflict,
    # rejecting it is still allowed.
    with WarehouseResource(database_url=platform.writer_url).tenant_transaction(DESK) as conn:
        conn.execute(
            """UPDATE core.trading_risk_assessments
                  SET passed = false, breaches = '{"max_drawdown 0.31 > 0.25"}'
                WHERE tenant_id = %s AND candidate_id = %s""",
            (DESK, pending),
        )
    stale = assert_error(post(desk, path, "approver", {"reason": "looks fine"}), 409)
    assert "risk" in stale["message"]
    assert get(desk, f"{STRATEGIES}/{pending}", "desk").json()["status"] == "pending"
    # ...and so is one whose forward test has failed on a re-run while its old risk row passes.
    with WarehouseResource(database_url=platform.writer_url).tenant_transaction(DESK) as conn:
        for table, passed in (("trading_risk_assessments", True), ("trading_forward_tests", False)):
            conn.execute(
                f"UPDATE core.{table} SET passed = %s WHERE tenant_id = %s AND candidate_id = %s",
                (passed, DESK, pending),
            )
    stale = assert_error(post(desk, path, "approver", {"reason": "looks fine"}), 409)
    assert "forward test" in stale["message"]
    rejected = post(desk, f"{STRATEGIES}/{pending}/reject", "approver", {"reason": "risk failed on re-run"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (BACKTESTS, {"sort": "secret"}),
        (BACKTESTS, {"passed": "maybe"}),
        (BACKTESTS, {"limit": 0}),
        (BACKTESTS, {"offset": -1}),
        (BACKTESTS, {"symbol": "  "}),
        (STRATEGIES, {"status": "live"}),
        (STRATEGIES, {"stage": "paper"}),
        (STRATEGIES, {"sort": "-sharpe,bogus"}),
        (BOARD, {"limit": 201}),
        (FUNNEL, {"sort": "built_at"}),
    ],
)
def test_bad_parameters_are_422(desk, path, params):
    assert_error(get(desk, path, "desk", **params), 422)


def _server(allowed: str, errors=subprocess.DEVNULL) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, ENV_QUANTTRADE_ALLOWED_IPS: allowed}
    proc = subprocess.Popen(api_command("127.0.0.1", port), cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=errors, text=True)  # fmt: skip
    return proc, f"http://127.0.0.1:{port}"


def test_the_address_allow_list(desk):
    servers = {
        "closed": _server("10.0.0.0/8, 2001:db8::/32"),
        "open": _server("192.168.1.7,127.0.0.0/8,::1"),
        "broken": _server("10.0.0.300/8", subprocess.PIPE),
    }
    try:
        broken = servers["broken"][0]
        assert broken.wait(timeout=120) != 0
        assert f"{ENV_QUANTTRADE_ALLOWED_IPS}: '10.0.0.300/8' is not an IP address or CIDR block" in (
            broken.stderr.read()
        )
        for name in ("closed", "open"):
            proc, url = servers[name]
            assert wait_for_http(f"{url}/health", proc), name
        closed = Api(servers["closed"][1], desk.keys)
        for path in (*READS, f"{STRATEGIES}/{QUEUED[3]}"):
            body = assert_error(get(closed, path, "desk"), 403)
            assert "client address" in body["message"] and "10.0.0.0" not in body["message"]
        assert_error(post(closed, f"{STRATEGIES}/{QUEUED[3]}/approve", "approver", {"reason": "fine"}), 403)
        assert get(closed, "/api/brain/tenants/me", "desk").status_code == 200  # only the desk's routes
        opened = Api(servers["open"][1], desk.keys)
        assert get(opened, BACKTESTS, "desk").status_code == 200
        assert "trading desk" in assert_error(get(opened, BACKTESTS, "coreldove"), 403)["message"]
    finally:
        for proc, _ in servers.values():
            stop(proc)


def test_a_strategy_the_real_assets_queued_is_approved_through_the_api(desk, platform, materialized):
    pending = admin_rows(
        platform,
        """SELECT candidate_id FROM core.trading_approvals
            WHERE tenant_id = %s AND status = 'pending' AND candidate_id NOT LIKE 'st.%%'
            ORDER BY candidate_id LIMIT 1""",
        (DESK,),
    )
    assert pending, "the session's strategy_approvals run queued no strategy for the desk"
    candidate = pending[0]["candidate_id"]
    response = post(desk, f"{STRATEGIES}/{candidate}/approve", "approver", {"reason": "Forward run held up"})
    assert response.status_code == 200, response.text
    detail = get(desk, f"{STRATEGIES}/{candidate}", "desk").json()
    assert (detail["stage"], detail["status"]) == ("approval", "approved")
    assert detail["backtest"]["passed"] and detail["forward_test"]["passed"] and detail["risk"]["passed"]
    assert detail["decisions"][-1]["reason"] == "Forward run held up"
    assert detail["decisions"][-1]["risk_snapshot"]["candidate_id"] == candidate
