"""The synthetic-history loader that downstream CRM tests and benchmarks stand on."""

from datetime import date

import pytest

from ml.crm.emails import email_key
from ml.crm.synthetic import generate_history
from orchestration import tenants
from orchestration.crm_seed import load_history
from orchestration.warehouse import WarehouseResource

TENANT = "crm_seed_probe"


@pytest.fixture(scope="module")
def probe_tenant(platform):
    with platform.admin() as conn:
        conn.execute(
            """INSERT INTO core.tenants (tenant_id, display_name, kind, parent_tenant_id, tier, domains)
               VALUES (%s, 'CRM seed probe', 'client', 'bizoholic', 'starter', '{crm}')
               ON CONFLICT (tenant_id) DO NOTHING""",
            (TENANT,),
        )
    yield TENANT
    with platform.admin() as conn:
        tenants.offboard(conn, TENANT)


def test_a_history_loads_whole_and_a_second_load_replaces_it(platform, probe_tenant):
    history = generate_history(probe_tenant, date(2026, 9, 1), date(2026, 10, 1), invalid_email_rate=0.01)
    warehouse = WarehouseResource(database_url=platform.writer_url)
    for _ in range(2):
        with warehouse.tenant_transaction(probe_tenant) as conn:
            written = load_history(conn, history)
    people = {email_key(r.email) for r in history.records} - {None}
    assert written["crm_leads"] == len(people)
    assert written["crm_lead_outcomes"] == len(history.outcomes)
    rows = warehouse.query(
        probe_tenant,
        "SELECT count(*) AS leads, sum(source_records) AS records, "
        "count(*) FILTER (WHERE status = 'won') AS won "
        "FROM core.crm_leads WHERE tenant_id = %s",
        (probe_tenant,),
    )[0]
    assert rows["leads"] == len(people)
    assert rows["records"] == sum(1 for r in history.records if email_key(r.email))
    assert rows["won"] == len({o.email_key for o in history.outcomes if o.outcome == "won"})
    merged = warehouse.query(
        probe_tenant, "SELECT count(*) AS n FROM core.crm_lead_records WHERE action = 'merged'"
    )[0]["n"]
    assert merged == rows["records"] - rows["leads"] > 0
