-- Retention: the daily prune finds each tenant's old raw answers by age. Four of the six raw
-- tables had no index that leads with (tenant_id, fetched_at) (directory's and the feeds' lead
-- with the search or the URL, gaming's and trading's with the run), so every prune would scan
-- the whole table; append-only tables pay little for one more index.
CREATE INDEX IF NOT EXISTS directory_api_responses_age_idx ON raw.directory_api_responses (tenant_id, fetched_at);
CREATE INDEX IF NOT EXISTS gaming_api_responses_age_idx ON raw.gaming_api_responses (tenant_id, fetched_at);
CREATE INDEX IF NOT EXISTS gaming_feed_responses_age_idx ON raw.gaming_feed_responses (tenant_id, fetched_at);
CREATE INDEX IF NOT EXISTS ecommerce_api_responses_age_idx ON raw.ecommerce_api_responses (tenant_id, fetched_at);
CREATE INDEX IF NOT EXISTS crm_api_responses_age_idx ON raw.crm_api_responses (tenant_id, fetched_at);
CREATE INDEX IF NOT EXISTS trading_api_responses_age_idx ON raw.trading_api_responses (tenant_id, fetched_at);
