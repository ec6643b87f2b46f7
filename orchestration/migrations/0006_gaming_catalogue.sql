-- ThrillRing's game catalogue: raw answers of IGDB, Twitch, Steam and OpenCritic, the fused
-- catalogue (one row per game per tenant) and the daily Steam price snapshots.

-- Every HTTP answer a gaming source gave (errors included; Twitch tokens redacted), stored
-- before it is parsed, so nothing fetched is lost when parsing or a later step fails.
CREATE TABLE raw.gaming_api_responses (
    response_id    bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    asset          text NOT NULL CHECK (asset IN ('game_catalogue', 'game_price_snapshots')),
    partition_key  text NOT NULL,
    source         text NOT NULL CHECK (source IN ('igdb', 'twitch', 'steam', 'opencritic')),
    igdb_id        bigint,
    request        text NOT NULL,
    status         int NOT NULL,
    body           text NOT NULL,
    attempt        int NOT NULL,
    fetched_at     timestamptz NOT NULL DEFAULT now(),
    dagster_run_id text,
    PRIMARY KEY (tenant_id, response_id)
);
CREATE INDEX gaming_api_responses_run_idx
    ON raw.gaming_api_responses (tenant_id, dagster_run_id, source);
SELECT core.enable_tenant_rls('raw.gaming_api_responses');

-- One row per game per tenant: IGDB's featured list fused with Steam (price, reviews) and
-- OpenCritic (critic score), with each source's key and when each last answered.
CREATE TABLE core.gaming_catalogue (
    tenant_id           text NOT NULL REFERENCES core.tenants (tenant_id),
    igdb_id             bigint NOT NULL,
    popularity_rank     int NOT NULL CHECK (popularity_rank > 0),
    name                text NOT NULL CHECK (name <> ''),
    name_key            text NOT NULL,
    slug                text,
    release_date        date,
    genres              text[] NOT NULL DEFAULT '{}',
    platforms           text[] NOT NULL DEFAULT '{}',
    genre_keys          text[] NOT NULL DEFAULT '{}',
    platform_keys       text[] NOT NULL DEFAULT '{}',
    total_rating        numeric(5, 2),
    total_rating_count  int,
    igdb_updated_at     timestamptz,
    steam_appid         bigint,
    steam_status        text NOT NULL CHECK (steam_status IN ('ok', 'unavailable', 'not_on_steam')),
    steam_name          text,
    steam_type          text,
    is_free             boolean,
    required_age        int,
    steam_genres        text[],
    steam_release_date_raw text,
    currency            text,
    initial_price       numeric(12, 2),
    final_price         numeric(12, 2),
    discount_percent    int,
    review_score        int,
    review_score_desc   text,
    reviews_positive    int,
    reviews_negative    int,
    reviews_total       int,
    opencritic_id       bigint,
    opencritic_status   text NOT NULL
        CHECK (opencritic_status IN ('matched', 'no_match', 'not_searched')),
    opencritic_match_name text,
    opencritic_match_confidence numeric(4, 3)
        CHECK (opencritic_match_confidence BETWEEN 0 AND 1),
    critic_score        numeric(5, 2),
    critic_reviews      int,
    critic_tier         text,
    percent_recommended numeric(5, 2),
    opencritic_searched_at timestamptz,
    opencritic_fetched_at timestamptz,
    flags               text[] NOT NULL DEFAULT '{}',
    igdb_fetched_at     timestamptz NOT NULL,
    steam_fetched_at    timestamptz,
    content_hash        text NOT NULL,
    first_seen          timestamptz NOT NULL,
    changed_at          timestamptz NOT NULL,
    refreshed_at        timestamptz NOT NULL DEFAULT now(),
    dagster_run_id      text,
    -- The run whose stored answers built the row: itself, or for a reparse the refresh it read.
    answers_run_id      text NOT NULL,
    PRIMARY KEY (tenant_id, igdb_id)
);
-- Store keys are unique per tenant too (the asset gives a shared one to the most popular game).
CREATE UNIQUE INDEX gaming_catalogue_steam_idx ON core.gaming_catalogue (tenant_id, steam_appid)
    WHERE steam_appid IS NOT NULL;
CREATE UNIQUE INDEX gaming_catalogue_opencritic_idx ON core.gaming_catalogue (tenant_id, opencritic_id)
    WHERE opencritic_id IS NOT NULL;
CREATE INDEX gaming_catalogue_rank_idx ON core.gaming_catalogue (tenant_id, popularity_rank);
SELECT core.enable_tenant_rls('core.gaming_catalogue');
GRANT SELECT ON core.gaming_catalogue TO bizosaas_serving;

-- One row per game with a Steam app id per day: the price as the store showed it when the
-- day's snapshot ran, in major units (Steam's hundredths divided by 100). Value ranges
-- (prices, currencies, discounts, ratings) are guarded by the assets' blocking checks, which
-- report the offending values, rather than by constraints that would only abort the write.
CREATE TABLE core.gaming_price_snapshots (
    tenant_id        text NOT NULL REFERENCES core.tenants (tenant_id),
    snapshot_date    date NOT NULL,
    igdb_id          bigint NOT NULL,
    steam_appid      bigint NOT NULL,
    currency         text,
    initial_price    numeric(12, 2),
    final_price      numeric(12, 2),
    discount_percent int,
    is_free          boolean NOT NULL,
    available        boolean NOT NULL,
    fetched_at       timestamptz NOT NULL,
    dagster_run_id   text,
    PRIMARY KEY (tenant_id, snapshot_date, igdb_id)
);
-- The API's "latest price of each game" and the mart's day-over-day comparison.
CREATE INDEX gaming_price_snapshots_game_idx
    ON core.gaming_price_snapshots (tenant_id, igdb_id, snapshot_date DESC);
SELECT core.enable_tenant_rls('core.gaming_price_snapshots');
GRANT SELECT ON core.gaming_price_snapshots TO bizosaas_serving;
