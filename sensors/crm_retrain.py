"""Retrains a CRM tenant's lead-scoring model when enough new outcomes have arrived.

Per tick and crm tenant, one query: the won/lost outcomes stored now, the `outcomes_seen` of the
tenant's latest registry version, and its `retrain_after_outcomes` setting. When the difference
reaches the setting, one run of lead_features + lead_scoring_model + lead_scores is requested for
the tenant, keyed by tenant and outcome count, so the same state never retrains twice (a rejected
challenger included: the next run waits for more outcomes). A tenant with no version yet gets its
first once it has that many outcomes (the model's on-missing condition covers a brand-new tenant).
"""

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    Failure,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from psycopg.rows import dict_row

from assets.crm_scoring import (
    REGISTRY_TABLE,
    closed_outcomes_sql,
    crm_partitions,
    crm_retrain_job,
)
from orchestration.crm_settings import crm_settings
from orchestration.warehouse import WarehouseResource, set_tenant
from sensors.limits import max_run_requests

IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]
STATE_SQL = f"""
SELECT ({closed_outcomes_sql()}) AS outcomes,
       (SELECT outcomes_seen FROM {REGISTRY_TABLE}
         WHERE tenant_id = %(t)s ORDER BY version DESC LIMIT 1) AS seen,
       (SELECT max(version) FROM {REGISTRY_TABLE} WHERE tenant_id = %(t)s) AS version,
       (SELECT settings FROM core.tenants WHERE tenant_id = %(t)s) AS settings
"""


@sensor(
    name="crm_retrain_sensor",
    job=crm_retrain_job,
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.RUNNING,
    description="Retrains a CRM tenant's lead-scoring model (features, model, scores) once "
    "settings.crm.retrain_after_outcomes new won/lost outcomes arrived since its last registry version.",
)
def crm_retrain_sensor(context: SensorEvaluationContext, warehouse: WarehouseResource):
    requests, waiting = [], []
    # A retrain already queued or running has not written its version yet: another request now
    # would train the same model twice, and two overlapping runs would race for the champion.
    in_flight = {
        run.tags.get("dagster/partition")
        for run in context.instance.get_runs(
            RunsFilter(job_name=crm_retrain_job.name, statuses=IN_FLIGHT), limit=500
        )
    }
    # The state is read under each tenant's RLS, one transaction per tenant on one connection
    # (a connection per tenant cost most of a 200-tenant tick).
    with warehouse.connect() as conn:
        _check_tenants(context, conn, in_flight, requests, waiting)
    if not requests:
        return SensorResult(skip_reason=SkipReason("; ".join(waiting) or "no crm tenants"))
    if waiting:
        context.log.info("; ".join(waiting))
    return SensorResult(run_requests=requests)


def _check_tenants(context, conn, in_flight, requests, waiting) -> None:
    limit = max_run_requests()
    for tenant_id in sorted(context.instance.get_dynamic_partitions(crm_partitions.name)):
        if tenant_id in in_flight:
            waiting.append(f"{tenant_id}: a retrain is already queued or running")
            continue
        if len(requests) >= limit:
            # Not requested now, so not in flight at the next tick: it is asked for then.
            waiting.append(f"{tenant_id}: checked on the next tick ({limit} retrains per tick)")
            continue
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            set_tenant(conn, tenant_id)
            state = cur.execute(STATE_SQL, {"t": tenant_id}).fetchone()
        try:
            threshold = crm_settings(tenant_id, state["settings"] or {}).retrain_after_outcomes
        except Failure as bad:  # one tenant's typo must not stop the others' retraining
            waiting.append(bad.description)
            continue
        outcomes, seen = state["outcomes"], state["seen"] or 0
        arrived = outcomes - seen
        since = f"since v{state['version']}" if state["version"] else "and no model yet"
        if arrived < threshold:
            waiting.append(f"{tenant_id}: {arrived}/{threshold} new outcomes {since}")
            continue
        requests.append(
            RunRequest(
                run_key=f"{tenant_id}:{outcomes}",
                partition_key=tenant_id,
                tags={"bizosaas/trigger": "crm_retrain", "bizosaas/new_outcomes": str(arrived)},
            )
        )
        context.log.info(f"{tenant_id}: {arrived} new outcomes {since} (>= {threshold}): retraining")
