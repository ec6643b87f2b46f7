"""CRM ingestion: leads from the tenant's CRM API (BottleCRM) and from the exports it drops, their
outcomes, campaigns with daily figures, and campaign touches.

`crm_leads` syncs the API (when the tenant has `settings.crm.api_url`) incrementally by
creation date with a re-read window, storing every raw answer before parsing, then loads the
pending leads exports. Records with the same normalised email become one lead; every record is
kept in core.crm_lead_records (created / merged / updated, or rejected with its reason when it
has no valid email: nothing the CRM sent is dropped silently). `crm_lead_outcomes` derives
outcomes from the CRM statuses it has seen and loads outcome exports, then sets each lead's
status from its outcomes. `crm_campaigns` and `crm_touches` load their exports.

Drop files are validated whole and rejected whole (quarantine with a reason file naming every
row and field at fault); outcomes and touches must point at known leads, so their files wait
for pending leads files (the sensor) and are rejected when a lead is still unknown.
"""

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetExecutionContext,
    AssetSpec,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    asset,
    asset_check,
    define_asset_job,
    schedule,
)
from pydantic import Field

from ml.crm.emails import EMAIL_PATTERN, lead_id_for
from ml.crm.exports import CrmExport, validate_crm_export
from ml.crm.leads import (
    RecordError,
    SourceRecord,
    bottlecrm_doc,
    parse_record,
    plan_merge,
    record_outcomes,
)
from orchestration.api_limits import ApiLedger
from orchestration.crm_settings import CrmSettings, crm_settings
from orchestration.crm_source import CrmLeadsResource, CrmTokenMissingError
from orchestration.file_drops import DropFolderResource, FileOutcome, process_drop
from orchestration.metadata import preview_table
from orchestration.partitions import tenant_partitions
from orchestration.quality import skipped_check, validate
from orchestration.replay import UnrecordedRequestError
from orchestration.sources import Attempt, SourceError
from orchestration.tenant_settings import tenant_settings
from orchestration.warehouse import WarehouseResource, append_rows, upsert_rows

LEADS_TABLE = "core.crm_leads"
RECORDS_TABLE = "core.crm_lead_records"
OUTCOMES_TABLE = "core.crm_lead_outcomes"
CAMPAIGNS_TABLE = "core.crm_campaigns"
DAILY_TABLE = "core.crm_campaign_daily"
TOUCHES_TABLE = "core.crm_touches"
LEDGER_TABLE = "core.crm_file_loads"
RAW_TABLE = "raw.crm_api_responses"
API_ORIGIN = "api"
# Drop-folder kind -> the asset that loads it.
DROP_ASSETS = {
    "leads": "crm_leads",
    "outcomes": "crm_lead_outcomes",
    "campaigns": "crm_campaigns",
    "touches": "crm_touches",
}

crm_partitions = tenant_partitions("crm")

crm_api = AssetSpec(
    "crm_leads_api",
    group_name="crm",
    kinds={"api"},
    description=(
        "The tenant's CRM leads API (BottleCRM DRF, settings.crm.api_url, token CRM_API_TOKEN_<TENANT>)."
    ),
)
crm_drop_folder = AssetSpec(
    "crm_drop_folder",
    group_name="crm",
    kinds={"file"},
    description=(
        "The tenant's watched drop folder (<BIZOSAAS_DROPS_DIR>/<tenant>/leads|outcomes|campaigns|touches/) "
        "for CSV or JSON exports."
    ),
)


# --- config and shared pieces ---------------------------------------------------------------------


class CrmDropConfig(Config):
    file: str | None = Field(
        default=None,
        description="One file of the tenant's inbox to load (the sensor sets it); unset: every pending file.",
    )


class CrmLeadsConfig(CrmDropConfig):
    full_refresh: bool = Field(
        default=False, description="Read the whole CRM again instead of from the watermark."
    )
    sync_api: bool = Field(default=True, description="Sync the CRM API (file-drop runs turn it off).")


def _drop_files(config: CrmDropConfig, drops: DropFolderResource, tenant_id: str, kind: str) -> list[Path]:
    inbox = drops.inbox(tenant_id, kind)
    inbox.mkdir(parents=True, exist_ok=True)  # so the tenant knows where to drop
    if config.file is None:
        return [f.path for f in drops.pending(tenant_id, kind)]
    path = Path(config.file)
    if path.parent.resolve() != inbox.resolve():
        raise Failure(
            f"{config.file} is not in {tenant_id}'s {kind} inbox ({inbox}); only inbox files are loaded"
        )
    return [path]


def _known_leads(conn, tenant_id: str):
    def lookup(keys: set[str]) -> dict[str, datetime]:
        rows = conn.execute(
            f"SELECT email_key, created_at FROM {LEADS_TABLE} WHERE tenant_id = %s AND email_key = ANY(%s)",
            (tenant_id, list(keys)),
        )
        return dict(rows.fetchall())

    return lookup


def _run_files(context, warehouse, drops, tenant_id: str, kind: str, config, load) -> list[FileOutcome]:
    outcomes = []
    for path in _drop_files(config, drops, tenant_id, kind):
        outcome = process_drop(
            warehouse,
            drops,
            tenant_id,
            kind,
            path,
            ledger_table=LEDGER_TABLE,
            validate=lambda conn, name, data: validate_crm_export(
                kind, name, data, lookup=_known_leads(conn, tenant_id), now=datetime.now(UTC)
            ),
            load=load,
            run_id=context.run.run_id,
        )
        log = context.log.error if outcome.status == "rejected" else context.log.info
        log(
            f"{kind} export {outcome.name}: {outcome.status}"
            + (f" ({outcome.detail})" if outcome.detail else "")
        )
        outcomes.append(outcome)
    return outcomes


def _files_metadata(outcomes: list[FileOutcome]) -> dict[str, Any]:
    counts = Counter(o.status for o in outcomes)
    return {
        "files_loaded": MetadataValue.int(counts["loaded"]),
        "files_quarantined": MetadataValue.int(counts["rejected"]),
        "files_duplicate": MetadataValue.int(counts["duplicate"] + counts["loaded_before"]),
        "file_records_loaded": MetadataValue.int(sum(o.records for o in outcomes)),
        "files": preview_table(
            [{"file": o.name, "status": o.status, "records": o.records, "detail": o.detail} for o in outcomes]
        ),
    }


def _finish(kind: str, outcomes: list[FileOutcome], metadata: dict[str, Any]) -> MaterializeResult:
    rejected = [o for o in outcomes if o.status == "rejected"]
    if rejected:
        raise Failure(
            description=(
                f"{len(rejected)} {kind} export(s) rejected and moved to quarantine (nothing of them was "
                "loaded; "
                "each has a .reason.txt beside it): " + " | ".join(o.detail for o in rejected)
            ),
            metadata=metadata,
        )
    return MaterializeResult(metadata=metadata)


def _ledger_extra(export: CrmExport) -> dict[str, Any]:
    return {"file_format": export.file_format, "records": export.records}


def _count(warehouse, tenant_id: str, table: str) -> int:
    return warehouse.query(
        tenant_id, f"SELECT count(*) AS n FROM {table} WHERE tenant_id = %s", (tenant_id,)
    )[0]["n"]


# --- leads ----------------------------------------------------------------------------------------


@dataclass
class ApiSync:
    records: list[SourceRecord] = field(default_factory=list)
    rejected: list[tuple[str, str, dict, str]] = field(default_factory=list)
    pages: int = 0
    calls: int = 0
    since: str | None = None


def _store_attempts(warehouse, tenant_id: str, params: dict, attempts: list[Attempt], run_id) -> None:
    """Raw answers first, in their own transaction: whatever happens next, they are kept."""
    if not attempts:
        return
    rows = [
        {
            "endpoint": "leads",
            "params": dict(params),
            "status": a.status,
            "body": a.body,
            "attempt": a.attempt,
            "fetched_at": a.fetched_at,
            "dagster_run_id": run_id,
        }
        for a in attempts
    ]
    with warehouse.tenant_transaction(tenant_id) as conn:
        append_rows(conn, tenant_id, RAW_TABLE, rows)


def _watermark(warehouse, tenant_id: str, reread_days: int) -> str | None:
    """Read from `reread_days` before the newest lead the CRM gave us: BottleCRM filters only by
    creation date (created_at__gte), and a lead's status changes within weeks of its creation,
    so re-reading that window catches them; a full refresh catches anything older."""
    rows = warehouse.query(
        tenant_id,
        f"SELECT max((record->>'created_at')::timestamptz) AS newest FROM {RECORDS_TABLE} "
        "WHERE tenant_id = %s AND origin = %s",
        (tenant_id, API_ORIGIN),
    )
    newest = rows[0]["newest"]
    return None if newest is None else (newest - timedelta(days=reread_days)).date().isoformat()


def sync_api(context, warehouse, crm: CrmLeadsResource, tenant_id: str, settings: CrmSettings, full: bool):
    sync = ApiSync(since=None if full else _watermark(warehouse, tenant_id, settings.reread_days))
    ledger = ApiLedger(warehouse)
    rate_key = crm.rate_key(settings.api_url)
    run_id = context.run.run_id
    seen: dict[str, SourceRecord] = {}

    def on_page(params, attempts):
        sync.calls += len(attempts)
        _store_attempts(warehouse, tenant_id, params, attempts, run_id)

    try:
        with crm.client(tenant_id, settings.api_url) as client:
            for status_filter in ({}, {"status": "converted"}):  # converted leads are left out of the list
                filters = {**({"created_at__gte": sync.since} if sync.since else {}), **status_filter}
                for page in crm.pages(
                    client,
                    tenant_id,
                    settings.api_url,
                    filters,
                    before_attempt=lambda: ledger.wait_for_slot(rate_key, crm.min_interval_s),
                    on_page=on_page,
                ):
                    sync.pages += 1
                    for lead in page.leads:
                        doc = bottlecrm_doc(lead)
                        record_id = str(lead.get("id") or "")
                        try:
                            record = parse_record(API_ORIGIN, record_id, doc)
                        except RecordError as exc:
                            sync.rejected.append((API_ORIGIN, record_id or "?", doc, str(exc)))
                            continue
                        if record.email_key is None:
                            reason = f"email {doc.get('email')!r} is not an email address"
                            sync.rejected.append((API_ORIGIN, record_id, doc, reason))
                        elif record_id not in seen or seen[record_id].updated_at <= record.updated_at:
                            seen[record_id] = record
    except CrmTokenMissingError as exc:
        raise Failure(str(exc)) from None
    except (SourceError, UnrecordedRequestError) as exc:
        raise Failure(
            f"CRM sync of {tenant_id} failed after {sync.pages} page(s) (stored leads are kept; raw answers "
            f"are in {RAW_TABLE}): {exc}"
        ) from None
    finally:
        ledger.close()
    sync.records = list(seen.values())
    return sync


def _stored_records(conn, tenant_id: str):
    """The latest version of every stored record, parsed with today's rules; and, apart, the
    documents of records whose latest version was rejected (so a re-read does not log them again)."""
    rows = conn.execute(
        f"""SELECT DISTINCT ON (origin, record_id) origin, record_id, action, record
              FROM {RECORDS_TABLE} WHERE tenant_id = %s
             ORDER BY origin, record_id, received_at DESC""",
        (tenant_id,),
    ).fetchall()
    stored = {(o, r): parse_record(o, r, doc) for o, r, action, doc in rows if action != "rejected"}
    rejected = {(o, r): doc for o, r, action, doc in rows if action == "rejected"}
    return stored, rejected


_LEAD_UPDATES = {
    c: f"EXCLUDED.{c}"
    for c in (
        "email",
        "name",
        "phone",
        "company_name",
        "source",
        "campaign_id",
        "campaign_data",
        "created_at",
        "updated_at",
        "source_records",
        "ingested_at",
        "dagster_run_id",
    )
}


def merge_into_leads(conn, tenant_id: str, incoming, rejected, run_id) -> dict[str, int]:
    """Merge records into the tenant's leads and append them to the merge history, in the
    caller's transaction."""
    stored, stored_rejected = _stored_records(conn, tenant_id)
    plan = plan_merge(tenant_id, incoming, stored, rejected, stored_rejected)
    now = datetime.now(UTC)
    rows = [{**lead, "status": "open", "ingested_at": now, "dagster_run_id": run_id} for lead in plan.leads]
    if rows:
        upsert_rows(conn, tenant_id, LEADS_TABLE, rows, key=["lead_id"], updates=_LEAD_UPDATES, run_id=run_id)
    if plan.history:
        append_rows(conn, tenant_id, RECORDS_TABLE, [{**h, "dagster_run_id": run_id} for h in plan.history])
    refresh_status(conn, tenant_id)
    return {
        "created": plan.created,
        "merged": plan.merged,
        "updated": plan.updated,
        "unchanged": plan.unchanged,
        "rejected": plan.rejected,
        "leads_written": len(plan.leads),
    }


def refresh_status(conn, tenant_id: str) -> None:
    """Each lead's status from its outcomes: the last of won/lost (a win on a tie), else qualified,
    else open: ml.crm.leads.status_from_outcomes and ml.crm.features.labels, in SQL."""
    conn.execute(
        f"""UPDATE {LEADS_TABLE} l SET status = s.status
              FROM (SELECT l2.lead_id,
                           coalesce((SELECT o.outcome FROM {OUTCOMES_TABLE} o
                                      WHERE o.tenant_id = l2.tenant_id AND o.lead_id = l2.lead_id
                                        AND o.outcome IN ('won', 'lost')
                                      ORDER BY o.occurred_at DESC, o.outcome DESC LIMIT 1),
                                    (SELECT 'qualified' FROM {OUTCOMES_TABLE} o
                                      WHERE o.tenant_id = l2.tenant_id AND o.lead_id = l2.lead_id
                                        AND o.outcome = 'qualified' LIMIT 1),
                                    'open') AS status
                      FROM {LEADS_TABLE} l2 WHERE l2.tenant_id = %s) s
             WHERE l.tenant_id = %s AND l.lead_id = s.lead_id AND l.status IS DISTINCT FROM s.status""",
        (tenant_id, tenant_id),
    )


def _lead_file_loader(tenant_id: str, counts: Counter, run_id):
    def load(conn, name, sha256, size, export: CrmExport):
        origin = f"file:{sha256}"
        records = [parse_record(origin, row["record_id"], row) for row in export.rows]
        counts.update(merge_into_leads(conn, tenant_id, records, [], run_id))
        return _ledger_extra(export)

    return load


@asset(
    partitions_def=crm_partitions,
    group_name="crm",
    kinds={"postgres", "api", "file"},
    deps=["tenant_registry", crm_api, crm_drop_folder],
    metadata={"table": LEADS_TABLE},
    description=(
        "The tenant's leads (crm_leads: name, email, phone, source, campaign_data, status), one per "
        "normalised "
        "email, from the CRM API and dropped leads exports; every source record is kept in "
        f"{RECORDS_TABLE} (created / merged / updated / rejected). Never writes ai_score."
    ),
)
def crm_leads(
    context: AssetExecutionContext,
    config: CrmLeadsConfig,
    warehouse: WarehouseResource,
    crm_api_client: CrmLeadsResource,
    drops: DropFolderResource,
) -> MaterializeResult:
    tenant_id = context.partition_key
    run_id = context.run.run_id
    settings = crm_settings(tenant_id, tenant_settings(warehouse, tenant_id))
    started = time.perf_counter()
    counts: Counter = Counter()
    sync = None
    if settings.api_url and config.sync_api and config.file is None:
        sync = sync_api(context, warehouse, crm_api_client, tenant_id, settings, config.full_refresh)
        with warehouse.tenant_transaction(tenant_id) as conn:
            counts.update(merge_into_leads(conn, tenant_id, sync.records, sync.rejected, run_id))
        context.log.info(
            f"CRM API: {sync.pages} pages, {len(sync.records)} records since {sync.since or 'the start'}"
        )
    files = _run_files(
        context, warehouse, drops, tenant_id, "leads", config, _lead_file_loader(tenant_id, counts, run_id)
    )
    elapsed = time.perf_counter() - started
    received = sum(counts[k] for k in ("created", "merged", "updated", "unchanged", "rejected"))
    recent = warehouse.query(
        tenant_id,
        f"""SELECT lead_id, name, email, source, status, source_records, created_at::date AS created
              FROM {LEADS_TABLE} WHERE tenant_id = %s ORDER BY updated_at DESC, lead_id LIMIT 10""",
        (tenant_id,),
    )
    metadata = {
        "dagster/row_count": MetadataValue.int(_count(warehouse, tenant_id, LEADS_TABLE)),
        "records_received": MetadataValue.int(received),
        "leads_new": MetadataValue.int(counts["created"]),
        "records_merged": MetadataValue.int(counts["merged"]),
        "records_updated": MetadataValue.int(counts["updated"]),
        "records_unchanged": MetadataValue.int(counts["unchanged"]),
        "records_rejected": MetadataValue.int(counts["rejected"]),
        "api_source": MetadataValue.text(settings.api_url or "none (exports only)"),
        "api_since": MetadataValue.text((sync.since or "full history") if sync else "-"),
        "api_pages": MetadataValue.int(sync.pages if sync else 0),
        "api_calls": MetadataValue.int(sync.calls if sync else 0),
        "records_per_s": MetadataValue.float(round(received / elapsed, 1) if elapsed else 0.0),
        **_files_metadata(files),
        "preview": preview_table(recent),
    }
    return _finish("leads", files, metadata)


# --- outcomes -------------------------------------------------------------------------------------


def api_outcomes(conn, tenant_id: str) -> list[dict[str, Any]]:
    """Outcomes from every version of every API record seen (a lead read as "in process" and
    later as "converted" was qualified, then won)."""
    rows = conn.execute(
        f"SELECT origin, record_id, record FROM {RECORDS_TABLE} "
        "WHERE tenant_id = %s AND origin = %s AND action <> 'rejected'",
        (tenant_id, API_ORIGIN),
    ).fetchall()
    found = record_outcomes(parse_record(o, r, doc) for o, r, doc in rows)
    return [
        {
            "lead_id": lead_id_for(tenant_id, key),
            "outcome": outcome,
            "occurred_at": at,
            "value": value,
            "origin": API_ORIGIN,
        }
        for (key, outcome), (at, value) in sorted(found.items())
    ]


_OUTCOME_UPDATES = {
    # The first time an outcome was seen is when it happened; a later re-read does not move it.
    "occurred_at": "least(t.occurred_at, EXCLUDED.occurred_at)",
    "value": "coalesce(EXCLUDED.value, t.value)",
    "ingested_at": "t.ingested_at",
}


def _write_outcomes(conn, tenant_id: str, rows, run_id) -> int:
    now = datetime.now(UTC)
    rows = [{**r, "ingested_at": now, "dagster_run_id": run_id} for r in rows]
    upsert_rows(
        conn,
        tenant_id,
        OUTCOMES_TABLE,
        rows,
        key=["lead_id", "outcome"],
        updates=_OUTCOME_UPDATES,
        run_id=run_id,
    )
    refresh_status(conn, tenant_id)
    return len(rows)


@asset(
    partitions_def=crm_partitions,
    group_name="crm",
    kinds={"postgres", "file"},
    deps=[crm_leads, crm_drop_folder],
    metadata={"table": OUTCOMES_TABLE},
    description=(
        "What happened to each lead (qualified, won, lost, with when): from the statuses the CRM API gave "
        "(converted = won, closed = lost, in process = qualified, at the record's update time) and from "
        "dropped outcome exports. Sets crm_leads.status from them."
    ),
)
def crm_lead_outcomes(
    context: AssetExecutionContext,
    config: CrmDropConfig,
    warehouse: WarehouseResource,
    drops: DropFolderResource,
) -> MaterializeResult:
    tenant_id = context.partition_key
    run_id = context.run.run_id
    with warehouse.tenant_transaction(tenant_id) as conn:
        from_api = _write_outcomes(conn, tenant_id, api_outcomes(conn, tenant_id), run_id)

    def load(conn, name, sha256, size, export: CrmExport):
        rows = [
            {
                "lead_id": lead_id_for(tenant_id, r["email_key"]),
                "outcome": r["outcome"],
                "occurred_at": r["occurred_at"],
                "value": r["value"],
                "origin": f"file:{sha256}",
            }
            for r in export.rows
        ]
        _write_outcomes(conn, tenant_id, rows, run_id)
        return _ledger_extra(export)

    files = _run_files(context, warehouse, drops, tenant_id, "outcomes", config, load)
    by_outcome = warehouse.query(
        tenant_id,
        f"SELECT outcome, count(*) AS n FROM {OUTCOMES_TABLE} WHERE tenant_id = %s GROUP BY 1 ORDER BY 1",
        (tenant_id,),
    )
    metadata = {
        "dagster/row_count": MetadataValue.int(_count(warehouse, tenant_id, OUTCOMES_TABLE)),
        "outcomes_from_api_statuses": MetadataValue.int(from_api),
        "by_outcome": MetadataValue.json({r["outcome"]: r["n"] for r in by_outcome}),
        **_files_metadata(files),
    }
    return _finish("outcomes", files, metadata)


# --- campaigns and touches ------------------------------------------------------------------------


@asset(
    partitions_def=crm_partitions,
    group_name="crm",
    kinds={"postgres", "file"},
    deps=["tenant_registry", crm_drop_folder],
    metadata={"table": CAMPAIGNS_TABLE},
    description=(
        f"The tenant's campaigns (channel, segment, flight) and their daily figures ({DAILY_TABLE}: spend, "
        "impressions, clicks, conversions), from dropped campaign exports; upserted by campaign and day."
    ),
)
def crm_campaigns(
    context: AssetExecutionContext,
    config: CrmDropConfig,
    warehouse: WarehouseResource,
    drops: DropFolderResource,
) -> MaterializeResult:
    tenant_id = context.partition_key
    run_id = context.run.run_id

    def load(conn, name, sha256, size, export: CrmExport):
        now = datetime.now(UTC)
        extra = {"ingested_at": now, "dagster_run_id": run_id}
        upsert_rows(
            conn,
            tenant_id,
            CAMPAIGNS_TABLE,
            [{**r, **extra} for r in export.rows],
            key=["campaign_id"],
            run_id=run_id,
        )
        if export.daily:
            upsert_rows(
                conn,
                tenant_id,
                DAILY_TABLE,
                [{**d, **extra} for d in export.daily],
                key=["campaign_id", "day"],
                run_id=run_id,
            )
        return _ledger_extra(export)

    files = _run_files(context, warehouse, drops, tenant_id, "campaigns", config, load)
    preview = warehouse.query(
        tenant_id,
        f"""SELECT c.campaign_id, c.channel, c.segment, count(d.day) AS days, sum(d.spend) AS spend,
                   sum(d.conversions) AS conversions
              FROM {CAMPAIGNS_TABLE} c LEFT JOIN {DAILY_TABLE} d USING (tenant_id, campaign_id)
             WHERE c.tenant_id = %s GROUP BY 1, 2, 3 ORDER BY 1""",
        (tenant_id,),
    )
    metadata = {
        "dagster/row_count": MetadataValue.int(len(preview)),
        "daily_rows": MetadataValue.int(_count(warehouse, tenant_id, DAILY_TABLE)),
        **_files_metadata(files),
        "preview": preview_table(preview),
    }
    return _finish("campaigns", files, metadata)


@asset(
    partitions_def=crm_partitions,
    group_name="crm",
    kinds={"postgres", "file"},
    deps=[crm_leads, crm_campaigns, crm_drop_folder],
    metadata={"table": TOUCHES_TABLE},
    description=(
        "Each lead's contacts with campaigns (ad clicks, email clicks, visits, forms), from dropped exports."
    ),
)
def crm_touches(
    context: AssetExecutionContext,
    config: CrmDropConfig,
    warehouse: WarehouseResource,
    drops: DropFolderResource,
) -> MaterializeResult:
    tenant_id = context.partition_key
    run_id = context.run.run_id

    def load(conn, name, sha256, size, export: CrmExport):
        rows = [
            {
                "lead_id": lead_id_for(tenant_id, r["email_key"]),
                "campaign_id": r["campaign_id"],
                "touched_at": r["touched_at"],
                "kind": r["kind"],
                "origin": f"file:{sha256}",
                "dagster_run_id": run_id,
            }
            for r in export.rows
        ]
        upsert_rows(
            conn,
            tenant_id,
            TOUCHES_TABLE,
            rows,
            key=["lead_id", "campaign_id", "touched_at", "kind"],
            updates={"origin": "t.origin"},
            run_id=run_id,
        )
        return _ledger_extra(export)

    files = _run_files(context, warehouse, drops, tenant_id, "touches", config, load)
    metadata = {
        "dagster/row_count": MetadataValue.int(_count(warehouse, tenant_id, TOUCHES_TABLE)),
        **_files_metadata(files),
    }
    return _finish("touches", files, metadata)


# --- checks ---------------------------------------------------------------------------------------


def _partition(context) -> str | None:
    return context.partition_key if context.has_partition_key else None


@asset_check(
    asset=crm_leads,
    blocking=True,
    description="Great Expectations suite: valid emails, one lead per normalised email, known statuses.",
)
def crm_leads_valid(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    tenant_id = _partition(context)
    if tenant_id is None:
        return skipped_check()
    rows = warehouse.query(
        tenant_id,
        f"SELECT lead_id, email, email_key, status, source_records FROM {LEADS_TABLE} WHERE tenant_id = %s",
        (tenant_id,),
    )
    frame = pd.DataFrame(rows, columns=["lead_id", "email", "email_key", "status", "source_records"])
    frame["email"] = frame["email"].str.strip()
    return validate(
        "crm_leads",
        frame,
        lambda gxe: [
            gxe.ExpectColumnValuesToBeUnique(column="lead_id"),
            gxe.ExpectColumnValuesToBeUnique(column="email_key"),
            gxe.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL_PATTERN.pattern),
            gxe.ExpectColumnValuesToMatchRegex(column="email_key", regex=EMAIL_PATTERN.pattern),
            gxe.ExpectColumnValuesToBeInSet(column="status", value_set=["open", "qualified", "won", "lost"]),
            gxe.ExpectColumnValuesToBeBetween(column="source_records", min_value=1),
        ],
    )


@asset_check(
    asset=crm_lead_outcomes,
    blocking=True,
    description=(
        "Great Expectations suite: every outcome belongs to a known lead and is not before its creation."
    ),
)
def crm_lead_outcomes_valid(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    tenant_id = _partition(context)
    if tenant_id is None:
        return skipped_check()
    rows = warehouse.query(
        tenant_id,
        f"""SELECT o.lead_id, o.outcome, (l.lead_id IS NOT NULL) AS known_lead,
                   extract(epoch FROM o.occurred_at - l.created_at) / 3600.0 AS hours_after_creation
              FROM {OUTCOMES_TABLE} o LEFT JOIN {LEADS_TABLE} l USING (tenant_id, lead_id)
             WHERE o.tenant_id = %s""",
        (tenant_id,),
    )
    frame = pd.DataFrame(rows, columns=["lead_id", "outcome", "known_lead", "hours_after_creation"])
    frame["hours_after_creation"] = frame["hours_after_creation"].astype(float)
    return validate(
        "crm_lead_outcomes",
        frame,
        lambda gxe: [
            gxe.ExpectColumnValuesToBeInSet(column="known_lead", value_set=[True]),
            gxe.ExpectColumnValuesToBeBetween(column="hours_after_creation", min_value=0),
            gxe.ExpectColumnValuesToBeInSet(column="outcome", value_set=["qualified", "won", "lost"]),
        ],
    )


# --- jobs and schedules ---------------------------------------------------------------------------

crm_sync_job = define_asset_job(
    "crm_sync",
    selection=[crm_leads, crm_lead_outcomes],
    description="Sync a CRM tenant's leads API (incremental) and derive the outcomes.",
)
crm_drops_job = define_asset_job(
    "crm_file_drops",
    selection=[crm_leads, crm_lead_outcomes, crm_campaigns, crm_touches],
    description="Load a CRM tenant's dropped leads, outcomes, campaigns and touches exports.",
)


@schedule(job=crm_sync_job, cron_schedule="40 * * * *", execution_timezone="UTC")
def crm_hourly_sync(context):
    """Every CRM tenant, hourly: new and changed leads from the API (within the re-read window),
    then their outcomes. Tenants without an api_url load only their pending files."""
    for tenant_id in context.instance.get_dynamic_partitions(crm_partitions.name):
        yield RunRequest(
            run_key=f"{tenant_id}:{context.scheduled_execution_time:%Y-%m-%dT%H}",
            partition_key=tenant_id,
            tags={"bizosaas/trigger": "hourly_crm_sync"},
        )
