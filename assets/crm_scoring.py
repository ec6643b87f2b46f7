"""Lead scoring per CRM tenant: point-in-time features, a champion/challenger model registry, and
the scores written back to the leads.

`lead_features` rebuilds the tenant's feature rows from its leads, touches, outcomes and campaign
days (ml.crm.features: nothing later than each lead's scoring time). `lead_scoring_model` trains a
challenger on the earlier labelled leads, measures it and the current champion on the challenger's
holdout, and records the version in core.crm_model_registry as the new champion (retiring the old
one) or as rejected, with the decision in words. A tenant with too few outcomes gets a `baseline`
version instead: the source's historical conversion rate, labelled as such in the registry, the
metadata and every score. `lead_scores` scores every open lead with the champion and writes the
score and its reasons back to core.crm_leads. The retrain sensor (sensors/crm_retrain.py) runs
the three when enough new outcomes have arrived.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AutomationCondition,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
    define_asset_job,
)
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import Field

from ml.crm import model as scoring
from ml.crm.features import (
    FeatureInputs,
    build_features,
    feature_names,
    feature_records,
    frame_from_records,
    leakage_rows,
)
from orchestration.crm_settings import crm_settings
from orchestration.metadata import preview_table
from orchestration.partitions import tenant_partitions
from orchestration.quality import skipped_check, validate
from orchestration.settings import platform_now
from orchestration.tenant_settings import tenant_settings
from orchestration.warehouse import WarehouseResource, write_partition

LEADS_TABLE = "core.crm_leads"
FEATURES_TABLE = "core.crm_lead_features"
REGISTRY_TABLE = "core.crm_model_registry"
SCORES_TABLE = "core.crm_lead_scores"
INGESTION = [AssetKey("crm_leads"), AssetKey("crm_lead_outcomes"), AssetKey("crm_campaigns"),
             AssetKey("crm_touches")]  # fmt: skip

crm_partitions = tenant_partitions("crm")


class LeadFeaturesConfig(Config):
    now: str | None = Field(
        default=None,
        description="ISO-8601 time to compute features and labels as of (default: now; the replay date in "
        "replay mode). Inputs after it are ignored.",
    )


# --- reading -------------------------------------------------------------------------------------


def _rows(warehouse: WarehouseResource, tenant_id: str, query: str) -> list[dict]:
    return warehouse.query(tenant_id, query, {"t": tenant_id})


def load_inputs(warehouse: WarehouseResource, tenant_id: str) -> FeatureInputs:
    return FeatureInputs.from_rows(
        _rows(warehouse, tenant_id, f"""SELECT lead_id, email_key, phone, company_name, source, campaign_id,
                                              created_at FROM {LEADS_TABLE} WHERE tenant_id = %(t)s"""),
        _rows(warehouse, tenant_id,
              "SELECT lead_id, campaign_id, touched_at FROM core.crm_touches WHERE tenant_id = %(t)s"),
        _rows(warehouse, tenant_id,
              "SELECT lead_id, outcome, occurred_at FROM core.crm_lead_outcomes WHERE tenant_id = %(t)s"),
        _rows(warehouse, tenant_id,
              """SELECT campaign_id, day, spend::float8 AS spend, impressions, clicks, conversions
                   FROM core.crm_campaign_daily WHERE tenant_id = %(t)s"""),
    )  # fmt: skip


def load_features(warehouse: WarehouseResource, tenant_id: str) -> pd.DataFrame:
    return frame_from_records(
        _rows(warehouse, tenant_id,
              f"""SELECT lead_id, as_of, max_input_at, source, label, label_at, is_open, features
                    FROM {FEATURES_TABLE} WHERE tenant_id = %(t)s ORDER BY lead_id""")
    )  # fmt: skip


def registry(warehouse: WarehouseResource, tenant_id: str, *, artifacts: bool = False) -> list[dict]:
    """The tenant's registry versions, newest first."""
    artifact = "artifact" if artifacts else "NULL::bytea AS artifact"
    return _rows(
        warehouse,
        tenant_id,
        f"""SELECT version, kind, algorithm, features, params, metrics, holdout, training_rows,
                   outcomes_seen, status, decision, trained_at, {artifact}
              FROM {REGISTRY_TABLE} WHERE tenant_id = %(t)s ORDER BY version DESC""",
    )


def closed_outcomes_sql(tenant_param: str = "%(t)s") -> str:
    """The count the registry's `outcomes_seen` and the retrain sensor compare: won/lost outcomes."""
    return (
        "SELECT count(*) FROM core.crm_lead_outcomes "
        f"WHERE tenant_id = {tenant_param} AND outcome IN ('won', 'lost')"
    )


# --- lead_features -------------------------------------------------------------------------------


@asset(
    partitions_def=crm_partitions,
    group_name="crm",
    kinds={"python", "postgres"},
    deps=INGESTION,
    automation_condition=AutomationCondition.eager(),
    metadata={"table": FEATURES_TABLE},
    description=(
        "Point-in-time features per lead (source, company vs free email, phone, touches before and in the "
        "first day, recency, the source's and campaign's historical conversion rates, the campaign's recent "
        "cost per lead and click-through rate), each from inputs no later than the lead's scoring time "
        "(created_at + 24 h, or now for younger leads), with its label (won 1, lost 0, no outcome within "
        "settings.crm.outcome_horizon_days: 0)."
    ),
)
def lead_features(
    context: AssetExecutionContext, config: LeadFeaturesConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    tenant_id = context.partition_key
    settings = crm_settings(tenant_id, tenant_settings(warehouse, tenant_id))
    now = datetime.fromisoformat(config.now) if config.now else platform_now()
    if now.tzinfo is None:
        raise Failure(f"config now={config.now!r} needs a time zone, e.g. 2026-11-25T00:00:00+00:00")
    inputs = load_inputs(warehouse, tenant_id)
    frame = build_features(inputs, now, horizon=timedelta(days=settings.outcome_horizon_days))
    leaking = leakage_rows(frame)
    if len(leaking):  # a bug in the feature code, never data: refuse to store it
        raise Failure(
            f"{len(leaking)} feature rows used inputs after their scoring time",
            metadata={"lead_ids": MetadataValue.json(leaking["lead_id"].head(20).tolist())},
        )
    records = feature_records(frame)
    run_id = context.run.run_id
    with warehouse.tenant_transaction(tenant_id) as conn:
        written = write_partition(conn, tenant_id, FEATURES_TABLE,
                                  [{**r, "dagster_run_id": run_id} for r in records],
                                  run_id=run_id)  # fmt: skip
    label = frame["label"]
    names = feature_names(frame)
    summary = [
        {"feature": n, "mean": round(float(frame[n].mean()), 4), "min": round(float(frame[n].min()), 4),
         "max": round(float(frame[n].max()), 4)}
        for n in names
    ] if len(frame) else []  # fmt: skip
    return MaterializeResult(
        metadata={
            "rows": MetadataValue.int(written),
            "open_leads": MetadataValue.int(int(frame["is_open"].sum()) if len(frame) else 0),
            "labelled": MetadataValue.int(int(label.notna().sum())),
            "label_won": MetadataValue.int(int((label == 1).sum())),
            "label_lost_or_expired": MetadataValue.int(int((label == 0).sum())),
            "label_unknown": MetadataValue.int(int(label.isna().sum())),
            "as_of_now": MetadataValue.text(now.isoformat()),
            "outcome_horizon_days": MetadataValue.int(settings.outcome_horizon_days),
            "features": MetadataValue.json(names),
            "feature_summary": preview_table(summary, limit=len(summary)),
            "preview": preview_table(
                [
                    {
                        "lead_id": r["lead_id"],
                        "as_of": r["as_of"],
                        "label": r["label"],
                        **{k: r["features"][k] for k in names[:6]},
                    }
                    for r in records
                ]
            ),  # fmt: skip
        }
    )


# --- lead_scoring_model --------------------------------------------------------------------------


def _floats(prefix: str, metrics: dict[str, Any]) -> dict[str, MetadataValue]:
    return {
        f"{prefix}{k}": MetadataValue.float(float(metrics[k]))
        for k in ("roc_auc", "pr_auc", "brier")
        if metrics.get(k) is not None
    }


def _history_table(versions: list[dict]) -> MetadataValue:
    return preview_table(
        [{"version": v["version"], "kind": v["kind"], "status": v["status"],
          "roc_auc": v["metrics"].get("roc_auc"), "baseline_roc_auc": v["metrics"].get("baseline_roc_auc"),
          "pr_auc": v["metrics"].get("pr_auc"), "training_rows": v["training_rows"],
          "outcomes_seen": v["outcomes_seen"], "trained_at": f"{v['trained_at']:%Y-%m-%d %H:%M}",
          "decision": v["decision"]} for v in versions],
        limit=15,
    )  # fmt: skip


@asset(
    partitions_def=crm_partitions,
    group_name="crm",
    kinds={"scikitlearn", "postgres"},
    deps=[lead_features],
    # Retraining is the sensor's call (enough new outcomes); a new tenant gets its first version here.
    automation_condition=AutomationCondition.on_missing(),
    metadata={"table": REGISTRY_TABLE},
    description=(
        "Trains a challenger lead-scoring model (standardised logistic regression) on the tenant's earlier "
        "labelled leads, holds out the latest by scoring time, and promotes it only if its holdout ROC AUC "
        f"clears settings.crm.min_model_auc (default {scoring.DEFAULT_MIN_AUC}) and is not worse than the "
        f"champion's on the same holdout (tolerance {scoring.PROMOTION_TOLERANCE}). Fewer than "
        "settings.crm.min_outcomes_for_model labelled leads: a 'baseline' version (the source's historical "
        "conversion rate). Every version is kept in the registry with its metrics and decision."
    ),
)
def lead_scoring_model(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    tenant_id = context.partition_key
    settings = crm_settings(tenant_id, tenant_settings(warehouse, tenant_id))
    frame = load_features(warehouse, tenant_id)
    candidate = scoring.train_candidate(frame, min_outcomes=settings.min_outcomes_for_model)

    def judge(champion: dict | None):
        """The decision against `champion`, on holdout rows neither model trained on."""
        champion_metrics = challenger_metrics = None
        if champion is not None and candidate.kind == "model":
            rows = scoring.unseen_by(scoring.holdout_rows(frame, candidate.holdout), champion["holdout"])
            labels = rows["label"].to_numpy(dtype=int)
            champion_scorer = scoring.load(champion["artifact"] if champion["kind"] == "model" else None)
            predict = (lambda scorer: scorer.predict(rows)) if len(rows) else (lambda _: labels.astype(float))
            champion_metrics = scoring.evaluate(predict(champion_scorer), labels)
            challenger_metrics = scoring.evaluate(predict(candidate.scorer), labels)
        decision = scoring.decide(
            candidate.metrics,
            champion_metrics,
            challenger_kind=candidate.kind,
            champion_kind=champion["kind"] if champion else None,
            min_auc=settings.min_model_auc,
            challenger_vs_champion=challenger_metrics,
        )
        entries = [(candidate, decision)]
        if not decision.promote and champion is None:
            # Never leave a tenant unscored: the baseline stands in, said so, until a model passes.
            stand_in = scoring.baseline_candidate(frame, f"stand-in: the model was {decision.text}")
            entries.append((stand_in, scoring.decide(stand_in.metrics, None, challenger_kind="baseline")))
        return champion_metrics, entries

    def current_champion() -> dict | None:
        versions = registry(warehouse, tenant_id, artifacts=True)
        return next((v for v in versions if v["status"] == "champion"), None)

    champion = current_champion()
    champion_metrics, entries = judge(champion)
    with warehouse.tenant_transaction(tenant_id) as conn:
        # One writer at a time per tenant, so two runs cannot both promote; a champion promoted
        # by another run while this one trained is judged again, now that it cannot change.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('crm_model_registry:' || %s))", (tenant_id,))
        now_champion = conn.execute(
            f"SELECT version FROM {REGISTRY_TABLE} WHERE tenant_id = %s AND status = 'champion'", (tenant_id,)
        ).fetchone()
        if (now_champion and now_champion[0]) != (champion and champion["version"]):
            champion = current_champion()
            champion_metrics, entries = judge(champion)
        outcomes_seen = conn.execute(closed_outcomes_sql("%s"), (tenant_id,)).fetchone()[0]
        version = conn.execute(
            f"SELECT coalesce(max(version), 0) FROM {REGISTRY_TABLE} WHERE tenant_id = %s", (tenant_id,)
        ).fetchone()[0]
        written = []
        for entry, verdict in entries:
            version += 1
            if verdict.promote:
                conn.execute(
                    f"UPDATE {REGISTRY_TABLE} SET status = 'retired' "
                    "WHERE tenant_id = %s AND status = 'champion'",
                    (tenant_id,),
                )
            text = f"{verdict.text}. {entry.note}".strip(". ") if entry.note else verdict.text
            metrics = {**entry.metrics, "learning_curve": entry.learning_curve,
                       "champion_on_holdout": champion_metrics if entry is candidate else None,
                       "floor_roc_auc": settings.min_model_auc}  # fmt: skip
            conn.execute(
                f"""INSERT INTO {REGISTRY_TABLE} (tenant_id, version, kind, algorithm, features, params,
                        metrics, holdout, training_rows, outcomes_seen, status, decision, artifact,
                        dagster_run_id)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (tenant_id, version, entry.kind, entry.scorer.algorithm, Jsonb(entry.features),
                 Jsonb(entry.params), Jsonb(metrics), Jsonb(entry.holdout), entry.training_rows,
                 outcomes_seen, "champion" if verdict.promote else "rejected", text,
                 scoring.dump(entry.scorer) if entry.kind == "model" else None, context.run.run_id),
            )  # fmt: skip
            written.append((version, entry, verdict, text))

    history = registry(warehouse, tenant_id)
    current = next(v for v in history if v["status"] == "champion")
    version, entry, verdict, text = written[0]
    context.log.info(f"{tenant_id}: v{version} ({entry.kind}) {text}")
    metadata: dict[str, Any] = {
        "version": MetadataValue.int(version),
        "kind": MetadataValue.text(entry.kind),
        "status": MetadataValue.text("champion" if verdict.promote else "rejected"),
        "decision": MetadataValue.text(text),
        "champion_version": MetadataValue.int(current["version"]),
        "champion_kind": MetadataValue.text(current["kind"]),
        **_floats("", entry.metrics),
        **{f"baseline_{k}": MetadataValue.float(float(entry.metrics[f"baseline_{k}"]))
           for k in ("roc_auc", "pr_auc") if entry.metrics.get(f"baseline_{k}") is not None},
        **_floats("champion_", champion_metrics or {}),
        **_floats("current_champion_", current["metrics"]),
        "training_rows": MetadataValue.int(entry.training_rows),
        "holdout_rows": MetadataValue.int(int(entry.holdout["rows"])),
        "holdout_positives": MetadataValue.int(int(entry.holdout["positives"])),
        "outcomes_seen": MetadataValue.int(int(outcomes_seen)),
        "floor_roc_auc": MetadataValue.float(settings.min_model_auc),
        "registry": _history_table(history),
        "calibration": preview_table(entry.metrics["calibration"], limit=scoring.CALIBRATION_BINS),
        "learning_curve": preview_table(entry.learning_curve, limit=len(entry.learning_curve)),
    }  # fmt: skip
    if entry.kind == "model":
        coefficients = entry.metrics["coefficients"]
        metadata["coefficients"] = preview_table(
            [{"feature": k, "per_unit_log_odds": v}
             for k, v in sorted(coefficients.items(), key=lambda i: -abs(i[1]))],
            limit=len(coefficients),
        )  # fmt: skip
    return MaterializeResult(metadata=metadata)


# --- lead_scores ---------------------------------------------------------------------------------


@asset(
    partitions_def=crm_partitions,
    group_name="crm",
    kinds={"python", "postgres"},
    deps=[lead_features, lead_scoring_model],
    automation_condition=AutomationCondition.eager(),
    metadata={"table": SCORES_TABLE},
    description=(
        "Every open lead scored by the tenant's champion: ai_score 0-100 (the won probability in percent), "
        "its top reasons in words, and the model version and kind ('baseline' where no model passed), "
        "written to core.crm_lead_scores and back to core.crm_leads; leads closed since are cleared."
    ),
)
def lead_scores(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    tenant_id = context.partition_key
    champion = next(
        (v for v in registry(warehouse, tenant_id, artifacts=True) if v["status"] == "champion"), None
    )
    if champion is None:
        raise Failure(
            f"tenant {tenant_id!r} has no champion in {REGISTRY_TABLE}: materialize lead_scoring_model first"
        )
    scorer = scoring.load(champion["artifact"] if champion["kind"] == "model" else None)
    frame = load_features(warehouse, tenant_id)
    # Closed by outcome (the features' is_open) or by the CRM's own status, whichever came first.
    closed = {
        r["lead_id"]
        for r in _rows(
            warehouse, tenant_id,
            f"SELECT lead_id FROM {LEADS_TABLE} WHERE tenant_id = %(t)s AND status IN ('won', 'lost')",
        )
    }  # fmt: skip
    open_leads = frame[frame["is_open"].astype(bool) & ~frame["lead_id"].isin(closed)].reset_index(drop=True)
    probability = scorer.predict(open_leads) if len(open_leads) else np.zeros(0)
    reasons = scorer.reasons(open_leads) if len(open_leads) else []
    ai_scores = scoring.scores(probability)
    scored_at = datetime.now(UTC)
    rows = [
        {"lead_id": lead_id, "ai_score": int(score), "probability": float(p), "reasons": Jsonb(why),
         "model_version": champion["version"], "model_kind": champion["kind"], "scored_at": scored_at,
         "dagster_run_id": context.run.run_id}
        for lead_id, score, p, why in zip(open_leads["lead_id"], ai_scores, probability, reasons, strict=True)
    ]  # fmt: skip
    with warehouse.tenant_transaction(tenant_id) as conn:
        written = write_partition(conn, tenant_id, SCORES_TABLE, rows, run_id=context.run.run_id)
        # Written back from the rows in hand, as arrays: a join with the scores just written in
        # this transaction is planned blind (no statistics yet) and went quadratic at 100k leads.
        updated = conn.execute(
            f"""UPDATE {LEADS_TABLE} l
                   SET ai_score = s.ai_score, ai_reasons = s.reasons, scored_at = %(at)s
                  FROM unnest(%(ids)s::text[], %(scores)s::smallint[], %(reasons)s::jsonb[])
                       AS s(lead_id, ai_score, reasons)
                 WHERE l.tenant_id = %(t)s AND l.lead_id = s.lead_id""",
            {"t": tenant_id, "at": scored_at, "ids": [r["lead_id"] for r in rows],
             "scores": [r["ai_score"] for r in rows], "reasons": [r["reasons"] for r in rows]},
        ).rowcount  # fmt: skip
        scored_now = {r["lead_id"] for r in rows}
        stale = [
            lead_id
            for (lead_id,) in conn.execute(
                f"SELECT lead_id FROM {LEADS_TABLE} WHERE tenant_id = %s AND ai_score IS NOT NULL",
                (tenant_id,),
            )
            if lead_id not in scored_now
        ]
        cleared = conn.execute(
            f"""UPDATE {LEADS_TABLE} SET ai_score = NULL, ai_reasons = NULL, scored_at = NULL
                 WHERE tenant_id = %s AND lead_id = ANY(%s::text[])""",
            (tenant_id, stale),
        ).rowcount
    bands = np.histogram(ai_scores, bins=[0, 20, 40, 60, 80, 101])[0] if len(ai_scores) else [0] * 5
    top = np.argsort(-probability)[:10]
    return MaterializeResult(
        metadata={
            "scored": MetadataValue.int(written),
            "written_back": MetadataValue.int(updated),
            "cleared_closed": MetadataValue.int(cleared),
            "model_version": MetadataValue.int(champion["version"]),
            "model_kind": MetadataValue.text(champion["kind"]),
            "mean_score": MetadataValue.float(float(ai_scores.mean()) if len(ai_scores) else 0.0),
            "score_distribution": preview_table(
                [
                    {"band": b, "leads": int(n)}
                    for b, n in zip(("0-19", "20-39", "40-59", "60-79", "80-100"), bands, strict=True)
                ]
            ),  # fmt: skip
            "preview": preview_table(
                [
                    {
                        "lead_id": open_leads["lead_id"].iloc[i],
                        "ai_score": int(ai_scores[i]),
                        "reasons": [r["text"] for r in reasons[i][:3]],
                    }
                    for i in top
                ]
            ),  # fmt: skip
        }
    )


crm_retrain_job = define_asset_job(
    "crm_retrain_job",
    selection=[lead_features, lead_scoring_model, lead_scores],
    description="Rebuild a CRM tenant's lead features, train a challenger, and rescore its open leads.",
)


# --- checks --------------------------------------------------------------------------------------


@asset_check(
    asset=lead_features,
    blocking=True,
    description="No feature computed from the future: every row's latest input is at or before its "
    "scoring time.",
)
def lead_features_point_in_time(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    if not context.has_partition_key:
        return skipped_check()
    tenant_id = context.partition_key
    rows = _rows(warehouse, tenant_id,
                 f"""SELECT lead_id, extract(epoch FROM as_of - max_input_at)::float8 AS headroom_s
                       FROM {FEATURES_TABLE} WHERE tenant_id = %(t)s""")  # fmt: skip
    return validate(
        "crm_lead_features_point_in_time",
        pd.DataFrame(rows, columns=["lead_id", "headroom_s"]),
        lambda gxe: [
            gxe.ExpectColumnValuesToBeUnique(column="lead_id"),
            gxe.ExpectColumnValuesToNotBeNull(column="headroom_s"),
            gxe.ExpectColumnValuesToBeBetween(column="headroom_s", min_value=0),
        ],
    )


@asset_check(
    asset=lead_features,
    blocking=True,
    description="Labels only where they were known: a label has its label_at, no later than when the row was "
    "computed, and after the lead's scoring time.",
)
def lead_features_labels_known(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    if not context.has_partition_key:
        return skipped_check()
    tenant_id = context.partition_key
    rows = _rows(warehouse, tenant_id,
                 f"""SELECT lead_id, label,
                            (label IS NULL) = (label_at IS NULL) AS label_has_time,
                            label_at IS NULL OR label_at <= computed_at AS label_in_past
                       FROM {FEATURES_TABLE} WHERE tenant_id = %(t)s""")  # fmt: skip
    return validate(
        "crm_lead_features_labels",
        pd.DataFrame(rows, columns=["lead_id", "label", "label_has_time", "label_in_past"]),
        lambda gxe: [
            gxe.ExpectColumnValuesToBeInSet(column="label", value_set=[0, 1]),
            gxe.ExpectColumnValuesToBeInSet(column="label_has_time", value_set=[True]),
            gxe.ExpectColumnValuesToBeInSet(column="label_in_past", value_set=[True]),
        ],
    )


@asset_check(
    asset=lead_scoring_model,
    blocking=True,
    description="The champion clears the tenant's ROC AUC floor on its holdout (a baseline champion is "
    "reported as such: it makes no model claim to check).",
)
def lead_scoring_model_champion_above_floor(
    context: AssetCheckExecutionContext, warehouse: WarehouseResource
):
    if not context.has_partition_key:
        return skipped_check()
    tenant_id = context.partition_key
    floor = crm_settings(tenant_id, tenant_settings(warehouse, tenant_id)).min_model_auc
    champion = next((v for v in registry(warehouse, tenant_id) if v["status"] == "champion"), None)
    if champion is None:
        return AssetCheckResult(passed=False, description="no champion in the registry",
                                severity=AssetCheckSeverity.ERROR)  # fmt: skip
    auc = champion["metrics"].get("roc_auc")
    metadata = {"version": champion["version"], "kind": champion["kind"], "floor_roc_auc": floor,
                "roc_auc": MetadataValue.float(float(auc)) if auc is not None else "n/a"}  # fmt: skip
    if champion["kind"] == "baseline":
        return AssetCheckResult(
            passed=True,
            metadata=metadata,
            description=f"v{champion['version']} is the baseline (no model yet): {champion['decision']}",
        )
    passed = auc is not None and auc >= floor
    return AssetCheckResult(
        passed=passed,
        metadata=metadata,
        description=f"v{champion['version']} holdout ROC AUC {auc} {'>=' if passed else '<'} floor {floor}",
    )


@asset_check(
    asset=lead_scores,
    blocking=True,
    description="Scores in range: ai_score 0..100 and probability 0..1, one per open lead, matching each "
    "other, on the leads as on the scores table.",
)
def lead_scores_in_range(context: AssetCheckExecutionContext, warehouse: WarehouseResource):
    if not context.has_partition_key:
        return skipped_check()
    tenant_id = context.partition_key
    with warehouse.tenant_transaction(tenant_id) as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT s.lead_id, s.ai_score, s.probability, s.model_kind,
                       abs(s.ai_score - 100 * s.probability) AS score_gap,
                       l.ai_score IS NOT DISTINCT FROM s.ai_score AS written_back
                  FROM {SCORES_TABLE} s LEFT JOIN {LEADS_TABLE} l
                    ON l.tenant_id = s.tenant_id AND l.lead_id = s.lead_id
                 WHERE s.tenant_id = %(t)s""",
            {"t": tenant_id},
        ).fetchall()
    columns = ["lead_id", "ai_score", "probability", "model_kind", "score_gap", "written_back"]
    return validate(
        "crm_lead_scores",
        pd.DataFrame(rows, columns=columns),
        lambda gxe: [
            gxe.ExpectColumnValuesToBeUnique(column="lead_id"),
            gxe.ExpectColumnValuesToBeBetween(column="ai_score", min_value=0, max_value=100),
            gxe.ExpectColumnValuesToBeBetween(column="probability", min_value=0, max_value=1),
            gxe.ExpectColumnValuesToBeBetween(column="score_gap", max_value=0.5 + 1e-9),
            gxe.ExpectColumnValuesToBeInSet(column="model_kind", value_set=["model", "baseline"]),
            gxe.ExpectColumnValuesToBeInSet(column="written_back", value_set=[True]),
        ],
    )
