"""Write a synthetic CRM history (ml.crm.synthetic) straight into the core.crm_* tables.

For tests of the parts downstream of ingestion (features, models, scores, insights, marts, API) and
for benchmarks at a scale the replay fixtures do not cover. It bypasses the CRM API and the drop
folder on purpose, so it does the simplest correct merge (the first record of an email is the lead,
later ones count as source records) rather than the ingestion's; tests of ingestion itself go
through the real client and drop folder.
"""

from __future__ import annotations

import json

import psycopg

from ml.crm.emails import email_key, lead_id_for
from ml.crm.synthetic import CrmHistory
from orchestration.warehouse import write_partition

ORIGIN = "synthetic"


def load_history(conn: psycopg.Connection, history: CrmHistory) -> dict[str, int]:
    """Replace the tenant's CRM rows with `history`, in the caller's transaction (tenant set).

    Returns the rows written per table.
    """
    tenant = history.tenant_id
    status = history.statuses()
    leads: dict[str, dict] = {}
    records = []
    for record in history.records:
        key = email_key(record.email)
        if key is None:
            continue  # not a lead: ingestion rejects these, the seed skips them
        lead_id = lead_id_for(tenant, key)
        if key in leads:
            leads[key]["source_records"] += 1
            action = "merged"
        else:
            campaign_data = dict(record.utm)
            if record.campaign_id:
                campaign_data["campaign_id"] = record.campaign_id
            leads[key] = {
                "lead_id": lead_id,
                "email": record.email.strip(),
                "email_key": key,
                "name": f"{record.first_name} {record.last_name}",
                "phone": record.phone,
                "company_name": record.company_name,
                "source": record.source,
                "campaign_id": record.campaign_id,
                "campaign_data": json.dumps(campaign_data),
                "status": status.get(key, "open"),
                "created_at": record.created_at,
                "updated_at": record.created_at,
                "source_records": 1,
            }
            action = "created"
        fields = {
            "first_name": record.first_name,
            "last_name": record.last_name,
            "email": record.email,
            "phone": record.phone,
            "company_name": record.company_name,
            "source": record.source,
            "campaign_id": record.campaign_id,
            "created_at": record.created_at.isoformat(),
        }
        records.append(
            {
                "origin": ORIGIN,
                "record_id": record.record_id,
                "lead_id": lead_id,
                "action": action,
                "record": json.dumps(fields),
                "received_at": record.created_at,
            }
        )
    tables = {
        "crm_campaigns": [
            {"campaign_id": c.campaign_id, "name": c.name, "channel": c.channel, "segment": c.segment,
             "started_on": c.started_on, "ended_on": c.ended_on}
            for c in history.campaigns
        ],
        "crm_campaign_daily": [
            {"campaign_id": d.campaign_id, "day": d.day, "spend": d.spend, "currency": d.currency,
             "impressions": d.impressions, "clicks": d.clicks, "conversions": d.conversions}
            for d in history.campaign_days
        ],
        "crm_leads": list(leads.values()),
        "crm_lead_records": records,
        "crm_lead_outcomes": [
            {"lead_id": lead_id_for(tenant, o.email_key), "outcome": o.outcome, "occurred_at": o.occurred_at,
             "value": o.value, "origin": ORIGIN}
            for o in history.outcomes
        ],
        "crm_touches": [
            {"lead_id": lead_id_for(tenant, t.email_key), "campaign_id": t.campaign_id,
             "touched_at": t.touched_at, "kind": t.kind, "origin": ORIGIN}
            for t in history.touches
        ],
    }  # fmt: skip
    # The foreign keys are deferred, so the order of the rewrites does not matter within the transaction.
    return {table: write_partition(conn, tenant, f"core.{table}", rows) for table, rows in tables.items()}
