"""Lead features, the champion/challenger registry, lead scores and the retrain sensor on the real
Postgres and Dagster instance, over synthetic CRM histories seeded straight into core.crm_*
(orchestration.crm_seed: ingestion has its own tests)."""

import dataclasses
from datetime import UTC, date, datetime, time, timedelta

import psycopg
import pytest
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterRun,
    DagsterRunStatus,
    build_sensor_context,
    materialize,
)
from dagster._core.utils import make_new_run_id
from psycopg.types.json import Jsonb

from assets import crm_scoring
from ml.crm.emails import email_key, lead_id_for
from ml.crm.synthetic import CrmHistory, generate_history
from orchestration import tenants
from orchestration.crm_seed import load_history
from orchestration.warehouse import WarehouseResource, set_tenant
from sensors.crm_retrain import crm_retrain_sensor

BIG = "crm_model_probe"
SMALL = "crm_model_small"
START, END = date(2026, 6, 1), date(2026, 11, 25)
RETRAIN_AFTER = 50
ASSETS = [
    crm_scoring.lead_features,
    crm_scoring.lead_scoring_model,
    crm_scoring.lead_scores,
    crm_scoring.lead_features_point_in_time,
    crm_scoring.lead_features_labels_known,
    crm_scoring.lead_scoring_model_champion_above_floor,
    crm_scoring.lead_scores_in_range,
]


def as_seen_at(history: CrmHistory, day: date) -> CrmHistory:
    """The same history as it stood at midnight UTC of `day`: nothing later is known."""
    cut = datetime.combine(day, time(), UTC)
    records = [r for r in history.records if r.created_at < cut]
    people = {email_key(r.email) for r in records}
    return dataclasses.replace(
        history,
        end=day,
        records=records,
        touches=[t for t in history.touches if t.touched_at < cut and t.email_key in people],
        outcomes=[o for o in history.outcomes if o.occurred_at < cut],
        campaign_days=[d for d in history.campaign_days if d.day < day],
        campaigns=[c for c in history.campaigns if c.started_on < day],
    )


def closed(history: CrmHistory) -> int:
    return sum(1 for o in history.outcomes if o.outcome in ("won", "lost"))


def _query(platform, tenant, sql, params=()):
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, tenant)
        return conn.execute(sql, params).fetchall()


def _seed(platform, history: CrmHistory) -> None:
    with WarehouseResource(database_url=platform.writer_url).tenant_transaction(history.tenant_id) as conn:
        load_history(conn, history)


def _run(platform, instance, tenant, now: date | None = None):
    config = {"ops": {"lead_features": {"config": {"now": f"{now}T00:00:00+00:00"}}}} if now else None
    return materialize(
        ASSETS,
        partition_key=tenant,
        instance=instance,
        resources={"warehouse": WarehouseResource(database_url=platform.writer_url)},
        run_config=config,
        raise_on_error=False,
    )


def _metadata(instance, key, tenant):
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(key), asset_partitions=[tenant]), limit=1
    ).records
    return {k: v.value for k, v in records[0].event_log_entry.asset_materialization.metadata.items()}


def _checks(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _registry(platform, tenant):
    return _query(
        platform,
        tenant,
        "SELECT version, kind, status, metrics, training_rows, outcomes_seen, decision, artifact IS NOT NULL "
        "FROM core.crm_model_registry WHERE tenant_id = %s ORDER BY version",
        (tenant,),
    )


def _tick(platform, instance):
    context = build_sensor_context(
        instance=instance, resources={"warehouse": WarehouseResource(database_url=platform.writer_url)}
    )
    result = crm_retrain_sensor(context)
    return result.run_requests or [], (result.skip_reason.skip_message if result.skip_reason else "")


def _tenant(platform, instance, tenant_id, settings):
    with platform.admin() as conn:
        conn.execute(
            """INSERT INTO core.tenants
                      (tenant_id, display_name, kind, parent_tenant_id, tier, domains, settings)
               VALUES (%s, 'CRM model probe', 'client', 'bizoholic', 'starter', '{crm}', %s)
               ON CONFLICT (tenant_id) DO NOTHING""",
            (tenant_id, Jsonb({"crm": settings})),
        )
    instance.add_dynamic_partitions(crm_scoring.crm_partitions.name, [tenant_id])


def _offboard(platform, instance, tenant_id):
    with platform.admin() as conn:
        tenants.offboard(conn, tenant_id)
    instance.delete_dynamic_partition(crm_scoring.crm_partitions.name, tenant_id)


@pytest.fixture(scope="module")
def history():
    return generate_history(BIG, START, END)


@pytest.fixture(scope="module")
def big(platform, dagster_instance):
    _tenant(platform, dagster_instance, BIG,
            {"min_outcomes_for_model": 200, "retrain_after_outcomes": RETRAIN_AFTER})  # fmt: skip
    yield BIG
    _offboard(platform, dagster_instance, BIG)


@pytest.fixture(scope="module")
def small(platform, dagster_instance):
    _tenant(platform, dagster_instance, SMALL, {"min_outcomes_for_model": 200})
    yield SMALL
    _offboard(platform, dagster_instance, SMALL)


def _for(requests, tenant):
    return [r for r in requests if r.partition_key == tenant]


def test_the_model_retrains_as_outcomes_arrive_and_scores_every_open_lead(
    platform, dagster_instance, big, history
):
    # Two months in: enough outcomes for a first model, and the sensor asks for it.
    first_day = date(2026, 8, 1)
    early = as_seen_at(history, first_day)
    _seed(platform, early)
    requests, _ = _tick(platform, dagster_instance)
    assert [r.run_key for r in _for(requests, big)] == [f"{big}:{closed(early)}"]
    result = _run(platform, dagster_instance, big, now=first_day)
    assert result.success
    assert all(_checks(result).values()), _checks(result)
    (v1,) = _registry(platform, big)
    assert v1[1:3] == ("model", "champion") and v1[5] == closed(early) and v1[7]
    assert v1[3]["roc_auc"] >= 0.6 and v1[3]["learning_curve"]

    # Below the threshold: a skip that says how far along the tenant is.
    later = next(
        d for d in (first_day + timedelta(days=n) for n in range(1, 60))
        if closed(as_seen_at(history, d)) - closed(early) >= RETRAIN_AFTER
    )  # fmt: skip
    not_yet = as_seen_at(history, later - timedelta(days=1))
    _seed(platform, not_yet)
    requests, reason = _tick(platform, dagster_instance)
    assert _for(requests, big) == []
    assert f"{big}: {closed(not_yet) - closed(early)}/{RETRAIN_AFTER} new outcomes since v1" in reason

    # The whole history: many more outcomes, a retrain, a better-informed challenger.
    _seed(platform, history)
    requests, _ = _tick(platform, dagster_instance)
    assert [r.run_key for r in _for(requests, big)] == [f"{big}:{closed(history)}"]
    # While that retrain runs, the sensor does not ask again (two runs would race to promote).
    queued = DagsterRun(
        job_name="crm_retrain_job", run_id=make_new_run_id(), status=DagsterRunStatus.STARTED,
        tags={"dagster/partition": big},
    )  # fmt: skip
    dagster_instance.add_run(queued)
    try:
        requests, reason = _tick(platform, dagster_instance)
        assert _for(requests, big) == [] and f"{big}: a retrain is already queued or running" in reason
    finally:
        dagster_instance.delete_run(queued.run_id)
    result = _run(platform, dagster_instance, big)
    assert result.success and all(_checks(result).values()), _checks(result)
    v1, v2 = _registry(platform, big)
    assert v2[4] > v1[4] and v2[5] == closed(history)
    champion_on_holdout = v2[3]["champion_on_holdout"]
    # The champion judged on the challenger's rows: all of them, as all come after v1's cut-off.
    assert champion_on_holdout["rows"] == v2[3]["rows"]
    if v2[2] == "champion":
        assert v1[2] == "retired" and "promoted" in v2[6]
        assert v2[3]["roc_auc"] >= champion_on_holdout["roc_auc"] - 0.005
    else:
        assert v1[2] == "champion" and "rejected" in v2[6]
    # The planted signal is found: clearly above chance and above the source-rate baseline.
    assert v2[3]["roc_auc"] > 0.65 and v2[3]["roc_auc"] > v2[3]["baseline_roc_auc"]
    coefficients = v2[3]["coefficients"]
    assert coefficients["corporate_email"] > 0 and coefficients["phone_present"] > 0
    assert coefficients["touches_first_day"] > 0
    # The same state never retrains twice.
    requests, reason = _tick(platform, dagster_instance)
    assert _for(requests, big) == [] and f"{big}: 0/{RETRAIN_AFTER} new outcomes since v2" in reason

    # Every open lead is scored by the champion and written back; closed leads carry no score.
    champion = next(v for v in _registry(platform, big) if v[2] == "champion")
    scores = _query(platform, big,
                    """SELECT l.status, l.ai_score, s.ai_score, s.model_version, s.model_kind, s.reasons,
                              l.ai_reasons = s.reasons
                         FROM core.crm_leads l LEFT JOIN core.crm_lead_scores s USING (tenant_id, lead_id)
                        WHERE l.tenant_id = %s""", (big,))  # fmt: skip
    closed_ids = {o.email_key for o in history.outcomes if o.outcome in ("won", "lost")}
    open_leads = {email_key(r.email) for r in history.records} - {None} - closed_ids
    scored = [s for s in scores if s[2] is not None]
    assert len(scored) == len(open_leads) > 0
    assert all(s[0] in ("open", "qualified") and s[1] == s[2] and s[6] for s in scored)
    assert all(s[1] is None for s in scores if s[0] in ("won", "lost"))
    assert {(s[3], s[4]) for s in scored} == {(champion[0], "model")}
    assert all(1 <= len(s[5]) <= 5 and all(r["text"] for r in s[5]) for s in scored)
    assert len({s[2] for s in scored}) > 10  # scores discriminate, not one value for all

    meta = _metadata(dagster_instance, "lead_scoring_model", big)
    assert meta["version"] == 2 and meta["kind"] == "model" and meta["roc_auc"] == v2[3]["roc_auc"]
    assert "| version |" in meta["registry"] and "| 0." in meta["calibration"]
    scores_meta = _metadata(dagster_instance, "lead_scores", big)
    assert scores_meta["scored"] == len(open_leads) and scores_meta["model_kind"] == "model"


def test_a_closed_lead_loses_its_score_and_a_high_floor_rejects_the_challenger(
    platform, dagster_instance, big, history
):
    before = _registry(platform, big)
    champion = next(v for v in before if v[2] == "champion")
    lead_id, lost_id = (r[0] for r in _query(platform, big,
                     "SELECT lead_id FROM core.crm_lead_scores WHERE tenant_id = %s ORDER BY lead_id LIMIT 2",
                     (big,)))  # fmt: skip
    with psycopg.connect(platform.writer_url) as conn, conn.transaction():
        set_tenant(conn, big)
        # Closed in the CRM without an outcome row (yet): no score either.
        conn.execute("UPDATE core.crm_leads SET status = 'lost' WHERE tenant_id = %s AND lead_id = %s",
                     (big, lost_id))  # fmt: skip
        conn.execute(
            "INSERT INTO core.crm_lead_outcomes (tenant_id, lead_id, outcome, occurred_at, origin) "
            "VALUES (%s, %s, 'won', %s, 'test')",
            (big, lead_id, datetime(2026, 11, 24, 12, tzinfo=UTC)),
        )
    with platform.admin() as conn:
        conn.execute(
            "UPDATE core.tenants SET settings = jsonb_set(settings, '{crm,min_model_auc}', '0.99') "
            "WHERE tenant_id = %s",
            (big,),
        )
    try:
        result = _run(platform, dagster_instance, big)
    finally:
        with platform.admin() as conn:
            conn.execute(
                "UPDATE core.tenants SET settings = settings #- '{crm,min_model_auc}' WHERE tenant_id = %s",
                (big,),
            )
    after = _registry(platform, big)
    assert len(after) == len(before) + 1
    assert after[-1][2] == "rejected" and "below the floor 0.99" in after[-1][6]
    assert next(v for v in after if v[2] == "champion")[0] == champion[0]
    # The champion itself is below the raised floor: the blocking check stops the scores.
    assert _checks(result)["lead_scoring_model_champion_above_floor"] is False
    assert not result.success

    result = _run(platform, dagster_instance, big)
    assert result.success
    gone = _query(platform, big,
                  """SELECT l.ai_score, (SELECT count(*) FROM core.crm_lead_scores s
                                          WHERE s.tenant_id = l.tenant_id AND s.lead_id = l.lead_id)
                       FROM core.crm_leads l WHERE l.tenant_id = %s AND l.lead_id = ANY(%s)""",
                  (big, [lead_id, lost_id]))  # fmt: skip
    assert gone == [(None, 0), (None, 0)]


def test_too_few_outcomes_gets_a_clearly_labelled_baseline(platform, dagster_instance, small):
    history = generate_history(SMALL, date(2026, 9, 1), END, leads_per_day=1.2)
    _seed(platform, history)
    result = _run(platform, dagster_instance, small)
    assert result.success and all(_checks(result).values()), _checks(result)
    ((version, kind, status, metrics, training_rows, _, decision, has_artifact),) = _registry(platform, small)
    assert (kind, status, training_rows, has_artifact) == ("baseline", "champion", 0, False)
    assert "fewer than the 200 a model needs" in decision
    kinds = _query(platform, small, "SELECT DISTINCT model_kind, model_version FROM core.crm_lead_scores")
    assert kinds == [("baseline", version)]
    reasons = _query(
        platform, small, "SELECT ai_reasons FROM core.crm_leads WHERE ai_score IS NOT NULL LIMIT 1"
    )
    assert reasons[0][0][0]["text"].startswith("baseline only:")
    meta = _metadata(dagster_instance, "lead_scoring_model", small)
    assert meta["kind"] == "baseline" and meta["champion_kind"] == "baseline"


def test_features_never_see_the_future_in_the_stored_rows(platform, big, history):
    rows = _query(platform, big,
                  """SELECT lead_id, as_of, max_input_at, (features->>'touches_first_day')::float
                       FROM core.crm_lead_features WHERE tenant_id = %s""", (big,))  # fmt: skip
    assert rows and all(max_input <= as_of for _, as_of, max_input, _ in rows)
    # Won leads' onboarding touches (after the win) are in the table but in no feature.
    onboarding = {lead_id_for(big, t.email_key) for t in history.touches if t.kind == "onboarding_email"}
    stored = _query(platform, big, "SELECT count(*) FROM core.crm_touches WHERE kind = 'onboarding_email'")
    assert stored[0][0] > 0
    early = {}
    for t in history.touches:
        early.setdefault(lead_id_for(big, t.email_key), []).append(t)
    created = {}
    for r in history.records:  # a lead's creation is its first record's
        if email_key(r.email):
            created.setdefault(lead_id_for(big, email_key(r.email)), r.created_at)
    for lead_id, as_of, _, first_day in rows:
        if lead_id in onboarding:
            expected = sum(1 for t in early[lead_id] if created[lead_id] <= t.touched_at <= as_of)
            assert first_day == expected


def test_a_bad_retrain_setting_is_reported_without_stopping_other_tenants(
    platform, dagster_instance, big, small
):
    with platform.admin() as conn:
        conn.execute(
            """UPDATE core.tenants
                  SET settings = jsonb_set(settings, '{crm,retrain_after_outcomes}', '"often"')
                WHERE tenant_id = %s""",
            (small,),
        )
    try:
        requests, reason = _tick(platform, dagster_instance)
    finally:
        with platform.admin() as conn:
            conn.execute(
                "UPDATE core.tenants SET settings = settings #- '{crm,retrain_after_outcomes}' "
                "WHERE tenant_id = %s",
                (small,),
            )
    assert _for(requests, small) == []
    assert f"tenant '{small}': settings.crm.retrain_after_outcomes must be a whole number" in reason
    assert f"{big}: " in reason  # the other tenants were still looked at
