{{ config(meta={'dagster': {'ref': {'name': 'gaming_catalogue'}}}) }}
-- Every catalogue game appears exactly once in the mart, and nothing else does. Returns the
-- games that are missing, extra or repeated.
with core as (
    select tenant_id, igdb_id from {{ ref('stg_gaming_catalogue') }}
),

mart as (
    select tenant_id, igdb_id, count(*) as copies from {{ ref('gaming_catalogue') }} group by 1, 2
)

select coalesce(core.tenant_id, mart.tenant_id) as tenant_id, coalesce(core.igdb_id, mart.igdb_id) as igdb_id,
       mart.copies
from core
full outer join mart on mart.tenant_id = core.tenant_id and mart.igdb_id = core.igdb_id
where core.igdb_id is null or mart.igdb_id is null or mart.copies <> 1
