"""CRM reads: the tenant's leads with their AI scores (best first), one lead with its merge
history, outcomes, touches and score reasons, the campaign insights with the tenant's
recommendations, and the CRM marts. Scores, reasons and model versions are those the lead_scores
asset wrote last; a lead it has not scored yet (too young, or closed) has none."""

import re
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from serving.auth import TenantScope
from serving.errors import ERROR_RESPONSES, ApiError
from serving.filters import as_utc, clean_text, escape_like
from serving.pagination import Page, PageInfo, PageParams, order_by, page_params, paged, sort_param
from serving.responses import json_response
from serving.routes.saleor import _mart, _page, _single_tenant

router = APIRouter(prefix="/api/brain", tags=["crm"], responses=ERROR_RESPONSES)
analytics_router = APIRouter(prefix="/api/brain/analytics/crm", tags=["analytics"], responses=ERROR_RESPONSES)

LeadStatus = Enum("LeadStatus", {s: s for s in ("open", "qualified", "won", "lost")}, type=str)
Dimension = Enum("Dimension", {d: d for d in ("channel", "campaign", "segment", "source")}, type=str)
ModelKind = Enum("ModelKind", {k: k for k in ("model", "baseline")}, type=str)
ModelStatus = Enum("ModelStatus", {s: s for s in ("champion", "retired", "rejected")}, type=str)
TOP_REASONS = 3
LEAD_ID = re.compile(r"ld_[0-9a-f]{24}")


# --- leads --------------------------------------------------------------------------------------


class Lead(BaseModel):
    tenant_id: str
    lead_id: str
    name: str | None
    email: str
    phone: str | None
    company_name: str | None
    source: str
    campaign_id: str | None
    campaign_data: dict[str, Any]
    status: str
    created_at: datetime
    updated_at: datetime
    source_records: int
    ai_score: int | None
    top_reasons: list[dict[str, Any]]
    scored_at: datetime | None
    model_kind: str | None
    model_version: int | None


class LeadRecord(BaseModel):
    origin: str
    record_id: str
    action: str
    record: dict[str, Any]
    received_at: datetime


class LeadOutcome(BaseModel):
    outcome: str
    occurred_at: datetime
    value: float | None


class CampaignTouches(BaseModel):
    campaign_id: str
    touches: int
    first_at: datetime
    last_at: datetime


class TouchSummary(BaseModel):
    total: int
    first_at: datetime | None
    last_at: datetime | None
    by_kind: dict[str, int]
    campaigns: list[CampaignTouches]


class LeadDetail(Lead):
    probability: float | None
    reasons: list[dict[str, Any]]
    records: list[LeadRecord]
    outcomes: list[LeadOutcome]
    touches: TouchSummary


LEAD_SORTABLE = ("ai_score", "created_at")
_SCORE_OF = "FROM core.crm_lead_scores s WHERE s.tenant_id = t.tenant_id AND s.lead_id = t.lead_id"
_LEAD_COLUMNS = (
    "t.tenant_id, t.lead_id, t.name, t.email, t.phone, t.company_name, t.source, t.campaign_id,"
    " t.campaign_data, t.status, t.created_at, t.updated_at, t.source_records, t.ai_score,"
    f" coalesce(jsonb_path_query_array(t.ai_reasons, '$[0 to {TOP_REASONS - 1}]'), '[]') AS top_reasons,"
    f" t.scored_at, (SELECT s.model_kind {_SCORE_OF}) AS model_kind,"
    f" (SELECT s.model_version {_SCORE_OF}) AS model_version"
)


@router.get(
    "/django-crm/leads",
    response_model=Page[Lead],
    summary="The tenant's leads with AI scores and top reasons, best first: status, source, score, time",
)
async def list_leads(
    request: Request,
    scope: TenantScope,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[LeadStatus | None, Query(description="open, qualified, won or lost")] = None,
    source: Annotated[
        str | None, Query(max_length=60, description="Lead source, e.g. referral or paid_search")
    ] = None,
    campaign_id: Annotated[
        str | None, Query(max_length=120, description="Leads the campaign brought")
    ] = None,
    min_score: Annotated[
        int | None, Query(ge=0, le=100, description="Scored leads with ai_score at or above this")
    ] = None,
    created_after: Annotated[
        datetime | None, Query(description="Created at or after (ISO 8601; UTC if naive)")
    ] = None,
    created_before: Annotated[
        datetime | None, Query(description="Created before (ISO 8601; UTC if naive)")
    ] = None,
    q: Annotated[
        str | None, Query(max_length=120, description="The start of the lead's email or name")
    ] = None,
    sort: sort_param(LEAD_SORTABLE, "-ai_score: best first, unscored last") = None,
):
    where: list[str] = []
    params: list[Any] = []
    if _single_tenant(scope):
        where.append("t.tenant_id = %s")
        params.append(scope.tenant_id)
    if status is not None:
        where.append("t.status = %s")
        params.append(status.value)
    if (source := clean_text(source, "source")) is not None:
        where.append("t.source = %s")
        params.append(source.lower())
    if (campaign_id := clean_text(campaign_id, "campaign_id")) is not None:
        where.append("t.campaign_id = %s")
        params.append(campaign_id)
    if min_score is not None:
        where.append("t.ai_score >= %s")
        params.append(min_score)
    after = as_utc(created_after, "created_after") if created_after is not None else None
    before = as_utc(created_before, "created_before") if created_before is not None else None
    if after is not None and before is not None and before <= after:
        raise ApiError(422, "created_before: must be after created_after")
    if after is not None:
        where.append("t.created_at >= %s")
        params.append(after)
    if before is not None:
        where.append("t.created_at < %s")
        params.append(before)
    if (q := clean_text(q, "q")) is not None:
        # Prefixes of the de-duplication key (trimmed, lower-cased) and of the name, each with an
        # index of its own (0009_crm.sql), so a search costs the matches, not the tenant's leads.
        where.append("(t.email_key LIKE %s OR lower(t.name) LIKE %s)")
        params += [escape_like(q.lower()) + "%"] * 2
    return await _page(
        request,
        scope,
        "core.crm_leads",
        _LEAD_COLUMNS,
        " AND ".join(where) or "true",
        params,
        f"{order_by(sort, LEAD_SORTABLE, '-ai_score')}, t.tenant_id, t.lead_id",
        page,
    )


_RECORD_FIELDS = ", ".join(f"'{f}', r.{f}" for f in LeadRecord.model_fields)
_DETAIL = f"""
SELECT {_LEAD_COLUMNS},
       (SELECT s.probability {_SCORE_OF}) AS probability,
       coalesce((SELECT s.reasons {_SCORE_OF}), t.ai_reasons, '[]') AS reasons,
       coalesce((SELECT json_agg(json_build_object({_RECORD_FIELDS}) ORDER BY r.received_at, r.record_id)
                   FROM core.crm_lead_records r
                  WHERE r.tenant_id = t.tenant_id AND r.lead_id = t.lead_id), '[]') AS records,
       coalesce((SELECT json_agg(json_build_object('outcome', o.outcome, 'occurred_at', o.occurred_at,
                                                   'value', o.value) ORDER BY o.occurred_at, o.outcome)
                   FROM core.crm_lead_outcomes o
                  WHERE o.tenant_id = t.tenant_id AND o.lead_id = t.lead_id), '[]') AS outcomes,
       (SELECT json_build_object(
                   'total', coalesce(sum(c.touches), 0), 'first_at', min(c.first_at),
                   'last_at', max(c.last_at),
                   'by_kind', coalesce((SELECT json_object_agg(k.kind, k.n ORDER BY k.kind)
                                          FROM (SELECT x.kind, count(*) AS n FROM core.crm_touches x
                                                 WHERE x.tenant_id = t.tenant_id AND x.lead_id = t.lead_id
                                                 GROUP BY x.kind) k), '{{}}'),
                   'campaigns', coalesce(json_agg(json_build_object(
                        'campaign_id', c.campaign_id, 'touches', c.touches, 'first_at', c.first_at,
                        'last_at', c.last_at) ORDER BY c.first_at, c.campaign_id)
                        FILTER (WHERE c.campaign_id IS NOT NULL), '[]'))
          FROM (SELECT x.campaign_id, count(*) AS touches, min(x.touched_at) AS first_at,
                       max(x.touched_at) AS last_at
                  FROM core.crm_touches x
                 WHERE x.tenant_id = t.tenant_id AND x.lead_id = t.lead_id
                 GROUP BY x.campaign_id) c) AS touches
  FROM core.crm_leads t
"""


@router.get(
    "/django-crm/leads/{lead_id}",
    response_model=LeadDetail,
    summary="One lead: its merge history, outcomes, campaign touches, and its score with every reason",
)
async def get_lead(request: Request, scope: TenantScope, lead_id: str):
    if not LEAD_ID.fullmatch(lead_id):  # ids are lead_id_for()'s; anything else (a NUL too) is no lead
        raise ApiError(404, "lead not found")
    where, params = ["t.lead_id = %s"], [lead_id]
    if _single_tenant(scope):
        where.append("t.tenant_id = %s")
        params.append(scope.tenant_id)
    rows = await request.app.state.db.fetch(
        scope.tenant_id,
        # A master reading as itself also finds its clients' leads (as the list does); lead ids
        # are derived from the tenant, so two tenants never share one.
        f"{_DETAIL} WHERE {' AND '.join(where)} ORDER BY (t.tenant_id = %s) DESC, t.tenant_id LIMIT 1",
        [*params, scope.tenant_id],
    )
    if not rows:
        raise ApiError(404, f"lead {lead_id!r} not found")
    return json_response(rows[0])


# --- campaign insights ----------------------------------------------------------------------------


class CampaignInsight(BaseModel):
    tenant_id: str
    dimension: str
    value: str
    label: str  # what a reader calls it: the campaign's name for campaigns, else the value
    leads: int
    conversions: int
    conversion_rate: float | None
    spend: float | None
    cost_per_lead: float | None
    cost_per_conversion: float | None
    uplift: float | None
    uplift_ci_low: float | None
    uplift_ci_high: float | None
    computed_at: datetime


class InsightReport(BaseModel):
    tenant_id: str
    baseline_rate: float | None
    leads: int
    conversions: int
    recommendations: list[dict[str, Any]]
    method: dict[str, Any]  # which leads count (maturity cut-off), the interval method
    narrative: str | None
    narrative_model: str | None
    narrative_status: str  # not configured | ok | rejected: why | failed: why
    has_narrative: bool
    computed_at: datetime


class InsightsPage(BaseModel):
    data: list[CampaignInsight]
    page: PageInfo
    report: InsightReport | None


INSIGHT_SORTABLE = (
    "uplift",
    "conversion_rate",
    "leads",
    "conversions",
    "spend",
    "cost_per_lead",
    "cost_per_conversion",
    "value",
)
_INSIGHT_COLUMNS = ", ".join(CampaignInsight.model_fields)
_REPORT_COLUMNS = ", ".join(
    "narrative IS NOT NULL AS has_narrative" if f == "has_narrative" else f
    for f in InsightReport.model_fields
)


@router.get(
    "/crm/campaigns/insights",
    response_model=InsightsPage,
    summary="What worked for the tenant (channel, campaign, segment, source against its baseline), "
    "with its recommendations",
)
async def campaign_insights(
    request: Request,
    scope: TenantScope,
    page: Annotated[PageParams, Depends(page_params)],
    dimension: Annotated[Dimension | None, Query(description="channel, campaign, segment or source")] = None,
    min_leads: Annotated[
        int | None, Query(ge=0, le=10_000_000, description="Only values with at least this many leads")
    ] = None,
    significant: Annotated[
        bool | None,
        Query(description="true: only uplifts whose confidence interval excludes 0; false: only the others"),
    ] = None,
    sort: sort_param(INSIGHT_SORTABLE, "-uplift") = None,
):
    # Insights compare a tenant with its own baseline, so they are never mixed across tenants: a
    # master reads a client's with X-Tenant-ID.
    where, params = ["tenant_id = %s"], [scope.tenant_id]
    if dimension is not None:
        where.append("dimension = %s")
        params.append(dimension.value)
    if min_leads is not None:
        where.append("leads >= %s")
        params.append(min_leads)
    excludes_zero = "(uplift_ci_low > 0 OR uplift_ci_high < 0)"
    if significant is not None:
        where.append(excludes_zero if significant else f"NOT coalesce({excludes_zero}, false)")
    condition = " AND ".join(where)
    db = request.app.state.db
    rows = await db.fetch(
        scope.tenant_id,
        f"""SELECT {_INSIGHT_COLUMNS}, count(*) OVER () AS _total FROM core.crm_campaign_insights
             WHERE {condition}
             ORDER BY {order_by(sort, INSIGHT_SORTABLE, "-uplift")}, dimension, value
             LIMIT %s OFFSET %s""",
        [*params, page.limit, page.offset],
    )
    if rows:
        total = rows[0]["_total"]
    else:  # past the last page, or nothing matches: the count alone
        counted = await db.fetch(
            scope.tenant_id, f"SELECT count(*) AS n FROM core.crm_campaign_insights WHERE {condition}", params
        )
        total = counted[0]["n"]
    for row in rows:
        del row["_total"]
    reports = await db.fetch(
        scope.tenant_id,
        f"SELECT {_REPORT_COLUMNS} FROM core.crm_insight_reports WHERE tenant_id = %s",
        [scope.tenant_id],
    )
    return json_response({**paged(rows, page, total), "report": reports[0] if reports else None})


# --- the marts ----------------------------------------------------------------------------------


class LeadFunnel(BaseModel):
    tenant_id: str
    source: str
    leads: int
    qualified: int
    won: int
    lost: int
    open: int
    qualification_rate: float
    win_rate: float
    closed_win_rate: float | None
    median_days_to_win: float | None
    won_value: float
    scored: int
    avg_open_score: float | None
    first_lead_at: datetime
    last_lead_at: datetime
    built_at: datetime


class CampaignPerformance(BaseModel):
    tenant_id: str
    campaign_id: str
    name: str
    channel: str
    segment: str | None
    started_on: date | None
    ended_on: date | None
    active_days: int
    currency: str | None
    spend: float
    impressions: int
    clicks: int
    conversions: int
    leads: int
    won: int
    lost: int
    open: int
    ctr: float | None
    win_rate: float | None
    cost_per_lead: float | None
    cost_per_win: float | None
    won_value: float
    return_on_spend: float | None
    built_at: datetime


class ModelPerformance(BaseModel):
    tenant_id: str
    version: int
    kind: str
    algorithm: str
    status: str
    is_current: bool
    decision: str
    trained_at: datetime
    training_rows: int
    outcomes_seen: int
    feature_count: int
    holdout_rows: int | None
    holdout_positives: int | None
    roc_auc: float | None
    pr_auc: float | None
    brier: float | None
    baseline_roc_auc: float | None
    auc_over_baseline: float | None
    auc_change: float | None
    built_at: datetime


FUNNEL_SORTABLE = ("leads", "won", "qualification_rate", "win_rate", "median_days_to_win", "source")


@analytics_router.get(
    "",
    response_model=Page[LeadFunnel],
    summary="The lead funnel per source (dbt mart): leads, qualified, won, lost, open, rates, days to win",
)
async def lead_funnel(
    request: Request,
    scope: TenantScope,
    page: Annotated[PageParams, Depends(page_params)],
    source: Annotated[str | None, Query(max_length=60, description="Lead source, exact")] = None,
    sort: sort_param(FUNNEL_SORTABLE, "-leads") = None,
):
    where, params = [], []
    if (source := clean_text(source, "source")) is not None:
        where.append("t.source = %s")
        params.append(source.lower())
    ordering = order_by(sort, FUNNEL_SORTABLE, "-leads")
    return await _mart(
        request,
        scope,
        "crm_lead_funnel",
        LeadFunnel,
        where,
        params,
        f"{ordering}, t.tenant_id, t.source",
        page,
    )


CAMPAIGN_SORTABLE = (
    "spend",
    "leads",
    "won",
    "ctr",
    "win_rate",
    "cost_per_lead",
    "cost_per_win",
    "won_value",
    "return_on_spend",
    "started_on",
    "name",
)


@analytics_router.get(
    "/campaigns",
    response_model=Page[CampaignPerformance],
    summary="Campaign performance (dbt mart): spend, clicks, leads, wins, CTR, cost per lead and per win",
)
async def campaign_performance(
    request: Request,
    scope: TenantScope,
    page: Annotated[PageParams, Depends(page_params)],
    channel: Annotated[
        str | None, Query(max_length=60, description="paid_search, paid_social, email, ...")
    ] = None,
    segment: Annotated[
        str | None, Query(max_length=60, description="The campaign's audience segment")
    ] = None,
    sort: sort_param(CAMPAIGN_SORTABLE, "-spend") = None,
):
    where, params = [], []
    for column, value in (("channel", channel), ("segment", segment)):
        if (value := clean_text(value, column)) is not None:
            where.append(f"t.{column} = %s")
            params.append(value.lower())
    ordering = order_by(sort, CAMPAIGN_SORTABLE, "-spend")
    return await _mart(
        request,
        scope,
        "crm_campaign_performance",
        CampaignPerformance,
        where,
        params,
        f"{ordering}, t.tenant_id, t.campaign_id",
        page,
    )


MODEL_SORTABLE = ("version", "trained_at", "roc_auc", "pr_auc", "brier", "training_rows")


@analytics_router.get(
    "/models",
    response_model=Page[ModelPerformance],
    summary="Lead-scoring model performance over time (dbt mart): every version's holdout metrics",
)
async def model_performance(
    request: Request,
    scope: TenantScope,
    page: Annotated[PageParams, Depends(page_params)],
    kind: Annotated[ModelKind | None, Query(description="model or baseline")] = None,
    status: Annotated[ModelStatus | None, Query(description="champion, retired or rejected")] = None,
    sort: sort_param(MODEL_SORTABLE, "version: oldest first") = None,
):
    where, params = [], []
    for column, value in (("kind", kind), ("status", status)):
        if value is not None:
            where.append(f"t.{column} = %s")
            params.append(value.value)
    ordering = order_by(sort, MODEL_SORTABLE, "version")
    return await _mart(
        request,
        scope,
        "crm_model_performance",
        ModelPerformance,
        where,
        params,
        f"{ordering}, t.tenant_id, t.version",
        page,
    )
