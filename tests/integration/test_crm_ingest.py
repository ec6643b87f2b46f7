"""CRM ingestion end to end on the real Postgres and Dagster instance: BottleCRM answers replayed
through the real client, real files in a drop folder, the real sensor evaluated tick by tick."""

import os
import shutil
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest
from dagster import AssetKey, AssetRecordsFilter, build_sensor_context, materialize
from psycopg.types.json import Jsonb

from assets import crm
from ml.crm.emails import email_key
from ml.crm.synthetic import generate_history
from orchestration import tenants
from orchestration.crm_source import CrmLeadsResource
from orchestration.file_drops import DropFolderResource, file_sha256
from orchestration.settings import PROJECT_ROOT
from orchestration.warehouse import WarehouseResource, set_tenant
from sensors.file_drops import crm_file_drops_sensor

FIXTURES = PROJECT_ROOT / "fixtures"
EDGE_FIXTURES = FIXTURES / "crm_edge"
MALFORMED = FIXTURES / "drops_malformed" / "crm_edge"
BUNDLED = FIXTURES / "drops" / "business_directory"
EDGE = "crm_edge"
EDGE_URL = "https://crm.edge.example/api/"
START, END = date(2026, 6, 1), date(2026, 11, 25)


def _query(platform, tenant, sql, params=()):
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, tenant)
        return conn.execute(sql, params).fetchall()


def _own(platform, tenant, sql):
    """`sql` over the tenant's own rows: a master tenant's session also sees its clients' rows
    (RLS), so each table is narrowed to the tenant first."""
    for table in (
        "crm_leads",
        "crm_lead_records",
        "crm_lead_outcomes",
        "crm_campaign_daily",
        "crm_touches",
        "crm_api_responses",
    ):
        schema = "raw" if table == "crm_api_responses" else "core"
        sql = sql.replace(f"{schema}.{table}", f"(SELECT * FROM {schema}.{table} WHERE tenant_id = %(t)s)")
    return _query(platform, tenant, sql, {"t": tenant})


def _metadata(instance, key, tenant):
    """The latest materialization's metadata, with the run that made it as `run_id`."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(key), asset_partitions=[tenant]), limit=1
    ).records
    entry = records[0].event_log_entry
    return {"run_id": entry.run_id, **{k: v.value for k, v in entry.asset_materialization.metadata.items()}}


def _failure_message(result) -> str:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return failure.event_specific_data.error.message


def _set_api_url(platform, tenant, url):
    with platform.admin() as conn:
        conn.execute(
            "UPDATE core.tenants SET settings = jsonb_set(settings, '{crm}', %s, true) WHERE tenant_id = %s",
            (Jsonb({"api_url": url} if url else {}), tenant),
        )


@pytest.fixture(scope="module")
def edge(platform, dagster_instance):
    with platform.admin() as conn:
        conn.execute(
            """INSERT INTO core.tenants (tenant_id, display_name, kind, parent_tenant_id, tier, domains)
               VALUES (%s, 'CRM edge cases', 'client', 'bizoholic', 'starter', '{crm}')
               ON CONFLICT (tenant_id) DO NOTHING""",
            (EDGE,),
        )
    dagster_instance.add_dynamic_partitions(crm.crm_partitions.name, [EDGE])
    yield EDGE
    with platform.admin() as conn:
        tenants.offboard(conn, EDGE)
    dagster_instance.delete_dynamic_partition(crm.crm_partitions.name, EDGE)


@pytest.fixture
def drops(tmp_path) -> DropFolderResource:
    return DropFolderResource(root=str(tmp_path / "drops"), settle_s=5)


def _drop(drops, tenant, kind, source: Path, name=None, age_s=60):
    inbox = drops.inbox(tenant, kind)
    inbox.mkdir(parents=True, exist_ok=True)
    target = inbox / (name or source.name)
    shutil.copyfile(source, target)
    stamp = time.time() - age_s
    os.utime(target, (stamp, stamp))
    return target


def _run(platform, instance, tenant, drops, kinds=("leads", "outcomes"), *, client=None, file=None):
    assets = {
        "leads": [crm.crm_leads, crm.crm_leads_valid],
        "outcomes": [crm.crm_lead_outcomes, crm.crm_lead_outcomes_valid],
        "campaigns": [crm.crm_campaigns],
        "touches": [crm.crm_touches],
    }
    run_config = None
    if file is not None:
        run_config = {"ops": {crm.DROP_ASSETS[kinds[0]]: {"config": {"file": str(file)}}}}
    return materialize(
        [a for k in kinds for a in assets[k]],
        partition_key=tenant,
        instance=instance,
        resources={
            "warehouse": WarehouseResource(database_url=platform.writer_url),
            "drops": drops,
            "crm_api_client": client or CrmLeadsResource(fixtures_dir=str(EDGE_FIXTURES), min_interval_s=0),
        },
        run_config=run_config,
        raise_on_error=False,
    )


# --- the demo tenants -----------------------------------------------------------------------------


@pytest.mark.parametrize("tenant", ["coreldove", "bizoholic", "business_directory"])
def test_demo_history_is_ingested_whole_and_deduplicated(platform, materialized, tenant):
    history = generate_history(
        tenant, START, END, invalid_email_rate=0.0 if tenant == "business_directory" else 0.004
    )
    keys = Counter(email_key(r.email) for r in history.records)
    invalid = keys.pop(None, 0)
    leads = _own(platform, tenant, "SELECT count(*), sum(source_records) FROM core.crm_leads")[0]
    assert leads == (len(keys), len(history.records) - invalid)  # one lead per person, every record counted
    actions = dict(_own(platform, tenant, "SELECT action, count(*) FROM core.crm_lead_records GROUP BY 1"))
    assert actions.get("created") == len(keys)
    assert actions.get("merged", 0) == sum(n - 1 for n in keys.values()) > 0
    assert actions.get("rejected", 0) == invalid  # set aside, with the record and the reason
    if invalid:
        reason = _query(
            platform, tenant, "SELECT reason FROM core.crm_lead_records WHERE action = 'rejected'"
        )
        assert all("is not an email address" in r[0] for r in reason)
    won = {o.email_key for o in history.outcomes if o.outcome == "won"}
    stored_won = {
        r[0]
        for r in _own(
            platform,
            tenant,
            """SELECT l.email_key FROM core.crm_lead_outcomes o
                 JOIN core.crm_leads l USING (tenant_id, lead_id)
                WHERE o.outcome = 'won'""",
        )
    }
    assert stored_won == won
    statuses = dict(_own(platform, tenant, "SELECT status, count(*) FROM core.crm_leads GROUP BY 1"))
    assert statuses["won"] == len(won) and statuses.get("open", 0) > 0
    assert _own(platform, tenant, "SELECT count(*) FROM core.crm_campaign_daily")[0][0] == len(
        history.campaign_days
    )
    assert _own(platform, tenant, "SELECT count(*) FROM core.crm_touches")[0][0] == len(history.touches)
    # the planted signal survives ingestion: corporate addresses and phones are kept
    phones = _own(platform, tenant, "SELECT count(*) FILTER (WHERE phone LIKE '+1%%') FROM core.crm_leads")[
        0
    ][0]
    assert phones == len({email_key(r.email) for r in history.records if r.phone and email_key(r.email)})


def test_api_tenant_raw_answers_are_stored_and_sources_mapped(platform, dagster_instance, materialized):
    # Whichever run materialized coreldove last (the session's, or a later re-sync): every answer
    # it counted is stored, one per page.
    meta = _metadata(dagster_instance, "crm_leads", "coreldove")
    raw = _query(
        platform,
        "coreldove",
        "SELECT count(*), count(DISTINCT params) FROM raw.crm_api_responses "
        "WHERE tenant_id = %s AND dagster_run_id = %s",
        ("coreldove", meta["run_id"]),
    )[0]
    assert raw[0] == meta["api_calls"] > 2 and meta["api_pages"] == raw[1]
    sources = {r[0] for r in _own(platform, "coreldove", "SELECT DISTINCT source FROM core.crm_leads")}
    history = generate_history("coreldove", START, END)
    assert sources == {r.source for r in history.records}  # "compaign" resolved to its channel


# --- the API: incremental re-read, errors ---------------------------------------------------------


def test_incremental_resync_picks_up_a_status_change_and_merges_a_retyped_email(
    platform, dagster_instance, edge, drops
):
    _set_api_url(platform, edge, EDGE_URL)
    assert _run(platform, dagster_instance, edge, drops).success
    leads = _query(
        platform,
        edge,
        "SELECT email, source_records, status, phone, company_name FROM core.crm_leads ORDER BY email",
    )
    assert leads == [
        ("ana.silva@flores.example", 2, "open", "+15125550142", "Flores Lda"),
        ("ben@northlabs.example", 1, "qualified", None, "Flores Lda"),
    ]
    rejected = _query(
        platform, edge, "SELECT record_id, reason FROM core.crm_lead_records WHERE action = 'rejected'"
    )
    assert len(rejected) == 1 and "'ana silva@flores'" in rejected[0][1]
    raw_before = _query(platform, edge, "SELECT count(*) FROM raw.crm_api_responses")[0][0]

    assert _run(platform, dagster_instance, edge, drops).success  # second sync: from the watermark
    meta = _metadata(dagster_instance, "crm_leads", edge)
    # Two good records and the bad one come back unchanged: none is logged again.
    assert (
        meta["api_since"] == "2026-08-06" and meta["records_updated"] == 1 and meta["records_unchanged"] == 3
    )
    assert _query(platform, edge, "SELECT count(*) FROM core.crm_lead_records WHERE action = 'rejected'") == [
        (1,)
    ]
    outcomes = _query(
        platform, edge, "SELECT outcome, occurred_at, value FROM core.crm_lead_outcomes ORDER BY 1"
    )
    assert [(o, at.isoformat(), v and str(v)) for o, at, v in outcomes] == [
        ("qualified", "2026-11-05T16:00:00+00:00", None),
        ("won", "2026-11-20T11:00:00+00:00", "2400.00"),
    ]
    assert _query(platform, edge, "SELECT status FROM core.crm_leads WHERE email LIKE 'ben%%'")[0][0] == "won"
    assert _query(platform, edge, "SELECT count(*) FROM raw.crm_api_responses")[0][0] == raw_before + 2
    # every version of Ben's record is kept
    versions = _query(
        platform,
        edge,
        "SELECT action FROM core.crm_lead_records WHERE record_id LIKE '%%0b' ORDER BY received_at",
    )
    assert [v[0] for v in versions] == ["created", "updated"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://crm-401.edge.example/api/",
            "HTTP 401: Given token not valid for any token type); check CRM_API_TOKEN_CRM_EDGE",
        ),
        ("https://crm-403.edge.example/api/", "HTTP 403: You do not have permission"),
        (
            "https://crm-broken.edge.example/api/",
            "malformed response body from crm (HTTP 200): '<html><body>502",
        ),
    ],
)
def test_api_errors_fail_clearly_and_lose_nothing(platform, dagster_instance, edge, drops, url, expected):
    _set_api_url(platform, edge, EDGE_URL)
    assert _run(platform, dagster_instance, edge, drops, ("leads",)).success
    before = _query(platform, edge, "SELECT count(*), sum(source_records) FROM core.crm_leads")[0]
    raw_before = _query(platform, edge, "SELECT count(*) FROM raw.crm_api_responses")[0][0]
    _set_api_url(platform, edge, url)
    result = _run(platform, dagster_instance, edge, drops, ("leads",))
    assert not result.success and expected in _failure_message(result)
    assert _query(platform, edge, "SELECT count(*), sum(source_records) FROM core.crm_leads")[0] == before
    stored = _query(
        platform, edge, "SELECT body FROM raw.crm_api_responses ORDER BY response_id DESC LIMIT 1"
    )
    assert _query(platform, edge, "SELECT count(*) FROM raw.crm_api_responses")[0][0] == raw_before + 1
    assert stored[0][0]  # the error answer itself is kept


def test_live_mode_without_a_token_names_the_variable(platform, dagster_instance, edge, drops, monkeypatch):
    monkeypatch.delenv("CRM_API_TOKEN_CRM_EDGE", raising=False)
    _set_api_url(platform, edge, EDGE_URL)
    client = CrmLeadsResource(mode="live", fixtures_dir=str(EDGE_FIXTURES))
    result = _run(platform, dagster_instance, edge, drops, ("leads",), client=client)
    assert not result.success and "CRM_API_TOKEN_CRM_EDGE is not set" in _failure_message(result)


def test_a_tenant_without_api_url_has_no_api_source(platform, dagster_instance, edge, drops):
    _set_api_url(platform, edge, None)
    assert _run(platform, dagster_instance, edge, drops, ("leads",)).success
    meta = _metadata(dagster_instance, "crm_leads", edge)
    assert meta["api_calls"] == 0 and meta["api_source"] == "none (exports only)"


def test_token_goes_only_to_the_tenants_crm_and_requests_are_spaced(platform, edge, monkeypatch):
    monkeypatch.setenv("CRM_API_TOKEN_CRM_EDGE", "org-key-123")
    client = CrmLeadsResource(fixtures_dir=str(EDGE_FIXTURES), min_interval_s=0.3)
    seen = []
    with client.client(EDGE, EDGE_URL) as http:
        http.event_hooks["request"] = [
            lambda request: seen.append((request.url.host, request.headers.get("Token")))
        ]
        from orchestration.api_limits import ApiLedger

        ledger = ApiLedger(WarehouseResource(database_url=platform.writer_url))
        started = time.perf_counter()
        for _ in range(3):
            list(
                client.pages(
                    http, EDGE, EDGE_URL, {}, before_attempt=lambda: ledger.wait_for_slot("crm:test", 0.3)
                )
            )
        ledger.close()
    assert time.perf_counter() - started >= 0.55  # three calls, two gaps of 0.3 s
    assert seen == [("crm.edge.example", "org-key-123")] * 3


# --- drop files -----------------------------------------------------------------------------------


def _tick(instance, platform, drops, cursor=None):
    context = build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"warehouse": WarehouseResource(database_url=platform.writer_url), "drops": drops},
    )
    result = crm_file_drops_sensor(context)
    return result.run_requests or [], result.cursor


def test_sensor_loads_each_file_once_and_outcomes_wait_for_leads(platform, dagster_instance, edge, drops):
    _set_api_url(platform, edge, None)
    leads = _drop(drops, edge, "leads", BUNDLED / "leads" / "leads_2026-06.csv")
    outcomes = _drop(drops, edge, "outcomes", BUNDLED / "outcomes" / "outcomes_2026-06.csv")
    _drop(drops, edge, "leads", leads, name="leads_2026-07.csv.part")  # half-written: never picked up
    requests, cursor = _tick(dagster_instance, platform, drops)
    assert [r.run_key for r in requests] == [f"{edge}:leads:{file_sha256(leads)}"]
    assert requests[0].asset_selection == [AssetKey("crm_leads")]
    assert _tick(dagster_instance, platform, drops, cursor)[0] == []  # requested once; outcomes wait

    assert _run(platform, dagster_instance, edge, drops, ("leads",), file=leads).success
    requests, cursor = _tick(dagster_instance, platform, drops, cursor)
    assert [r.run_key for r in requests] == [f"{edge}:outcomes:{file_sha256(outcomes)}"]
    assert _run(platform, dagster_instance, edge, drops, ("outcomes",), file=outcomes).success
    rows = _query(platform, edge, "SELECT count(*) FROM core.crm_lead_outcomes WHERE origin LIKE 'file:%%'")[
        0
    ][0]
    assert rows == len((BUNDLED / "outcomes" / "outcomes_2026-06.csv").read_text().splitlines()) - 1 > 0

    ledger = _query(platform, edge, "SELECT count(*) FROM core.crm_file_loads")[0][0]
    copy = _drop(drops, edge, "leads", BUNDLED / "leads" / "leads_2026-06.csv", name="june_again.csv")
    requests, cursor = _tick(dagster_instance, platform, drops, cursor)
    assert requests == [] and not copy.exists()
    assert _query(platform, edge, "SELECT count(*) FROM core.crm_file_loads")[0][0] == ledger


def test_touches_wait_for_a_new_tenants_first_leads_load(platform, dagster_instance, drops):
    # A tenant just onboarded, its leads not loaded yet (from its CRM API in production: the first
    # hourly sync has not run) and no leads export pending: its touch exports must not be loaded
    # yet, or every row would point at an unknown lead and the file would be quarantined.
    tenant = "crm_first_sync"
    with platform.admin() as conn:
        conn.execute(
            """INSERT INTO core.tenants (tenant_id, display_name, kind, parent_tenant_id, tier, domains)
               VALUES (%s, 'CRM first sync', 'client', 'bizoholic', 'starter', '{crm}')""",
            (tenant,),
        )
    dagster_instance.add_dynamic_partitions(crm.crm_partitions.name, [tenant])
    try:
        touches = _drop(drops, tenant, "touches", BUNDLED / "touches" / "touches_2026-06.csv")
        context = build_sensor_context(
            instance=dagster_instance,
            resources={"warehouse": WarehouseResource(database_url=platform.writer_url), "drops": drops},
        )
        result = crm_file_drops_sensor(context)
        assert not result.run_requests
        assert result.skip_reason.skip_message == "1 export(s) wait for their records"
        assert touches.exists()  # waiting, not quarantined

        for export in sorted((BUNDLED / "leads").iterdir()):
            leads = _drop(drops, tenant, "leads", export)
            assert _run(platform, dagster_instance, tenant, drops, ("leads",), file=leads).success
        requests, _ = _tick(dagster_instance, platform, drops, result.cursor)
        assert [r.run_key for r in requests] == [f"{tenant}:touches:{file_sha256(touches)}"]
        assert _run(platform, dagster_instance, tenant, drops, ("touches",), file=touches).success
        rows = len((BUNDLED / "touches" / "touches_2026-06.csv").read_text().splitlines()) - 1
        assert _own(platform, tenant, "SELECT count(*) FROM core.crm_touches")[0][0] == rows > 0
    finally:
        with platform.admin() as conn:
            tenants.offboard(conn, tenant)
        dagster_instance.delete_dynamic_partition(crm.crm_partitions.name, tenant)


COUNTS = """SELECT (SELECT count(*) FROM core.crm_leads), (SELECT count(*) FROM core.crm_lead_records),
                   (SELECT count(*) FROM core.crm_lead_outcomes),
                   (SELECT count(*) FROM core.crm_file_loads)"""


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        (
            "leads",
            "leads_bad_email.csv",
            [
                "line 3: email 'grace(at)oak.example' is not an email address",
                "line 4: created_at: '10/11/2026' is not an ISO 8601 date-time",
            ],
        ),
        ("leads", "leads_missing_column.csv", ["line 1 (header): column source is missing"]),
        (
            "outcomes",
            "outcomes_unknown_lead.csv",
            ["line 2: email nobody@nowhere.example is not a known lead"],
        ),
    ],
)
def test_a_bad_export_is_quarantined_with_its_reason_and_nothing_is_loaded(
    platform, dagster_instance, edge, drops, kind, name, expected
):
    _set_api_url(platform, edge, None)
    before = _query(platform, edge, COUNTS)[0]
    bad = _drop(drops, edge, kind, MALFORMED / kind / name)
    result = _run(platform, dagster_instance, edge, drops, (kind,))
    assert not result.success and name in _failure_message(result)
    quarantined = drops.folder(edge, "quarantine", kind) / name
    assert quarantined.exists() and not bad.exists()
    assert quarantined.read_bytes() == (MALFORMED / kind / name).read_bytes()  # nothing lost
    reason = (quarantined.parent / f"{name}.reason.txt").read_text()
    for line in expected:
        assert line in reason, reason
    assert _query(platform, edge, COUNTS)[0] == before  # not even the file's valid rows


def test_checks_catch_bad_rows_written_around_the_loader(platform, dagster_instance, edge, drops):
    _set_api_url(platform, edge, EDGE_URL)
    assert _run(platform, dagster_instance, edge, drops).success
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, edge)
        conn.execute("UPDATE core.crm_leads SET email = 'not an email' WHERE email LIKE 'ana%%'")
        conn.execute(
            "UPDATE core.crm_lead_outcomes SET occurred_at = %s WHERE outcome = 'qualified'",
            (datetime(2020, 1, 1, tzinfo=UTC),),
        )
    _set_api_url(platform, edge, None)
    result = _run(platform, dagster_instance, edge, drops)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    # the leads check blocks: outcomes are not derived from bad leads
    assert checks == {"crm_leads_valid": False} and not result.success
    outcomes_run = _run(platform, dagster_instance, edge, drops, ("outcomes",))
    checks = {e.check_name: e.passed for e in outcomes_run.get_asset_check_evaluations()}
    assert checks == {"crm_lead_outcomes_valid": False}
    # repair, so later tests see a clean tenant
    _set_api_url(platform, edge, EDGE_URL)
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, edge)
        conn.execute("UPDATE core.crm_leads SET email = email_key WHERE email = 'not an email'")
        conn.execute("DELETE FROM core.crm_lead_outcomes WHERE occurred_at < '2021-01-01'")
    # ... and checks whose latest evaluation passes again (other tests read the latest per check).
    repaired = _run(platform, dagster_instance, edge, drops)
    assert repaired.success and all(e.passed for e in repaired.get_asset_check_evaluations())
