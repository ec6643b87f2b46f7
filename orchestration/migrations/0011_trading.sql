-- QuantTrade: daily market prices, the strategy validation pipeline (backtest, forward test,
-- risk, approval queue) and the append-only audit of human decisions.

-- Every HTTP answer a market-data source gave (errors and throttle notes included, API keys
-- never), stored before it is parsed.
CREATE TABLE raw.trading_api_responses (
    response_id    bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    partition_key  text NOT NULL,
    source         text NOT NULL CHECK (source IN ('coingecko', 'alphavantage', 'frankfurter')),
    symbol         text,
    request        text NOT NULL,
    status         int NOT NULL,
    body           text NOT NULL,
    attempt        int NOT NULL,
    fetched_at     timestamptz NOT NULL DEFAULT now(),
    dagster_run_id text,
    PRIMARY KEY (tenant_id, response_id)
);
CREATE INDEX trading_api_responses_run_idx
    ON raw.trading_api_responses (tenant_id, dagster_run_id, source);
SELECT core.enable_tenant_rls('raw.trading_api_responses');

-- One daily bar per symbol per day. A day's partition replaces exactly that day's rows.
-- Forex (ECB reference rates) has one fix a day: open = high = low = close, no volume.
CREATE TABLE core.market_prices (
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    symbol         text NOT NULL,             -- the tenant's universe name: BTC-USD, AAPL, EURUSD
    day            date NOT NULL,             -- UTC day of the bar
    asset_class    text NOT NULL CHECK (asset_class IN ('crypto', 'stock', 'forex')),
    source         text NOT NULL CHECK (source IN ('coingecko', 'alphavantage', 'frankfurter')),
    currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    open           double precision NOT NULL CHECK (open > 0),
    high           double precision NOT NULL,
    low            double precision NOT NULL CHECK (low > 0),
    close          double precision NOT NULL CHECK (close > 0),
    volume         double precision CHECK (volume >= 0),
    fetched_at     timestamptz NOT NULL DEFAULT now(),
    dagster_run_id text,
    PRIMARY KEY (tenant_id, symbol, day),
    CHECK (low <= open AND low <= close AND high >= open AND high >= close)
);
CREATE INDEX market_prices_day_idx ON core.market_prices (tenant_id, day);
SELECT core.enable_tenant_rls('core.market_prices');
GRANT SELECT ON core.market_prices TO bizosaas_serving;

-- Stage 1: every candidate (strategy x parameters x symbol) backtested on the in-sample window,
-- with the stage's verdict. `candidate_id` is stable across runs for the same candidate.
-- Ratios are fractions (0.12 = 12 %); max_drawdown is a positive fraction of the peak.
CREATE TABLE core.trading_backtests (
    tenant_id            text NOT NULL REFERENCES core.tenants (tenant_id),
    candidate_id         text NOT NULL,
    strategy             text NOT NULL,
    params               jsonb NOT NULL,
    symbol               text NOT NULL,
    asset_class          text NOT NULL,
    window_start         date NOT NULL,
    window_end           date NOT NULL,
    bars                 int NOT NULL CHECK (bars > 0),
    total_return         double precision NOT NULL,
    annual_return        double precision,
    sharpe               double precision,         -- NULL when returns have no variance
    max_drawdown         double precision NOT NULL CHECK (max_drawdown >= 0 AND max_drawdown <= 1),
    win_rate             double precision CHECK (win_rate BETWEEN 0 AND 1),  -- NULL: no closed trade
    trades               int NOT NULL CHECK (trades >= 0),
    profit_factor        double precision,         -- NULL: no losing trade (or no trade)
    exposure             double precision NOT NULL CHECK (exposure BETWEEN 0 AND 1),
    positive_month_share double precision CHECK (positive_month_share BETWEEN 0 AND 1),
    final_value          double precision NOT NULL,
    passed               boolean NOT NULL,
    fail_reasons         text[] NOT NULL DEFAULT '{}',
    built_at             timestamptz NOT NULL DEFAULT now(),
    dagster_run_id       text,
    PRIMARY KEY (tenant_id, candidate_id)
);
SELECT core.enable_tenant_rls('core.trading_backtests');
GRANT SELECT ON core.trading_backtests TO bizosaas_serving;

-- Stage 2: candidates that passed the backtest, paper-traded on the later, unseen window.
-- `performance_gap` compares forward with backtest performance (the plan's target: <= 0.15).
CREATE TABLE core.trading_forward_tests (
    tenant_id            text NOT NULL REFERENCES core.tenants (tenant_id),
    candidate_id         text NOT NULL,
    window_start         date NOT NULL,
    window_end           date NOT NULL,
    gap_days             int NOT NULL CHECK (gap_days >= 0),  -- embargo after the in-sample window
    bars                 int NOT NULL CHECK (bars > 0),
    total_return         double precision NOT NULL,
    annual_return        double precision,
    sharpe               double precision,
    max_drawdown         double precision NOT NULL CHECK (max_drawdown >= 0 AND max_drawdown <= 1),
    win_rate             double precision CHECK (win_rate BETWEEN 0 AND 1),
    trades               int NOT NULL CHECK (trades >= 0),
    profit_factor        double precision,
    exposure             double precision NOT NULL CHECK (exposure BETWEEN 0 AND 1),
    positive_month_share double precision CHECK (positive_month_share BETWEEN 0 AND 1),
    backtest_metric      double precision,         -- the compared metric, in-sample
    forward_metric       double precision,         -- ... and forward
    performance_gap      double precision,
    passed               boolean NOT NULL,
    fail_reasons         text[] NOT NULL DEFAULT '{}',
    built_at             timestamptz NOT NULL DEFAULT now(),
    dagster_run_id       text,
    PRIMARY KEY (tenant_id, candidate_id)
);
SELECT core.enable_tenant_rls('core.trading_forward_tests');
GRANT SELECT ON core.trading_forward_tests TO bizosaas_serving;

-- Stage 3: risk limits on candidates that passed the forward test.
CREATE TABLE core.trading_risk_assessments (
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    candidate_id   text NOT NULL,
    max_drawdown   double precision NOT NULL,
    exposure       double precision NOT NULL,
    concentration  double precision NOT NULL,
    trades         int NOT NULL,
    limits         jsonb NOT NULL,                 -- the limits applied, as configured
    breaches       text[] NOT NULL DEFAULT '{}',
    passed         boolean NOT NULL,
    built_at       timestamptz NOT NULL DEFAULT now(),
    dagster_run_id text,
    PRIMARY KEY (tenant_id, candidate_id)
);
SELECT core.enable_tenant_rls('core.trading_risk_assessments');
GRANT SELECT ON core.trading_risk_assessments TO bizosaas_serving;

-- Stage 4: the approval queue. The asset adds candidates that passed every stage as `pending`
-- and withdraws (with a reason) any pending or approved one that no longer passes; only
-- core.decide_strategy moves a candidate to approved or rejected. Decisions survive re-runs.
CREATE TABLE core.trading_approvals (
    tenant_id        text NOT NULL REFERENCES core.tenants (tenant_id),
    candidate_id     text NOT NULL,
    strategy         text NOT NULL,
    params           jsonb NOT NULL,
    symbol           text NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'withdrawn')),
    status_reason    text,                          -- why withdrawn, or the decision's reason
    snapshot         jsonb NOT NULL,                -- stage metrics when queued (or last refreshed)
    queued_at        timestamptz NOT NULL DEFAULT now(),
    decided_at       timestamptz,
    decided_by       text,                          -- key id or JWT subject of the approver
    updated_at       timestamptz NOT NULL DEFAULT now(),
    dagster_run_id   text,
    PRIMARY KEY (tenant_id, candidate_id)
);
CREATE INDEX trading_approvals_status_idx ON core.trading_approvals (tenant_id, status);
SELECT core.enable_tenant_rls('core.trading_approvals');
GRANT SELECT ON core.trading_approvals TO bizosaas_serving;

-- Every human decision, append-only: nobody may update or delete a row, the owner included.
CREATE TABLE core.trading_decisions (
    decision_id    bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    candidate_id   text NOT NULL,
    decision       text NOT NULL CHECK (decision IN ('approve', 'reject')),
    reason         text NOT NULL CHECK (length(btrim(reason)) BETWEEN 3 AND 2000),
    approver       text NOT NULL,
    approver_via   text NOT NULL CHECK (approver_via IN ('api_key', 'jwt')),
    client_ip      text,
    risk_snapshot  jsonb,                           -- the risk assessment the decision saw
    decided_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, decision_id)
);
SELECT core.enable_tenant_rls('core.trading_decisions');
GRANT SELECT ON core.trading_decisions TO bizosaas_serving;
REVOKE UPDATE, DELETE ON core.trading_decisions FROM bizosaas_writer;

CREATE FUNCTION core.trading_decisions_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'core.trading_decisions is an append-only audit log';
END
$$;
CREATE TRIGGER trading_decisions_append_only
    BEFORE UPDATE OR DELETE ON core.trading_decisions
    FOR EACH STATEMENT EXECUTE FUNCTION core.trading_decisions_append_only();

-- A human decision on a pending candidate of the calling transaction's tenant: the queue row and
-- its audit record change together or not at all. The API checks who may call it (a QuantTrade
-- approver); this function checks what may be decided. Errors carry SQLSTATEs the API maps:
--   P0002 no such candidate (404), 55000 not pending / risk no longer passes (409),
--   22023 bad decision or reason (422).
CREATE FUNCTION core.decide_strategy(
    p_candidate text, p_decision text, p_reason text, p_approver text, p_via text, p_client_ip text
) RETURNS TABLE (candidate_id text, status text, decided_at timestamptz, decision_id bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, core
    AS $$
DECLARE
    v_tenant text := core.current_tenant();
    v_row    core.trading_approvals;
    v_risk   core.trading_risk_assessments;
    v_status text;
    v_id     bigint;
BEGIN
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'decide_strategy: no tenant is set in this transaction';
    END IF;
    IF p_decision IS NULL OR p_decision NOT IN ('approve', 'reject') THEN
        RAISE EXCEPTION 'decision must be approve or reject' USING ERRCODE = '22023';
    END IF;
    IF p_reason IS NULL OR length(btrim(p_reason)) NOT BETWEEN 3 AND 2000 THEN
        RAISE EXCEPTION 'a reason of 3 to 2000 characters is required' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO v_row FROM core.trading_approvals a
     WHERE a.tenant_id = v_tenant AND a.candidate_id = p_candidate FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no strategy % in the approval queue', p_candidate USING ERRCODE = 'P0002';
    END IF;
    IF v_row.status <> 'pending' THEN
        RAISE EXCEPTION 'strategy % is %, not pending', p_candidate, v_row.status USING ERRCODE = '55000';
    END IF;
    SELECT * INTO v_risk FROM core.trading_risk_assessments r
     WHERE r.tenant_id = v_tenant AND r.candidate_id = p_candidate;
    IF p_decision = 'approve' AND (NOT FOUND OR NOT v_risk.passed) THEN
        RAISE EXCEPTION 'strategy % no longer passes its risk limits', p_candidate USING ERRCODE = '55000';
    END IF;
    -- Each stage re-runs after the one before it, so between runs an earlier stage may already
    -- have failed a candidate that the queue still shows as pending.
    IF p_decision = 'approve' AND NOT (
           EXISTS (SELECT 1 FROM core.trading_backtests b
                    WHERE b.tenant_id = v_tenant AND b.candidate_id = p_candidate AND b.passed)
       AND EXISTS (SELECT 1 FROM core.trading_forward_tests f
                    WHERE f.tenant_id = v_tenant AND f.candidate_id = p_candidate AND f.passed)) THEN
        RAISE EXCEPTION 'strategy % no longer passes its backtest or forward test', p_candidate
            USING ERRCODE = '55000';
    END IF;
    v_status := CASE p_decision WHEN 'approve' THEN 'approved' ELSE 'rejected' END;
    INSERT INTO core.trading_decisions AS d
           (tenant_id, candidate_id, decision, reason, approver, approver_via, client_ip, risk_snapshot)
    VALUES (v_tenant, p_candidate, p_decision, btrim(p_reason), p_approver, p_via, p_client_ip,
            CASE WHEN v_risk.candidate_id IS NULL THEN NULL ELSE to_jsonb(v_risk) END)
    RETURNING d.decision_id INTO v_id;
    UPDATE core.trading_approvals a
       SET status = v_status, status_reason = btrim(p_reason), decided_at = now(),
           decided_by = p_approver, updated_at = now()
     WHERE a.tenant_id = v_tenant AND a.candidate_id = p_candidate;
    RETURN QUERY SELECT p_candidate, v_status, now(), v_id;
END
$$;
REVOKE ALL ON FUNCTION core.decide_strategy(text, text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION core.decide_strategy(text, text, text, text, text, text) TO bizosaas_serving;
