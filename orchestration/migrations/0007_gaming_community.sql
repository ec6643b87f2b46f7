-- ThrillRing's community data: esports news from RSS/Atom feeds, and the tournaments and
-- players it exports as files into its drop folder.

-- Every HTTP answer a news feed gave (errors included), stored before it is parsed, so a parser
-- fix can rebuild the items from here without fetching again. The body is the feed decoded
-- with its declared encoding.
CREATE TABLE raw.gaming_feed_responses (
    response_id    bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    feed_name      text NOT NULL,
    feed_url       text NOT NULL,
    request        text NOT NULL,
    status         int NOT NULL,
    body           text NOT NULL,
    etag           text,
    last_modified  text,
    attempt        int NOT NULL,
    fetched_at     timestamptz NOT NULL DEFAULT now(),
    dagster_run_id text,
    PRIMARY KEY (tenant_id, response_id)
);
CREATE INDEX gaming_feed_responses_feed_idx
    ON raw.gaming_feed_responses (tenant_id, feed_url, fetched_at DESC);
SELECT core.enable_tenant_rls('raw.gaming_feed_responses');

-- Per tenant and feed: the validators for the next conditional GET and the feed's health.
CREATE TABLE core.gaming_feed_state (
    tenant_id            text NOT NULL REFERENCES core.tenants (tenant_id),
    feed_url             text NOT NULL,
    feed_name            text NOT NULL,
    etag                 text,
    last_modified        text,
    last_status          int,
    last_fetched_at      timestamptz,
    last_success_at      timestamptz,
    consecutive_failures int NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    last_error           text,
    items_in_last_answer int,
    dagster_run_id       text,
    PRIMARY KEY (tenant_id, feed_url)
);
SELECT core.enable_tenant_rls('core.gaming_feed_state');

-- News items accumulate: a feed shows a rolling window, the table keeps every item ever seen,
-- de-duplicated (same guid, same canonical link, or same title within a short window).
CREATE TABLE core.gaming_news_items (
    tenant_id          text NOT NULL REFERENCES core.tenants (tenant_id),
    item_key           text NOT NULL,
    source             text NOT NULL,
    sources            text[] NOT NULL,
    guid               text,
    url                text CHECK (url ~ '^https?://'),
    url_key            text,
    title              text NOT NULL CHECK (title <> ''),
    title_key          text NOT NULL,
    summary            text,
    author             text,
    tags               text[] NOT NULL DEFAULT '{}',
    published_at       timestamptz NOT NULL,
    published_inferred boolean NOT NULL DEFAULT false,
    first_seen_at      timestamptz NOT NULL,
    last_seen_at       timestamptz NOT NULL,
    dagster_run_id     text,
    PRIMARY KEY (tenant_id, item_key)
);
CREATE INDEX gaming_news_items_published_idx
    ON core.gaming_news_items (tenant_id, published_at DESC, item_key);
CREATE INDEX gaming_news_items_guid_idx ON core.gaming_news_items (tenant_id, guid);
CREATE INDEX gaming_news_items_url_idx ON core.gaming_news_items (tenant_id, url_key);
CREATE INDEX gaming_news_items_title_idx ON core.gaming_news_items (tenant_id, title_key);
SELECT core.enable_tenant_rls('core.gaming_news_items');
GRANT SELECT ON core.gaming_news_items TO bizosaas_serving;

-- Players, from the tenant's players exports (upserted by player_id; never deleted).
CREATE TABLE core.gaming_players (
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    player_id      text NOT NULL,
    handle         text NOT NULL CHECK (handle <> ''),
    country        text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    team           text,
    primary_game   text,
    platform       text CHECK (platform IN ('pc', 'playstation', 'xbox', 'switch', 'mobile')),
    skill_rating   int CHECK (skill_rating BETWEEN 0 AND 10000),
    status         text NOT NULL CHECK (status IN ('active', 'inactive', 'suspended', 'banned')),
    joined_at      timestamptz NOT NULL,
    last_active_at timestamptz NOT NULL CHECK (last_active_at >= joined_at),
    source_file    text NOT NULL,
    source_sha256  text NOT NULL,
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    dagster_run_id text,
    PRIMARY KEY (tenant_id, player_id)
);
CREATE INDEX gaming_players_active_idx ON core.gaming_players (tenant_id, last_active_at DESC);
CREATE INDEX gaming_players_country_idx ON core.gaming_players (tenant_id, country, team);
SELECT core.enable_tenant_rls('core.gaming_players');
GRANT SELECT ON core.gaming_players TO bizosaas_serving;

-- Tournaments, from the tenant's tournaments exports (upserted by tournament_id).
CREATE TABLE core.gaming_tournaments (
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    tournament_id  text NOT NULL,
    name           text NOT NULL CHECK (name <> ''),
    game           text NOT NULL,
    format         text NOT NULL,
    region         text,
    team_size      int CHECK (team_size BETWEEN 1 AND 100),
    max_entrants   int CHECK (max_entrants > 0),
    start_at       timestamptz NOT NULL,
    end_at         timestamptz CHECK (end_at >= start_at),
    prize_pool     numeric(14, 2) NOT NULL CHECK (prize_pool >= 0),
    currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status         text NOT NULL
                   CHECK (status IN ('scheduled', 'registration_open', 'live', 'completed', 'cancelled')),
    source_file    text NOT NULL,
    source_sha256  text NOT NULL,
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    dagster_run_id text,
    PRIMARY KEY (tenant_id, tournament_id)
);
CREATE INDEX gaming_tournaments_start_idx ON core.gaming_tournaments (tenant_id, start_at DESC);
SELECT core.enable_tenant_rls('core.gaming_tournaments');
GRANT SELECT ON core.gaming_tournaments TO bizosaas_serving;

-- Who entered which tournament and how they placed. Entries are upserted by (tournament,
-- player); a withdrawal is a status, so nothing an export said is ever deleted.
CREATE TABLE core.gaming_tournament_entries (
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    tournament_id  text NOT NULL,
    player_id      text NOT NULL,
    team           text,
    placement      int CHECK (placement > 0),
    prize_won      numeric(14, 2) CHECK (prize_won >= 0),
    registered_at  timestamptz,
    status         text NOT NULL CHECK (status IN ('registered', 'checked_in', 'playing', 'eliminated',
                                                   'finished', 'withdrawn', 'disqualified')),
    source_file    text NOT NULL,
    source_sha256  text NOT NULL,
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    dagster_run_id text,
    PRIMARY KEY (tenant_id, tournament_id, player_id),
    FOREIGN KEY (tenant_id, tournament_id) REFERENCES core.gaming_tournaments (tenant_id, tournament_id),
    FOREIGN KEY (tenant_id, player_id) REFERENCES core.gaming_players (tenant_id, player_id)
);
CREATE INDEX gaming_tournament_entries_player_idx
    ON core.gaming_tournament_entries (tenant_id, player_id);
SELECT core.enable_tenant_rls('core.gaming_tournament_entries');
GRANT SELECT ON core.gaming_tournament_entries TO bizosaas_serving;

-- The ledger of loaded export files: the same content (sha256) is loaded at most once per
-- tenant, whatever its file name and however often it is dropped or requested. Written in the
-- same transaction as the rows it loaded.
CREATE TABLE core.gaming_file_loads (
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    sha256         text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    kind           text NOT NULL CHECK (kind IN ('tournaments', 'players')),
    file_name      text NOT NULL,
    file_format    text NOT NULL CHECK (file_format IN ('csv', 'json')),
    size_bytes     bigint NOT NULL CHECK (size_bytes >= 0),
    records        int NOT NULL CHECK (records >= 0),
    entries        int NOT NULL DEFAULT 0 CHECK (entries >= 0),
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    dagster_run_id text,
    PRIMARY KEY (tenant_id, sha256)
);
SELECT core.enable_tenant_rls('core.gaming_file_loads');
