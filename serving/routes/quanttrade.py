"""QuantTrade, the trading desk: every backtested candidate (strategy x parameters x symbol) with
its in-sample metrics, its progress through the validation stages (backtest, forward test, risk,
approval queue), and the human decision that lets a strategy go live.

Only tenants subscribing to the `trading` domain (QuantTrade) and the master may call these
routes, optionally only from the addresses in BIZOSAAS_QUANTTRADE_ALLOWED_IPS. Deciding needs a
trading desk's own `approver` key; core.decide_strategy checks what may be decided and writes the
audit record in the same transaction."""

import ipaddress
import re
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from serving.auth import Scope, tenant_scope
from serving.errors import ERROR_RESPONSES, ApiError, ErrorResponse
from serving.filters import clean_text
from serving.pagination import Page, PageParams, order_by, page_params, sort_param
from serving.responses import json_response
from serving.routes.saleor import _page, _single_tenant

DESK_ONLY = "QuantTrade routes are for the trading desk"


def _client_allowed(request: Request) -> bool:
    allowed = request.app.state.config.quanttrade_allowed_ips
    if allowed is None:
        return True
    # The socket peer as uvicorn reports it: the forwarded client only when the peer is a proxy
    # named in BIZOSAAS_API_FORWARDED_ALLOW_IPS (orchestration.processes.api_command).
    host = request.client.host if request.client else None
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    candidates = [address]
    if address.version == 6 and address.ipv4_mapped is not None:  # a dual-stack socket's IPv4 peer
        candidates.append(address.ipv4_mapped)
    return any(a in network for a in candidates for network in allowed if a.version == network.version)


async def _is_trading_desk(request: Request, scope: Scope) -> bool:
    cache = request.app.state.credentials
    key = f"trading:{scope.tenant_id}"
    found, principal = cache.get(key)
    if not found:
        rows = await request.app.state.db.fetch(
            scope.tenant_id,
            "SELECT 'trading' = ANY(domains) AS desk FROM core.tenants WHERE tenant_id = %s",
            (scope.tenant_id,),
        )
        principal = scope.principal if rows and rows[0]["desk"] else None
        cache.put(key, principal)
    return principal is not None


async def trading_scope(request: Request) -> Scope:
    """The request's scope, if it may use the QuantTrade routes: from an allowed address, as a
    tenant subscribing to `trading`, or as the master reading its trading clients."""
    if not _client_allowed(request):
        # The reason, never the list: the caller learns nothing about the desk's network.
        raise ApiError(403, "QuantTrade routes are not open to this client address")
    scope = await tenant_scope(request)
    master_as_itself = scope.principal.is_master and scope.tenant_id == scope.principal.tenant_id
    if not master_as_itself and not await _is_trading_desk(request, scope):
        raise ApiError(403, f"{DESK_ONLY}; tenant {scope.tenant_id!r} does not subscribe to trading")
    return scope


TradingScope = Annotated[Scope, Depends(trading_scope)]
router = APIRouter(prefix="/api/brain/quanttrade", tags=["quanttrade"], responses=ERROR_RESPONSES)

Status = Enum(
    "Status", {s: s for s in ("failed", "testing", "pending", "approved", "rejected", "withdrawn")}, type=str
)
Stage = Enum("Stage", {s: s for s in ("backtest", "forward_test", "risk", "approval")}, type=str)
# Candidate ids are the engine's (ml.trading.strategies.candidate_id); one with control characters
# (a NUL Postgres could not even compare) is no candidate.
CANDIDATE_ID = re.compile(r"[^\x00-\x1f\x7f]{1,200}")


def filter_names(where: list[str], params: list, strategy: str | None, symbol: str | None) -> None:
    """Strategy names are lower case, symbols upper case (BTC-USD, AAPL, EURUSD)."""
    for column, value, case in (("strategy", strategy, str.lower), ("symbol", symbol, str.upper)):
        if (value := clean_text(value, column)) is not None:
            where.append(f"t.{column} = %s")
            params.append(case(value))


# --- backtests ----------------------------------------------------------------------------------


class Backtest(BaseModel):
    tenant_id: str
    candidate_id: str
    strategy: str
    params: dict[str, Any]
    symbol: str
    asset_class: str
    window_start: date
    window_end: date
    bars: int
    total_return: float
    annual_return: float | None
    sharpe: float | None
    max_drawdown: float
    win_rate: float | None
    trades: int
    profit_factor: float | None
    exposure: float
    positive_month_share: float | None
    final_value: float
    passed: bool
    fail_reasons: list[str]
    built_at: datetime


BACKTEST_SORTABLE = (
    "sharpe",
    "total_return",
    "annual_return",
    "max_drawdown",
    "win_rate",
    "trades",
    "profit_factor",
    "exposure",
    "positive_month_share",
    "final_value",
    "strategy",
    "symbol",
)
_BACKTEST_COLUMNS = ", ".join(f"t.{f}" for f in Backtest.model_fields)


@router.get(
    "/backtests",
    response_model=Page[Backtest],
    summary="Every backtested candidate with its in-sample metrics and the backtest stage's verdict",
)
async def list_backtests(
    request: Request,
    scope: TradingScope,
    page: Annotated[PageParams, Depends(page_params)],
    strategy: Annotated[
        str | None, Query(max_length=60, description="Strategy, e.g. ma_crossover or rsi_reversion")
    ] = None,
    symbol: Annotated[
        str | None, Query(max_length=30, description="Symbol, e.g. BTC-USD, AAPL or EURUSD")
    ] = None,
    passed: Annotated[bool | None, Query(description="Only candidates that passed (true) or failed")] = None,
    sort: sort_param(BACKTEST_SORTABLE, "-sharpe") = None,
):
    where, params = [], []
    if _single_tenant(scope):
        where.append("t.tenant_id = %s")
        params.append(scope.tenant_id)
    filter_names(where, params, strategy, symbol)
    if passed is not None:
        where.append("t.passed = %s")
        params.append(passed)
    return await _page(
        request,
        scope,
        "core.trading_backtests",
        _BACKTEST_COLUMNS,
        " AND ".join(where) or "true",
        params,
        f"{order_by(sort, BACKTEST_SORTABLE, '-sharpe')}, t.tenant_id, t.candidate_id",
        page,
    )


# --- strategies and their validation ------------------------------------------------------------


class BacktestStage(BaseModel):
    passed: bool
    fail_reasons: list[str]
    window_start: date
    window_end: date
    total_return: float
    sharpe: float | None
    max_drawdown: float
    trades: int


class ForwardStage(BacktestStage):
    backtest_metric: float | None
    forward_metric: float | None
    performance_gap: float | None


class RiskStage(BaseModel):
    passed: bool
    breaches: list[str]
    max_drawdown: float
    exposure: float
    concentration: float
    trades: int
    limits: dict[str, Any]


class Strategy(BaseModel):
    tenant_id: str
    candidate_id: str
    strategy: str
    params: dict[str, Any]
    symbol: str
    asset_class: str
    stage: str  # the last stage reached: backtest, forward_test, risk or approval
    status: str  # failed | testing | pending | approved | rejected | withdrawn
    status_reason: str | None
    performance_gap: float | None
    backtest: BacktestStage
    forward_test: ForwardStage | None
    risk: RiskStage | None
    queued_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None


class Decision(BaseModel):
    decision_id: int
    decision: str
    reason: str
    approver: str
    approver_via: str
    client_ip: str | None
    risk_snapshot: dict[str, Any] | None
    decided_at: datetime


class StrategyDetail(Strategy):
    decisions: list[Decision]


def _object(alias: str, model: type[BaseModel]) -> str:
    fields = ", ".join(f"'{f}', {alias}.{f}" for f in model.model_fields)
    return f"json_build_object({fields})"


# One row per backtested candidate with every later stage it reached. A failed stage ends the
# road (status failed) unless the queue says otherwise (a withdrawn candidate failed later on).
_STRATEGIES = f"""(
SELECT b.tenant_id, b.candidate_id, b.strategy, b.params, b.symbol, b.asset_class,
       CASE WHEN a.candidate_id IS NOT NULL THEN 'approval' WHEN r.candidate_id IS NOT NULL THEN 'risk'
            WHEN f.candidate_id IS NOT NULL THEN 'forward_test' ELSE 'backtest' END AS stage,
       coalesce(a.status, CASE WHEN b.passed AND coalesce(f.passed, true) AND coalesce(r.passed, true)
                               THEN 'testing' ELSE 'failed' END) AS status,
       a.status_reason, f.performance_gap,
       {_object("b", BacktestStage)} AS backtest,
       CASE WHEN f.candidate_id IS NOT NULL THEN {_object("f", ForwardStage)} END AS forward_test,
       CASE WHEN r.candidate_id IS NOT NULL THEN {_object("r", RiskStage)} END AS risk,
       a.queued_at, a.decided_at, a.decided_by,
       b.sharpe AS backtest_sharpe, f.sharpe AS forward_sharpe
  FROM core.trading_backtests b
  LEFT JOIN core.trading_forward_tests f ON f.tenant_id = b.tenant_id AND f.candidate_id = b.candidate_id
  LEFT JOIN core.trading_risk_assessments r ON r.tenant_id = b.tenant_id AND r.candidate_id = b.candidate_id
  LEFT JOIN core.trading_approvals a ON a.tenant_id = b.tenant_id AND a.candidate_id = b.candidate_id
)"""
_STRATEGY_COLUMNS = ", ".join(f"t.{f}" for f in Strategy.model_fields)
STRATEGY_SORTABLE = (
    "forward_sharpe",
    "backtest_sharpe",
    "performance_gap",
    "queued_at",
    "decided_at",
    "strategy",
    "symbol",
    "candidate_id",
)
STRATEGY_DEFAULT_SORT = "-forward_sharpe,-backtest_sharpe"


@router.get(
    "/strategies",
    response_model=Page[Strategy],
    summary="Candidates with their stage results (pass/fail and reasons, forward gap, risk breaches) "
    "and approval status",
)
async def list_strategies(
    request: Request,
    scope: TradingScope,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[
        Status | None,
        Query(description="failed, testing (passed so far), pending, approved, rejected or withdrawn"),
    ] = None,
    stage: Annotated[
        Stage | None, Query(description="The last stage reached: backtest, forward_test, risk or approval")
    ] = None,
    strategy: Annotated[str | None, Query(max_length=60, description="Strategy name")] = None,
    symbol: Annotated[str | None, Query(max_length=30, description="Symbol")] = None,
    sort: sort_param(STRATEGY_SORTABLE, STRATEGY_DEFAULT_SORT) = None,
):
    where, params = [], []
    if _single_tenant(scope):
        where.append("t.tenant_id = %s")
        params.append(scope.tenant_id)
    for column, value in (("status", status), ("stage", stage)):
        if value is not None:
            where.append(f"t.{column} = %s")
            params.append(value.value)
    filter_names(where, params, strategy, symbol)
    return await _page(
        request,
        scope,
        _STRATEGIES,
        _STRATEGY_COLUMNS,
        " AND ".join(where) or "true",
        params,
        f"{order_by(sort, STRATEGY_SORTABLE, STRATEGY_DEFAULT_SORT)}, t.tenant_id, t.candidate_id",
        page,
    )


def _candidate(candidate_id: str) -> str:
    if not CANDIDATE_ID.fullmatch(candidate_id):
        raise ApiError(404, "strategy not found")
    return candidate_id


CandidateId = Annotated[str, Path(max_length=200, description="The candidate's id")]
_DECISIONS = f"""coalesce((SELECT json_agg({_object("d", Decision)} ORDER BY d.decided_at, d.decision_id)
                   FROM core.trading_decisions d
                  WHERE d.tenant_id = t.tenant_id AND d.candidate_id = t.candidate_id), '[]')"""


@router.get(
    "/strategies/{candidate_id}",
    response_model=StrategyDetail,
    summary="One candidate: its stage results, approval status and every human decision on it",
)
async def get_strategy(request: Request, scope: TradingScope, candidate_id: CandidateId):
    where, params = ["t.candidate_id = %s"], [_candidate(candidate_id)]
    if _single_tenant(scope):
        where.append("t.tenant_id = %s")
        params.append(scope.tenant_id)
    rows = await request.app.state.db.fetch(
        scope.tenant_id,
        # A master reading as itself finds its clients' candidates; ids may repeat across
        # tenants (they name strategy, parameters and symbol), so its own come first.
        f"""SELECT {_STRATEGY_COLUMNS}, {_DECISIONS} AS decisions FROM {_STRATEGIES} t
             WHERE {" AND ".join(where)} ORDER BY (t.tenant_id = %s) DESC, t.tenant_id LIMIT 1""",
        [*params, scope.tenant_id],
    )
    if not rows:
        raise ApiError(404, f"strategy {candidate_id!r} not found")
    return json_response(rows[0])


# --- decisions ----------------------------------------------------------------------------------


class DecisionRequest(BaseModel):
    reason: str = Field(max_length=2000, description="Why (3 to 2,000 characters); kept in the audit log")


class DecisionResult(BaseModel):
    candidate_id: str
    status: str
    decided_at: datetime
    decision_id: int
    decided_by: str
    reason: str


# core.decide_strategy raises these (see migration 0011).
_SQLSTATES = {"P0002": 404, "55000": 409, "22023": 422}
_DECISION_RESPONSES = {409: {"model": ErrorResponse, "description": "not pending, or risk no longer passes"}}


def _approver(scope: Scope) -> None:
    principal = scope.principal
    if principal.is_master or principal.tenant_id != scope.tenant_id or principal.role != "approver":
        raise ApiError(
            403,
            "only a QuantTrade approver's own credential may decide on strategies "
            f"(this one is a {principal.kind} {principal.role} of {principal.tenant_id!r}); "
            "issue one with `bizosaas keys create --tenant quanttrade --role approver`",
        )


async def _decide(request: Request, scope: Scope, candidate_id: str, decision: str, body: DecisionRequest):
    _approver(scope)
    reason = body.reason.strip()  # recorded as sent, less surrounding blanks
    if len(reason) < 3:
        raise ApiError(422, "reason: give a reason of 3 to 2000 characters")
    if "\x00" in reason:  # Postgres text cannot hold it
        raise ApiError(422, "reason: may not contain NUL characters")
    principal = scope.principal
    try:
        rows = await request.app.state.db.fetch(
            scope.tenant_id,
            "SELECT * FROM core.decide_strategy(%s, %s, %s, %s, %s, %s)",
            [
                _candidate(candidate_id),
                decision,
                reason,
                principal.subject,
                principal.via,
                request.client.host if request.client else None,
            ],  # fmt: skip
        )
    except psycopg.Error as exc:
        status = _SQLSTATES.get(exc.sqlstate or "")
        if status is None:
            raise
        raise ApiError(status, exc.diag.message_primary or str(exc)) from None
    row = rows[0]
    return json_response({**row, "decided_by": principal.subject, "reason": reason})


ReasonBody = Annotated[DecisionRequest, Body(description="Why; recorded with the decision")]


@router.post(
    "/strategies/{candidate_id}/approve",
    response_model=DecisionResult,
    responses=_DECISION_RESPONSES,
    summary="Approve a pending strategy (a QuantTrade approver key; the decision is audited)",
)
async def approve(request: Request, scope: TradingScope, candidate_id: CandidateId, body: ReasonBody):
    return await _decide(request, scope, candidate_id, "approve", body)


@router.post(
    "/strategies/{candidate_id}/reject",
    response_model=DecisionResult,
    responses=_DECISION_RESPONSES,
    summary="Reject a pending strategy (a QuantTrade approver key; the decision is audited)",
)
async def reject(request: Request, scope: TradingScope, candidate_id: CandidateId, body: ReasonBody):
    return await _decide(request, scope, candidate_id, "reject", body)
