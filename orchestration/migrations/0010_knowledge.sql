-- The knowledge layer: entity embeddings in pgvector, the tenant's knowledge graph (canonical
-- here, synced to Neo4j), and the training rows the same pipeline feeds.

-- One vector per (tenant, model, entity). Partitioned by tenant, then by model, so that a search
-- is an HNSW scan of one tenant's vectors of one model. pgvector 0.6.2 filters *after* the HNSW
-- scan and has no iterative scans: with one index over every tenant, a tenant holding 1% of the
-- vectors would get ~0.4 of its 40 candidates back. Partitions are created on demand by
-- core.ensure_embedding_space (tenants and models arrive at run time), each model's leaf with
-- an HNSW index on the vector cast to that model's dimension; the parent column has no fixed
-- dimension so two models (e.g. 384 and 1536) can coexist while a tenant switches.
CREATE TABLE core.embeddings (
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    model          text NOT NULL,             -- e.g. all-MiniLM-L6-v2, text-embedding-3-small
    entity_type    text NOT NULL,             -- business | game | product | lead | campaign | ...
    entity_id      text NOT NULL,             -- the entity's id in its own table
    dim            int NOT NULL CHECK (dim > 0),
    content_hash   text NOT NULL,             -- sha256 of the template version and the text
    content        text NOT NULL,             -- the embedded text (evidence, debugging)
    embedding      vector NOT NULL CHECK (vector_dims(embedding) = dim),
    embedded_at    timestamptz NOT NULL DEFAULT now(),
    dagster_run_id text,
    PRIMARY KEY (tenant_id, model, entity_type, entity_id)
) PARTITION BY LIST (tenant_id);
SELECT core.enable_tenant_rls('core.embeddings');
GRANT SELECT ON core.embeddings TO bizosaas_serving;

-- Which (tenant, model) vector spaces exist, with their dimension and leaf table. Written only
-- by core.ensure_embedding_space.
CREATE TABLE core.embedding_spaces (
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    model          text NOT NULL,
    dim            int NOT NULL CHECK (dim BETWEEN 1 AND 2000),  -- HNSW indexes up to 2,000 dims
    leaf_table     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- Set when a run has embedded every entity of the tenant in this model: retrieval reads the
    -- configured model once it is ready, and the previous ready one until then.
    ready_at       timestamptz,
    PRIMARY KEY (tenant_id, model)
);
SELECT core.enable_tenant_rls('core.embedding_spaces');
GRANT SELECT ON core.embedding_spaces TO bizosaas_serving;
REVOKE INSERT, UPDATE, DELETE ON core.embedding_spaces FROM bizosaas_writer;
GRANT UPDATE (ready_at) ON core.embedding_spaces TO bizosaas_writer;

-- Creates (once) the current tenant's partition for `p_model`: the tenant level and the model
-- leaf, without its HNSW index (core.index_embedding_space adds it after the first bulk load:
-- building an HNSW index over loaded rows is many times faster than inserting into one). A definer function because the writer role cannot run DDL; it only
-- ever acts for the tenant of the calling transaction. DDL on a partition locks the parent, so
-- call it in its own short transaction, never inside a long write. Returns the leaf's name.
CREATE FUNCTION core.ensure_embedding_space(p_model text, p_dim int) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, core, public
    -- Searches queue behind a DDL lock that is waiting: give up soon (the caller retries).
    SET lock_timeout = '2s'
    AS $$
DECLARE
    v_tenant text := core.current_tenant();
    v_known  core.embedding_spaces;
    v_parent text;
    v_leaf   text;
BEGIN
    IF v_tenant IS NULL OR NOT EXISTS (SELECT 1 FROM core.tenants WHERE tenant_id = v_tenant) THEN
        RAISE EXCEPTION 'ensure_embedding_space: no known tenant is set in this transaction';
    END IF;
    IF p_model IS NULL OR p_model !~ '^[A-Za-z0-9][A-Za-z0-9._/:-]{0,99}$' THEN
        RAISE EXCEPTION 'ensure_embedding_space: invalid model name %', p_model;
    END IF;
    IF p_dim IS NULL OR p_dim NOT BETWEEN 1 AND 2000 THEN
        RAISE EXCEPTION 'ensure_embedding_space: dimension % is outside 1..2000', p_dim;
    END IF;
    -- Two runs creating the same space wait for each other instead of failing on the DDL.
    PERFORM pg_advisory_xact_lock(hashtext('core.embeddings'), hashtext(v_tenant));
    SELECT * INTO v_known FROM core.embedding_spaces WHERE tenant_id = v_tenant AND model = p_model;
    IF FOUND THEN
        IF v_known.dim <> p_dim THEN
            RAISE EXCEPTION 'ensure_embedding_space: model % has dimension % for tenant %, not %',
                p_model, v_known.dim, v_tenant, p_dim;
        END IF;
        RETURN v_known.leaf_table;
    END IF;
    -- Names stay under 63 bytes whatever the tenant id's length; the hash keeps them unique.
    v_parent := format('embeddings_%s_%s', left(v_tenant, 30), left(md5(v_tenant), 6));
    v_leaf := format('emb_%s_%s', left(v_tenant, 30), left(md5(v_tenant || '/' || p_model), 10));
    IF to_regclass(format('core.%I', v_parent)) IS NULL THEN
        EXECUTE format('CREATE TABLE core.%I PARTITION OF core.embeddings FOR VALUES IN (%L)
                        PARTITION BY LIST (model)', v_parent, v_tenant);
        PERFORM core.enable_tenant_rls(format('core.%I', v_parent)::regclass);
    END IF;
    EXECUTE format('CREATE TABLE core.%I PARTITION OF core.%I FOR VALUES IN (%L)', v_leaf, v_parent, p_model);
    -- Partitions are reachable by name: they get the parent's isolation too.
    PERFORM core.enable_tenant_rls(format('core.%I', v_leaf)::regclass);
    EXECUTE format('CREATE INDEX %I ON core.%I (entity_type, entity_id)', v_leaf || '_type', v_leaf);
    INSERT INTO core.embedding_spaces (tenant_id, model, dim, leaf_table)
        VALUES (v_tenant, p_model, p_dim, 'core.' || v_leaf);
    RETURN 'core.' || v_leaf;
END
$$;
REVOKE ALL ON FUNCTION core.ensure_embedding_space(text, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION core.ensure_embedding_space(text, int) TO bizosaas_writer;

-- The HNSW index of the current tenant's leaf of `p_model`, if it has none yet, then fresh
-- statistics. Returns true when it built the index.
CREATE FUNCTION core.index_embedding_space(p_model text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, core, public
    -- The build is fast while the graph fits in memory (about 2 KB per 384-d vector).
    SET maintenance_work_mem = '1GB'
    AS $$
DECLARE
    v_space core.embedding_spaces;
    v_name  text;
BEGIN
    SELECT * INTO v_space FROM core.embedding_spaces
     WHERE tenant_id = core.current_tenant() AND model = p_model;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'index_embedding_space: no space for model % in this tenant', p_model;
    END IF;
    -- The same lock as ensure_embedding_space: two runs never build the index twice.
    PERFORM pg_advisory_xact_lock(hashtext('core.embeddings'), hashtext(core.current_tenant()));
    v_name := split_part(v_space.leaf_table, '.', 2) || '_hnsw';
    IF to_regclass('core.' || v_name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE INDEX %I ON %s USING hnsw ((embedding::vector(%s)) vector_cosine_ops)',
                   v_name, v_space.leaf_table, v_space.dim);
    EXECUTE format('ANALYZE %s', v_space.leaf_table);
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION core.index_embedding_space(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION core.index_embedding_space(text) TO bizosaas_writer;

-- Fresh statistics for the current tenant's leaf of `p_model`, after a large write: without them
-- the planner estimates one row for the tenant and sorts every vector instead of using HNSW.
-- (The writer does not own the leaves, so it cannot ANALYZE them itself.)
CREATE FUNCTION core.analyze_embedding_space(p_model text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, core
    AS $$
DECLARE
    v_leaf text;
BEGIN
    SELECT leaf_table INTO v_leaf FROM core.embedding_spaces
     WHERE tenant_id = core.current_tenant() AND model = p_model;
    IF v_leaf IS NOT NULL THEN
        EXECUTE format('ANALYZE %s', v_leaf);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION core.analyze_embedding_space(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION core.analyze_embedding_space(text) TO bizosaas_writer;

-- The plan's training table, fed by the embeddings pipeline: one row per labelled entity with
-- the inputs as received, its vector, and its labels.
CREATE TABLE core.ai_training_data (
    tenant_id          text NOT NULL REFERENCES core.tenants (tenant_id),
    data_type          text NOT NULL,         -- the entity type: lead, game, business, ...
    entity_id          text NOT NULL,
    raw_data           jsonb NOT NULL,        -- the entity's fields the text was built from
    processed_features vector NOT NULL,       -- its embedding
    model              text NOT NULL,         -- the embedding model of processed_features
    labels             jsonb NOT NULL,        -- e.g. {"outcome": "won"}, {"genres": [...]}
    feedback_score     real CHECK (feedback_score BETWEEN 0 AND 1),  -- 1 good .. 0 bad, if known
    content_hash       text NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    dagster_run_id     text,
    PRIMARY KEY (tenant_id, data_type, entity_id)
);
SELECT core.enable_tenant_rls('core.ai_training_data');

-- The tenant's knowledge graph, rebuilt deterministically from the modelled tables: the same
-- tables give the same nodes and edges. Node keys are '<type>:<id>' (e.g. 'game:1942',
-- 'genre:role-playing-rpg'), unique within the tenant.
CREATE TABLE core.kg_nodes (
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    node_key       text NOT NULL,
    node_type      text NOT NULL,             -- Tenant, Business, Category, City, Game, Genre, ...
    label          text NOT NULL,             -- human-readable name
    properties     jsonb NOT NULL DEFAULT '{}',
    updated_at     timestamptz NOT NULL DEFAULT now(),
    dagster_run_id text,
    PRIMARY KEY (tenant_id, node_key)
);
CREATE INDEX kg_nodes_type_idx ON core.kg_nodes (tenant_id, node_type);
SELECT core.enable_tenant_rls('core.kg_nodes');
GRANT SELECT ON core.kg_nodes TO bizosaas_serving;

CREATE TABLE core.kg_edges (
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    src_key        text NOT NULL,
    rel_type       text NOT NULL,             -- OWNS, IN_CATEGORY, LOCATED_IN, HAS_GENRE, SIMILAR_TO, ...
    dst_key        text NOT NULL,
    weight         real NOT NULL DEFAULT 1,   -- SIMILAR_TO: cosine similarity; others 1
    properties     jsonb NOT NULL DEFAULT '{}',
    updated_at     timestamptz NOT NULL DEFAULT now(),
    dagster_run_id text,
    PRIMARY KEY (tenant_id, src_key, rel_type, dst_key),
    FOREIGN KEY (tenant_id, src_key) REFERENCES core.kg_nodes (tenant_id, node_key)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    FOREIGN KEY (tenant_id, dst_key) REFERENCES core.kg_nodes (tenant_id, node_key)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
-- Graph expansion walks edges both ways.
CREATE INDEX kg_edges_dst_idx ON core.kg_edges (tenant_id, dst_key);
SELECT core.enable_tenant_rls('core.kg_edges');
GRANT SELECT ON core.kg_edges TO bizosaas_serving;

-- Graph size after every build: the plan's learning-system metric (growth over time).
CREATE TABLE core.kg_growth (
    tenant_id      text NOT NULL REFERENCES core.tenants (tenant_id),
    measured_at    timestamptz NOT NULL DEFAULT now(),
    nodes          int NOT NULL,
    edges          int NOT NULL,
    nodes_by_type  jsonb NOT NULL,
    edges_by_type  jsonb NOT NULL,
    graph_hash     text NOT NULL,             -- sha256 of the sorted nodes and edges
    dagster_run_id text,
    PRIMARY KEY (tenant_id, measured_at)
);
SELECT core.enable_tenant_rls('core.kg_growth');
GRANT SELECT ON core.kg_growth TO bizosaas_serving;
