"""CRM lead-scoring benchmarks (issue 6), on the bench data folder (`.data/bench`).

    python -m bench.crm [--quick] [--skip-platform]

1. Time per 100k leads of the pure steps (ml.crm, in memory): point-in-time features, training
   (the challenger fit alone, and with its learning curve of five more fits), and scoring (the
   probability plus the worded reasons of every lead), on a synthetic history of ~100k leads
   (20k with --quick) over the bundled six-month window, normalised per 100k leads.
2. The same through the platform: the history loaded into Postgres for a bench tenant
   (orchestration.crm_seed) and the lead_features, lead_scoring_model and lead_scores assets
   materialized with their checks on the real Dagster instance, one run each, wall-clock.
3. Holdout quality per seeded tenant profile (coreldove, business_directory, bizoholic) on the
   bundled history (2026-06-01 to 2026-11-25, seed 20261125): the model's ROC AUC and PR AUC on
   its time-split holdout against the baseline's (the source's historical conversion rate as of
   each lead's scoring time), and what a tenant with too few outcomes is given.

Results merge into bench/results/crm.json under "scoring" (other CRM benchmarks keep their keys).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import date

from bench.api import ROOT
from ml.crm import model
from ml.crm.features import build_features, inputs_from_history
from ml.crm.synthetic import PROFILES, generate_history

BENCH_TENANT = "bench_crm"
START, END = date(2026, 6, 1), date(2026, 11, 25)
DAYS = (END - START).days
# Weekends bring fewer leads and re-submissions merge: a day yields ~0.87 of the nominal rate.
YIELD = 0.87


def _per_100k(seconds: float, leads: int) -> float:
    return round(seconds * 100_000 / leads, 2)


def bench_pure(leads: int) -> dict:
    started = time.perf_counter()
    history = generate_history(BENCH_TENANT, START, END, leads_per_day=leads / DAYS / YIELD)
    generated = time.perf_counter() - started
    inputs = inputs_from_history(history)
    n = len(inputs.leads)

    started = time.perf_counter()
    frame = build_features(inputs, history.now)
    features_s = time.perf_counter() - started

    split = model.time_split(frame)
    started = time.perf_counter()
    scorer = model.fit(split.train, model.feature_names(frame))
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    candidate = model.train_candidate(frame, min_outcomes=0)
    train_s = time.perf_counter() - started

    started = time.perf_counter()
    probability = scorer.predict(frame)
    predict_s = time.perf_counter() - started
    started = time.perf_counter()
    scorer.reasons(frame)
    reasons_s = time.perf_counter() - started
    model.scores(probability)
    return {
        "leads": n,
        "touches": len(inputs.touches),
        "labelled": int(frame["label"].notna().sum()),
        "generate_s": round(generated, 2),
        "features_s": round(features_s, 2),
        "fit_s": round(fit_s, 2),
        "train_with_learning_curve_s": round(train_s, 2),
        "predict_s": round(predict_s, 3),
        "reasons_s": round(reasons_s, 2),
        "per_100k": {
            "features_s": _per_100k(features_s, n),
            "fit_s": _per_100k(fit_s, n),
            "train_with_learning_curve_s": _per_100k(train_s, n),
            "score_with_reasons_s": _per_100k(predict_s + reasons_s, n),
        },
        "holdout_roc_auc": candidate.metrics["roc_auc"],
        "baseline_roc_auc": candidate.metrics["baseline_roc_auc"],
    }


def bench_auc() -> list[dict]:
    rows = []
    for tenant in PROFILES:
        history = generate_history(tenant, START, END)
        frame = build_features(inputs_from_history(history), history.now)
        shipped = model.train_candidate(frame)  # the tenants.yaml floor of 200 outcomes
        forced = model.train_candidate(frame, min_outcomes=0)
        row = {
            "tenant": tenant,
            "leads": len(frame),
            "labelled": int(frame["label"].notna().sum()),
            "won": int((frame["label"] == 1).sum()),
            "shipped_kind": shipped.kind,
            "holdout_rows": forced.holdout["rows"],
            "model_roc_auc": forced.metrics["roc_auc"] if forced.kind == "model" else None,
            "model_pr_auc": forced.metrics["pr_auc"] if forced.kind == "model" else None,
            "baseline_roc_auc": forced.metrics["baseline_roc_auc"],
            "baseline_pr_auc": forced.metrics["baseline_pr_auc"],
            "note": shipped.note or None,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def score_tenant(warehouse, tenant: str) -> dict[str, float]:
    """Materialize lead_features, lead_scoring_model and lead_scores (with their checks) for
    `tenant` on the bench instance, one run each; the seconds of each."""
    from dagster import DagsterInstance, materialize

    from assets import crm_scoring

    steps = {
        "lead_features": [crm_scoring.lead_features, crm_scoring.lead_features_point_in_time,
                          crm_scoring.lead_features_labels_known],
        "lead_scoring_model": [crm_scoring.lead_scoring_model,
                               crm_scoring.lead_scoring_model_champion_above_floor],
        "lead_scores": [crm_scoring.lead_scores, crm_scoring.lead_scores_in_range],
    }  # fmt: skip
    seconds = {}
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(crm_scoring.crm_partitions.name, [tenant])
        for name, assets in steps.items():
            started = time.perf_counter()
            run = materialize(
                assets, partition_key=tenant, instance=instance, resources={"warehouse": warehouse}
            )
            assert run.success, f"{name} failed for {tenant}"
            seconds[name] = time.perf_counter() - started
    return seconds


def bench_platform(leads: int) -> dict:
    from psycopg.types.json import Jsonb

    from bench.api import prepare_platform
    from orchestration import postgres
    from orchestration.crm_seed import load_history
    from orchestration.settings import load_settings
    from orchestration.warehouse import WarehouseResource

    env, _ = prepare_platform()
    admin = postgres.admin_url(load_settings())
    with postgres.connect(admin, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO core.tenants
                      (tenant_id, display_name, kind, parent_tenant_id, tier, domains, settings)
               VALUES (%s, 'Bench CRM', 'client', 'bizoholic', 'starter', '{crm}', %s)
               ON CONFLICT (tenant_id) DO UPDATE SET settings = EXCLUDED.settings, status = 'active'""",
            (BENCH_TENANT, Jsonb({"crm": {"min_outcomes_for_model": 200}})),
        )
    warehouse = WarehouseResource(database_url=env["BIZOSAAS_WRITER_URL"])
    history = generate_history(BENCH_TENANT, START, END, leads_per_day=leads / DAYS / YIELD)
    started = time.perf_counter()
    with warehouse.tenant_transaction(BENCH_TENANT) as conn:
        written = load_history(conn, history)
    result = {"seed_s": round(time.perf_counter() - started, 2), "leads": written["crm_leads"]}
    for name, seconds in score_tenant(warehouse, BENCH_TENANT).items():
        result[f"{name}_s"] = round(seconds, 2)
        result[f"{name}_per_100k_s"] = _per_100k(seconds, written["crm_leads"])
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="20k leads instead of 100k")
    parser.add_argument(
        "--skip-platform", action="store_true", help="the in-memory steps and AUCs only (no Postgres)"
    )
    args = parser.parse_args()
    leads = 20_000 if args.quick else 100_000
    started = time.perf_counter()
    report: dict = {"cores": os.cpu_count(), "quick": args.quick, "target_leads": leads}
    report["pure"] = bench_pure(leads)
    print(json.dumps(report["pure"]), flush=True)
    report["auc"] = bench_auc()
    if not args.skip_platform:
        report["platform"] = bench_platform(leads)
    report["seconds"] = round(time.perf_counter() - started, 1)

    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / "crm.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged["scoring"] = report
    path.write_text(json.dumps(merged, indent=2))
    print(f"wrote {path}")
    pure = report["pure"]["per_100k"]
    print("\n| step (per 100k leads) | seconds |\n|---|---|")
    for name, value in pure.items():
        print(f"| {name} | {value} |")
    if "platform" in report:
        for name in ("lead_features", "lead_scoring_model", "lead_scores"):
            print(f"| {name} asset + checks (Postgres) | {report['platform'][f'{name}_per_100k_s']} |")
    print("\n| tenant | leads | labelled | shipped | holdout | model ROC AUC | baseline ROC AUC |")
    print("|---|---|---|---|---|---|---|")
    for r in report["auc"]:
        print(
            f"| {r['tenant']} | {r['leads']} | {r['labelled']} | {r['shipped_kind']} | {r['holdout_rows']} "
            f"| {r['model_roc_auc']} | {r['baseline_roc_auc']} |"
        )


if __name__ == "__main__":
    main()
