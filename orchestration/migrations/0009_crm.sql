-- CRM and continuous learning: leads (de-duplicated by normalised email, with their merge
-- history), outcomes, campaigns and their daily figures, the campaign touches of each lead,
-- point-in-time lead features, the per-tenant model registry, lead scores and campaign insights.

-- Every answer the CRM's leads API gave (errors included), stored before it is parsed.
CREATE TABLE raw.crm_api_responses (
    response_id    bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    endpoint       text NOT NULL,              -- e.g. 'leads'
    params         jsonb NOT NULL,             -- the request's query parameters (no credentials)
    status         int NOT NULL,
    body           text NOT NULL,
    attempt        int NOT NULL,
    fetched_at     timestamptz NOT NULL DEFAULT now(),
    dagster_run_id text,
    PRIMARY KEY (tenant_id, response_id)
);
CREATE INDEX crm_api_responses_fetched_idx ON raw.crm_api_responses (tenant_id, endpoint, fetched_at DESC);
SELECT core.enable_tenant_rls('raw.crm_api_responses');

-- One row per person per tenant: source records with the same normalised email are one lead.
-- `ai_score`/`ai_reasons` belong to the lead_scores asset; ingestion never writes them.
CREATE TABLE core.crm_leads (
    tenant_id        text NOT NULL REFERENCES core.tenants (tenant_id),
    lead_id          text NOT NULL,            -- stable platform id (derived from tenant + email_key)
    email            text NOT NULL,            -- as first received (trimmed)
    email_key        text NOT NULL,            -- normalised email: the de-duplication key
    name             text,
    phone            text,                     -- E.164 where it parses, else as received
    company_name     text,
    source           text NOT NULL,            -- normalised: web, referral, paid_search, ...
    campaign_id      text,                     -- the campaign that brought the lead, if any
    campaign_data    jsonb NOT NULL DEFAULT '{}',  -- utm fields and the CRM's campaign info
    status           text NOT NULL,            -- open | qualified | won | lost
    created_at       timestamptz NOT NULL,     -- earliest creation among merged records
    updated_at       timestamptz NOT NULL,
    source_records   int NOT NULL DEFAULT 1 CHECK (source_records >= 1),
    ai_score         smallint CHECK (ai_score BETWEEN 0 AND 100),
    ai_reasons       jsonb,
    scored_at        timestamptz,
    ingested_at      timestamptz NOT NULL DEFAULT now(),
    dagster_run_id   text,
    PRIMARY KEY (tenant_id, lead_id),
    UNIQUE (tenant_id, email_key)
);
CREATE INDEX crm_leads_score_idx ON core.crm_leads (tenant_id, ai_score DESC NULLS LAST, lead_id);
-- NULLS LAST as the API sorts (serving.pagination.order_by), so `sort=-created_at` is index-driven.
CREATE INDEX crm_leads_created_idx ON core.crm_leads (tenant_id, created_at DESC NULLS LAST, lead_id);
CREATE INDEX crm_leads_source_idx ON core.crm_leads (tenant_id, source, status);
-- The leads route's `q`: a prefix of the normalised email or of the name, found by index
-- (text_pattern_ops: LIKE 'prefix%' uses them whatever the database's collation).
CREATE INDEX crm_leads_email_prefix_idx ON core.crm_leads (tenant_id, email_key text_pattern_ops);
CREATE INDEX crm_leads_name_prefix_idx ON core.crm_leads (tenant_id, lower(name) text_pattern_ops);
SELECT core.enable_tenant_rls('core.crm_leads');
GRANT SELECT ON core.crm_leads TO bizosaas_serving;

-- The merge history: every source record as received, and which lead it became part of.
CREATE TABLE core.crm_lead_records (
    tenant_id        text NOT NULL REFERENCES core.tenants (tenant_id),
    origin           text NOT NULL,            -- 'api' or 'file:<sha256>'
    record_id        text NOT NULL,            -- the CRM's id, or the file's row id
    lead_id          text,                     -- null for a rejected record (no email to key it by)
    action           text NOT NULL CHECK (action IN ('created', 'merged', 'updated', 'rejected')),
    record           jsonb NOT NULL,           -- the fields as received
    reason           text,                     -- why a rejected record is not a lead
    received_at      timestamptz NOT NULL DEFAULT now(),
    dagster_run_id   text,
    PRIMARY KEY (tenant_id, origin, record_id, received_at),
    CHECK ((action = 'rejected') = (lead_id IS NULL))
);
CREATE INDEX crm_lead_records_lead_idx ON core.crm_lead_records (tenant_id, lead_id, received_at);
SELECT core.enable_tenant_rls('core.crm_lead_records');
GRANT SELECT ON core.crm_lead_records TO bizosaas_serving;

-- What happened to a lead, with when: qualified, then won or lost.
CREATE TABLE core.crm_lead_outcomes (
    tenant_id        text NOT NULL REFERENCES core.tenants (tenant_id),
    lead_id          text NOT NULL,
    outcome          text NOT NULL CHECK (outcome IN ('qualified', 'won', 'lost')),
    occurred_at      timestamptz NOT NULL,
    value            numeric(18, 2),           -- deal value for 'won', when known
    origin           text NOT NULL,
    ingested_at      timestamptz NOT NULL DEFAULT now(),
    dagster_run_id   text,
    PRIMARY KEY (tenant_id, lead_id, outcome),
    FOREIGN KEY (tenant_id, lead_id) REFERENCES core.crm_leads (tenant_id, lead_id)
        DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX crm_lead_outcomes_time_idx ON core.crm_lead_outcomes (tenant_id, occurred_at);
SELECT core.enable_tenant_rls('core.crm_lead_outcomes');
GRANT SELECT ON core.crm_lead_outcomes TO bizosaas_serving;

CREATE TABLE core.crm_campaigns (
    tenant_id        text NOT NULL REFERENCES core.tenants (tenant_id),
    campaign_id      text NOT NULL,
    name             text NOT NULL,
    channel          text NOT NULL,            -- paid_search, paid_social, email, display, referral, ...
    segment          text,                     -- the audience the campaign targets
    started_on       date,
    ended_on         date,
    ingested_at      timestamptz NOT NULL DEFAULT now(),
    dagster_run_id   text,
    PRIMARY KEY (tenant_id, campaign_id)
);
SELECT core.enable_tenant_rls('core.crm_campaigns');
GRANT SELECT ON core.crm_campaigns TO bizosaas_serving;

CREATE TABLE core.crm_campaign_daily (
    tenant_id        text NOT NULL REFERENCES core.tenants (tenant_id),
    campaign_id      text NOT NULL,
    day              date NOT NULL,
    spend            numeric(18, 2) NOT NULL CHECK (spend >= 0),
    currency         text NOT NULL,
    impressions      bigint NOT NULL CHECK (impressions >= 0),
    clicks           bigint NOT NULL CHECK (clicks >= 0),
    conversions      bigint NOT NULL CHECK (conversions >= 0),
    ingested_at      timestamptz NOT NULL DEFAULT now(),
    dagster_run_id   text,
    PRIMARY KEY (tenant_id, campaign_id, day),
    FOREIGN KEY (tenant_id, campaign_id) REFERENCES core.crm_campaigns (tenant_id, campaign_id)
        DEFERRABLE INITIALLY DEFERRED
);
SELECT core.enable_tenant_rls('core.crm_campaign_daily');
GRANT SELECT ON core.crm_campaign_daily TO bizosaas_serving;

-- A lead's contacts with campaigns (ad clicks, email clicks, form fills), the raw material of
-- its touch features.
CREATE TABLE core.crm_touches (
    tenant_id        text NOT NULL REFERENCES core.tenants (tenant_id),
    lead_id          text NOT NULL,
    campaign_id      text NOT NULL,
    touched_at       timestamptz NOT NULL,
    kind             text NOT NULL,            -- ad_click, email_click, form, visit, ...
    origin           text NOT NULL,
    dagster_run_id   text,
    PRIMARY KEY (tenant_id, lead_id, campaign_id, touched_at, kind),
    FOREIGN KEY (tenant_id, lead_id) REFERENCES core.crm_leads (tenant_id, lead_id)
        DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX crm_touches_time_idx ON core.crm_touches (tenant_id, touched_at);
SELECT core.enable_tenant_rls('core.crm_touches');
-- The lead detail route summarises a lead's touches.
GRANT SELECT ON core.crm_touches TO bizosaas_serving;

-- Loaded export files: the same content is loaded at most once per tenant. Written in the
-- same transaction as the rows it loaded.
CREATE TABLE core.crm_file_loads (
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    sha256         text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    kind           text NOT NULL CHECK (kind IN ('leads', 'outcomes', 'campaigns', 'touches')),
    file_name      text NOT NULL,
    file_format    text NOT NULL CHECK (file_format IN ('csv', 'json')),
    size_bytes     bigint NOT NULL CHECK (size_bytes >= 0),
    records        int NOT NULL CHECK (records >= 0),
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    dagster_run_id text,
    PRIMARY KEY (tenant_id, sha256)
);
SELECT core.enable_tenant_rls('core.crm_file_loads');

-- Point-in-time features: each row is computed from inputs no later than `as_of`
-- (`max_input_at` records the latest input used, so leakage is checkable). `label` is known
-- only for leads whose outcome window has closed.
CREATE TABLE core.crm_lead_features (
    tenant_id        text NOT NULL REFERENCES core.tenants (tenant_id),
    lead_id          text NOT NULL,
    as_of            timestamptz NOT NULL,     -- the lead's scoring time
    max_input_at     timestamptz NOT NULL,
    features         jsonb NOT NULL,           -- name -> number (the model's inputs)
    source           text NOT NULL,
    label            smallint CHECK (label IN (0, 1)),
    label_at         timestamptz,
    is_open          boolean NOT NULL,         -- no won/lost outcome known now
    computed_at      timestamptz NOT NULL DEFAULT now(),
    dagster_run_id   text,
    PRIMARY KEY (tenant_id, lead_id)
);
SELECT core.enable_tenant_rls('core.crm_lead_features');

-- The model registry: every version trained per tenant, promoted or not.
CREATE TABLE core.crm_model_registry (
    tenant_id        text NOT NULL REFERENCES core.tenants (tenant_id),
    version          int NOT NULL CHECK (version >= 1),
    kind             text NOT NULL CHECK (kind IN ('model', 'baseline')),
    algorithm        text NOT NULL,
    features         jsonb NOT NULL,           -- ordered feature names
    params           jsonb NOT NULL,
    metrics          jsonb NOT NULL,           -- roc_auc, pr_auc, brier, calibration, baseline_*
    holdout          jsonb NOT NULL,           -- how the time split was made (cut-off, rows, positives)
    training_rows    int NOT NULL CHECK (training_rows >= 0),
    outcomes_seen    int NOT NULL CHECK (outcomes_seen >= 0),  -- labelled rows when trained
    status           text NOT NULL CHECK (status IN ('champion', 'retired', 'rejected')),
    decision         text NOT NULL,            -- why it was promoted or rejected
    artifact         bytea,                    -- the fitted estimator (joblib), null for baselines
    trained_at       timestamptz NOT NULL DEFAULT now(),
    dagster_run_id   text,
    PRIMARY KEY (tenant_id, version)
);
CREATE UNIQUE INDEX crm_model_registry_one_champion
    ON core.crm_model_registry (tenant_id) WHERE status = 'champion';
SELECT core.enable_tenant_rls('core.crm_model_registry');
GRANT SELECT (tenant_id, version, kind, algorithm, features, params, metrics, holdout, training_rows,
              outcomes_seen, status, decision, trained_at)
    ON core.crm_model_registry TO bizosaas_serving;

-- The latest score of every open lead, with its top reasons.
CREATE TABLE core.crm_lead_scores (
    tenant_id        text NOT NULL REFERENCES core.tenants (tenant_id),
    lead_id          text NOT NULL,
    ai_score         smallint NOT NULL CHECK (ai_score BETWEEN 0 AND 100),
    probability      double precision NOT NULL CHECK (probability BETWEEN 0 AND 1),
    reasons          jsonb NOT NULL,           -- [{feature, value, effect, text}], strongest first
    model_version    int NOT NULL,
    model_kind       text NOT NULL CHECK (model_kind IN ('model', 'baseline')),
    scored_at        timestamptz NOT NULL,
    dagster_run_id   text,
    PRIMARY KEY (tenant_id, lead_id)
);
SELECT core.enable_tenant_rls('core.crm_lead_scores');
GRANT SELECT ON core.crm_lead_scores TO bizosaas_serving;

-- What worked, per tenant: one row per (dimension, value) against the tenant's baseline.
CREATE TABLE core.crm_campaign_insights (
    tenant_id        text NOT NULL REFERENCES core.tenants (tenant_id),
    dimension        text NOT NULL CHECK (dimension IN ('channel', 'campaign', 'segment', 'source')),
    value            text NOT NULL,
    label            text NOT NULL,            -- what a reader calls it (the campaign's name)
    leads            int NOT NULL,             -- mature leads only (see crm_insight_reports.method)
    conversions      int NOT NULL,
    conversion_rate  double precision CHECK (conversion_rate BETWEEN 0 AND 1),
    spend            numeric(18, 2),
    cost_per_lead    numeric(18, 2),
    cost_per_conversion numeric(18, 2),
    uplift           double precision,         -- conversion rate minus the tenant's baseline
    uplift_ci_low    double precision,
    uplift_ci_high   double precision,
    computed_at      timestamptz NOT NULL,
    dagster_run_id   text,
    PRIMARY KEY (tenant_id, dimension, value)
);
SELECT core.enable_tenant_rls('core.crm_campaign_insights');
GRANT SELECT ON core.crm_campaign_insights TO bizosaas_serving;

-- The tenant's recommendations derived from the insights, and the optional narrative.
CREATE TABLE core.crm_insight_reports (
    tenant_id        text NOT NULL REFERENCES core.tenants (tenant_id),
    baseline_rate    double precision,
    leads            int NOT NULL,
    conversions      int NOT NULL,
    recommendations  jsonb NOT NULL,           -- [{rank, action, dimension, value, text, evidence, target}]
    method           jsonb NOT NULL DEFAULT '{}',  -- maturity cut-off, CI method, leads left out
    narrative        text,                     -- null unless an LLM endpoint is configured
    narrative_model  text,
    narrative_status text NOT NULL,            -- not configured | ok | rejected: why | failed: why
    computed_at      timestamptz NOT NULL,
    dagster_run_id   text,
    PRIMARY KEY (tenant_id)
);
SELECT core.enable_tenant_rls('core.crm_insight_reports');
GRANT SELECT ON core.crm_insight_reports TO bizosaas_serving;
