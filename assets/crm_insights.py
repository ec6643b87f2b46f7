"""Campaign insights per CRM tenant: conversion rate, cost per lead and uplift against the tenant's
baseline (with 95% intervals) by channel, campaign, segment and source, the recommendations that
follow, and, where an OpenAI-compatible endpoint is configured, a narrative grounded on them.

The figures come from ml.crm.insights (mature leads only: see its docstring). The narrative is
asked for before the write transaction opens (no transaction waits on a network call) and is
dropped when it quotes a number that is not a figure; figures and recommendations never depend
on it. The tenant's insight rows and its report are replaced together, in one transaction.

Automation: `AutomationCondition.eager()`: a tenant's insights are recomputed whenever one of its
CRM inputs is materialized (a few hundred ms of SQL and arithmetic), so a new day of outcomes or
spend shows up without waiting for a schedule; the automation sensor evaluates it.
"""

import json
import time
from collections import Counter
from datetime import UTC, datetime

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from ml.crm.insights import (
    DIMENSIONS,
    CampaignFact,
    Insights,
    LeadFact,
    SpendFact,
    compute_insights,
    recommendations_markdown,
)
from ml.crm.narrative import Narrative, chat_messages, check_narrative, grounding_payload
from orchestration.crm_settings import crm_settings
from orchestration.errors import PlatformError
from orchestration.llm import LlmResource
from orchestration.metadata import preview_table
from orchestration.partitions import tenant_partitions
from orchestration.quality import skipped_check, validate
from orchestration.replay import UnrecordedRequestError
from orchestration.settings import ENV_LLM_BASE_URL, ENV_LLM_MODEL, platform_now
from orchestration.sources import SourceError
from orchestration.tenant_settings import tenant_settings
from orchestration.warehouse import WarehouseResource, write_partition

INSIGHTS_TABLE = "core.crm_campaign_insights"
REPORTS_TABLE = "core.crm_insight_reports"
UPSTREAM = ("crm_leads", "crm_lead_outcomes", "crm_campaigns", "crm_touches")
NOT_CONFIGURED = Narrative("not configured", None, None)


def load_facts(warehouse: WarehouseResource, tenant_id: str):
    leads = [
        LeadFact(**row)
        for row in warehouse.query(
            tenant_id,
            "SELECT lead_id, source, campaign_id, created_at, status FROM core.crm_leads "
            "WHERE tenant_id = %s",
            (tenant_id,),
        )
    ]
    campaigns = [
        CampaignFact(**row)
        for row in warehouse.query(
            tenant_id,
            "SELECT campaign_id, name, channel, segment FROM core.crm_campaigns WHERE tenant_id = %s",
            (tenant_id,),
        )
    ]
    spend = [
        SpendFact(**row)
        for row in warehouse.query(
            tenant_id,
            "SELECT campaign_id, day, spend, currency FROM core.crm_campaign_daily WHERE tenant_id = %s",
            (tenant_id,),
        )
    ]
    return leads, campaigns, spend


def narrate(llm: LlmResource, tenant_id: str, insights: Insights, log) -> tuple[Narrative, int]:
    """(the narrative, HTTP calls spent). Never raises: the figures do not depend on it."""
    if not llm.configured:
        return NOT_CONFIGURED, 0
    payload = grounding_payload(tenant_id, insights)
    try:
        answer = llm.complete(chat_messages(payload))
    except SourceError as exc:
        log.warning(f"narrative: {exc}")
        return Narrative("failed", None, llm.model, str(exc)), len(exc.attempts)
    except (UnrecordedRequestError, PlatformError) as exc:
        log.warning(f"narrative: {exc}")
        return Narrative("failed", None, llm.model, str(exc)), 0
    narrative = check_narrative(answer.content, payload, answer.model)
    if narrative.status != "ok":
        log.warning(f"narrative {narrative.label}")
    return narrative, len(answer.attempts)


def _insight_rows(insights: Insights, computed_at: datetime, run_id: str) -> list[dict]:
    return [
        {
            "dimension": r.dimension,
            "value": r.value,
            "label": r.label,
            "leads": r.leads,
            "conversions": r.conversions,
            "conversion_rate": r.conversion_rate,
            "spend": r.spend,
            "cost_per_lead": r.cost_per_lead,
            "cost_per_conversion": r.cost_per_conversion,
            "uplift": r.uplift,
            "uplift_ci_low": r.uplift_ci_low,
            "uplift_ci_high": r.uplift_ci_high,
            "computed_at": computed_at,
            "dagster_run_id": run_id,
        }
        for r in insights.rows
    ]


def _preview(insights: Insights) -> list[dict]:
    def fmt(value, scale=100.0):
        return None if value is None else f"{value * scale:+.1f}"

    rows = sorted(insights.rows, key=lambda r: -(abs(r.uplift or 0) * r.leads))
    return [
        {
            "dimension": r.dimension,
            "name": r.label,
            "leads": r.leads,
            "won": r.conversions,
            "rate %": None if r.conversion_rate is None else f"{r.conversion_rate * 100:.1f}",
            "uplift pp": fmt(r.uplift),
            "95% CI pp": None
            if r.uplift_ci_low is None
            else f"{fmt(r.uplift_ci_low)}..{fmt(r.uplift_ci_high)}",
            "cost/conv": r.cost_per_conversion,
            "verdict": r.verdict,
        }
        for r in rows
    ]


@asset(
    key="campaign_insights",
    partitions_def=tenant_partitions("crm"),
    deps=[AssetKey(name) for name in UPSTREAM],
    group_name="crm",
    kinds={"python", "postgres"},
    automation_condition=AutomationCondition.eager(),
    description=(
        "What worked per tenant: conversion rate, spend, cost per lead and per conversion, and uplift "
        "against the tenant's baseline with a 95% Newcombe interval, by channel, campaign, segment and "
        "source (mature leads only), with ranked recommendations and an optional grounded narrative "
        f"({ENV_LLM_BASE_URL}, {ENV_LLM_MODEL})."
    ),
)
def campaign_insights(
    context: AssetExecutionContext, warehouse: WarehouseResource, llm: LlmResource
) -> MaterializeResult:
    tenant_id = context.partition_key
    started = time.perf_counter()
    horizon = crm_settings(tenant_id, tenant_settings(warehouse, tenant_id)).outcome_horizon_days
    leads, campaigns, spend = load_facts(warehouse, tenant_id)
    insights = compute_insights(leads, campaigns, spend, now=platform_now(), horizon_days=horizon)
    computed_at = datetime.now(UTC)
    if not insights.sufficient:
        context.log.info(f"{tenant_id}: {insights.recommendations[0].text}")
    narrative, llm_calls = narrate(llm, tenant_id, insights, context.log)

    run_id = context.run.run_id
    report = {
        "baseline_rate": insights.baseline_rate,
        "leads": insights.leads,
        "conversions": insights.conversions,
        "recommendations": json.dumps([r.as_dict() for r in insights.recommendations]),
        "method": json.dumps(insights.method()),
        "narrative": narrative.text,
        "narrative_model": narrative.model if narrative.text else None,
        "narrative_status": narrative.label,
        "computed_at": computed_at,
        "dagster_run_id": run_id,
    }
    with warehouse.tenant_transaction(tenant_id) as conn:
        written = write_partition(
            conn, tenant_id, INSIGHTS_TABLE, _insight_rows(insights, computed_at, run_id), run_id=run_id
        )
        write_partition(conn, tenant_id, REPORTS_TABLE, [report], run_id=run_id)

    per_dimension = Counter(r.dimension for r in insights.rows)
    metadata = {
        "rows": written,
        **{f"rows_{d}": per_dimension.get(d, 0) for d in DIMENSIONS},
        "mature_leads": insights.leads,
        "conversions": insights.conversions,
        "young_leads_excluded": insights.young_leads,
        "baseline_rate": MetadataValue.float(insights.baseline_rate)
        if insights.baseline_rate is not None
        else None,
        "maturity": insights.method()["maturity"],
        "confidence_interval": insights.method()["confidence_interval"],
        "sufficient_data": insights.sufficient,
        "recommendations": MetadataValue.md(recommendations_markdown(insights.recommendations)),
        "narrative_status": narrative.label,
        "llm_calls": llm_calls,
        "preview": preview_table(_preview(insights), limit=12),
        "duration_s": round(time.perf_counter() - started, 3),
    }
    if narrative.text:
        metadata["narrative"] = MetadataValue.md(narrative.text)
    return MaterializeResult(metadata={k: v for k, v in metadata.items() if v is not None})


def _missing_references(tenant_id: str, recommendations: list[dict], rows: set[tuple[str, str]]) -> list[str]:
    missing = []
    for rec in recommendations:
        refs = [(rec.get("dimension"), rec.get("value"))] if rec.get("dimension") else []
        refs += [(e.get("dimension"), e.get("value")) for e in rec.get("evidence") or []]
        if rec.get("target"):
            refs.append((rec["target"].get("dimension"), rec["target"].get("value")))
        missing += [f"#{rec.get('rank')} -> {d}={v}" for d, v in refs if (d, v) not in rows]
    return missing


@asset_check(
    asset=campaign_insights,
    blocking=True,
    description=(
        "The tenant's insights: rates within 0..1, every uplift inside its confidence interval, spend "
        "and costs non-negative, one row per (dimension, value), and every recommendation names rows "
        "that exist."
    ),
)
def campaign_insights_valid(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    if not context.has_partition_key:
        return skipped_check()
    return check_tenant_insights(warehouse, context.partition_key)


def check_tenant_insights(warehouse: WarehouseResource, tenant_id: str) -> AssetCheckResult:
    rows = warehouse.query(
        tenant_id,
        f"""SELECT dimension, value, leads, conversions, conversion_rate, spend::float8,
                   cost_per_lead::float8, cost_per_conversion::float8,
                   uplift - uplift_ci_low AS uplift_above_low, uplift_ci_high - uplift AS high_above_uplift,
                   leads - conversions AS leads_minus_conversions
              FROM {INSIGHTS_TABLE} WHERE tenant_id = %s""",
        (tenant_id,),
    )
    reports = warehouse.query(
        tenant_id, f"SELECT recommendations FROM {REPORTS_TABLE} WHERE tenant_id = %s", (tenant_id,)
    )
    columns = [
        *("dimension", "value", "leads", "conversions", "conversion_rate", "spend", "cost_per_lead"),
        *("cost_per_conversion", "uplift_above_low", "high_above_uplift", "leads_minus_conversions"),
    ]
    result = validate(
        "crm_campaign_insights",
        pd.DataFrame(rows, columns=columns),
        lambda gxe: [
            gxe.ExpectCompoundColumnsToBeUnique(column_list=["dimension", "value"]),
            gxe.ExpectColumnValuesToBeInSet(column="dimension", value_set=list(DIMENSIONS)),
            gxe.ExpectColumnValuesToBeBetween(column="conversion_rate", min_value=0, max_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="uplift_above_low", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="high_above_uplift", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="spend", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="cost_per_lead", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="cost_per_conversion", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="conversions", min_value=0),
            gxe.ExpectColumnValuesToBeBetween(column="leads_minus_conversions", min_value=0),
        ],
    )
    if not reports:
        return AssetCheckResult(passed=False, description=f"no insight report for {tenant_id}")
    missing = _missing_references(
        tenant_id, reports[0]["recommendations"], {(r["dimension"], r["value"]) for r in rows}
    )
    if missing:
        return AssetCheckResult(
            passed=False,
            description=f"{len(missing)} recommendation reference(s) name no insight row",
            metadata={**result.metadata, "missing_references": MetadataValue.json(missing[:20])},
        )
    return result
