"""Lead-scoring training, the promotion rule, the baseline and the reasons, on synthetic histories
with a planted signal."""

from datetime import date

import numpy as np
import pytest

from ml.crm import model
from ml.crm.features import build_features, inputs_from_history
from ml.crm.synthetic import generate_history

START, END = date(2026, 6, 1), date(2026, 11, 25)


def _features(tenant, start=START, end=END, **kwargs):
    history = generate_history(tenant, start, end, **kwargs)
    return build_features(inputs_from_history(history), history.now), history


@pytest.fixture(scope="module")
def coreldove():
    return _features("coreldove")


@pytest.fixture(scope="module")
def candidate(coreldove):
    return model.train_candidate(coreldove[0])


def test_the_model_finds_the_planted_signal(candidate, coreldove):
    frame, history = coreldove
    metrics = candidate.metrics
    assert candidate.kind == "model"
    assert metrics["roc_auc"] > 0.65 and metrics["roc_auc"] > metrics["baseline_roc_auc"] + 0.03
    assert metrics["pr_auc"] > metrics["baseline_pr_auc"]
    assert metrics["brier"] < metrics["baseline_brier"]
    coefficients = metrics["coefficients"]
    assert coefficients["corporate_email"] > 0 and coefficients["phone_present"] > 0
    assert coefficients["touches_first_day"] > 0
    # Scores rank leads like the planted truth does.
    holdout = model.holdout_rows(frame, candidate.holdout)
    truth = holdout["lead_id"].map(
        {lid: p for lid, p in zip(*_truth(history), strict=True)}
    )  # fmt: skip
    predicted = candidate.scorer.predict(holdout)
    assert np.corrcoef(predicted, truth)[0, 1] > 0.5


def _truth(history):
    from ml.crm.emails import lead_id_for

    keys = list(history.win_probability)
    return [lead_id_for(history.tenant_id, k) for k in keys], [history.win_probability[k] for k in keys]


def test_the_split_is_by_time_and_the_holdout_is_recorded(candidate, coreldove):
    frame = coreldove[0]
    holdout = model.holdout_rows(frame, candidate.holdout)
    train_ids = set(model.labelled(frame)["lead_id"]) - set(holdout["lead_id"])
    train = frame[frame["lead_id"].isin(train_ids)]
    assert len(holdout) == candidate.holdout["rows"] and len(train) == candidate.training_rows
    assert train["as_of"].max() < holdout["as_of"].min()
    assert holdout["as_of"].min().isoformat() == candidate.holdout["cutoff"]
    assert 0.2 <= len(holdout) / (len(holdout) + len(train)) <= 0.3
    # The learning curve: more outcomes, no worse a model (within noise), measured on that holdout.
    curve = candidate.learning_curve
    assert [p["training_rows"] for p in curve] == sorted(p["training_rows"] for p in curve)
    assert curve[-1]["holdout_roc_auc"] == candidate.metrics["roc_auc"]
    assert curve[-1]["holdout_roc_auc"] >= curve[0]["holdout_roc_auc"] - 0.02


def test_reasons_are_the_exact_log_odds_effects_in_words(candidate, coreldove):
    frame = coreldove[0]
    open_leads = frame[frame["is_open"]].head(50)
    scorer = candidate.scorer
    effects = scorer.effects(open_leads)
    intercept = scorer.pipeline.named_steps["model"].intercept_[0]
    assert np.allclose(1 / (1 + np.exp(-(intercept + effects.sum(axis=1)))), scorer.predict(open_leads))
    for reasons in scorer.reasons(open_leads):
        assert 1 <= len(reasons) <= 5
        assert [abs(r["effect"]) for r in reasons] == sorted(
            (abs(r["effect"]) for r in reasons), reverse=True
        )
        assert sum(r["effect"] > 0 for r in reasons) <= 3 and sum(r["effect"] < 0 for r in reasons) <= 2
        assert all(r["text"] and "_" not in r["text"] for r in reasons)
    assert model.describe("touches_first_day", 3, "web") == "3 touches in the first day"
    assert model.describe("corporate_email", 1, "web") == "company email address"
    assert model.describe("source=referral", 1, "referral") == "came from referral"
    assert model.describe("source=referral", 0, "web") is None


def test_an_artifact_round_trips(candidate, coreldove):
    frame = coreldove[0]
    again = model.load(model.dump(candidate.scorer))
    assert np.array_equal(again.predict(frame), candidate.scorer.predict(frame))
    assert isinstance(model.load(None), model.BaselineScorer)


def test_too_few_outcomes_gets_the_baseline_clearly_labelled():
    frame, _ = _features("bizoholic", START, date(2026, 9, 1))
    labelled = int(frame["label"].notna().sum())
    assert 0 < labelled < 200
    candidate = model.train_candidate(frame, min_outcomes=200)
    assert candidate.kind == "baseline" and candidate.training_rows == 0
    assert f"{labelled} labelled leads" in candidate.note and "fewer than the 200" in candidate.note
    assert np.array_equal(candidate.scorer.predict(frame), frame["source_conversion_rate"].to_numpy())
    assert all(r[0]["text"].startswith("baseline only:") for r in candidate.scorer.reasons(frame.head(5)))


def test_an_empty_tenant_gets_a_baseline_without_metrics():
    frame, _ = _features("bizoholic", date(2026, 11, 20), date(2026, 11, 21), leads_per_day=0.01)
    candidate = model.train_candidate(frame.iloc[:0])
    assert candidate.kind == "baseline" and candidate.metrics["roc_auc"] is None


M = {"roc_auc": 0.72}


@pytest.mark.parametrize(
    ("challenger", "champion", "kinds", "promote", "words"),
    [
        (M, None, ("model", None), True, "replaces no champion"),
        (
            {"roc_auc": 0.70},
            {"roc_auc": 0.72},
            ("model", "model"),
            False,
            "rejected: ROC AUC 0.700 vs champion",
        ),
        ({"roc_auc": 0.716}, {"roc_auc": 0.72}, ("model", "model"), True, "promoted"),  # within tolerance
        ({"roc_auc": 0.72}, {"roc_auc": 0.72}, ("model", "model"), True, "promoted"),
        ({"roc_auc": 0.75}, {"roc_auc": 0.72}, ("model", "model"), True, "promoted"),
        ({"roc_auc": 0.58}, None, ("model", None), False, "below the floor 0.60"),
        ({"roc_auc": 0.58}, {"roc_auc": 0.50}, ("model", "model"), False, "below the floor"),
        ({"roc_auc": None}, None, ("model", None), False, "only one class"),
        (M, {"roc_auc": 0.6}, ("model", "baseline"), True, "replaces the baseline champion"),
        ({"roc_auc": 0.5}, None, ("baseline", None), True, "baseline champion"),
        ({"roc_auc": 0.5}, None, ("baseline", "baseline"), True, "baseline champion"),
        ({"roc_auc": 0.9}, None, ("baseline", "model"), False, "kept the model champion"),
    ],
)
def test_the_promotion_rule(challenger, champion, kinds, promote, words):
    decision = model.decide(challenger, champion, challenger_kind=kinds[0], champion_kind=kinds[1])
    assert decision.promote is promote and words in decision.text


def test_the_champion_is_compared_only_on_rows_it_never_trained_on(candidate, coreldove):
    frame = coreldove[0]
    holdout = model.holdout_rows(frame, candidate.holdout)
    later = holdout["as_of"].sort_values().iloc[len(holdout) // 2]
    unseen = model.unseen_by(holdout, {"cutoff": later.isoformat()})
    assert 0 < len(unseen) < len(holdout) and (unseen["as_of"] >= later).all()
    assert len(model.unseen_by(holdout, {"cutoff": None})) == len(holdout)
    # The challenger's whole-holdout AUC clears the floor; on the shared rows it is worse: rejected.
    decision = model.decide(
        {"roc_auc": 0.75}, {"roc_auc": 0.72}, champion_kind="model", challenger_vs_champion={"roc_auc": 0.70}
    )
    assert not decision.promote and "0.700 vs champion 0.720" in decision.text
    none_shared = model.decide(
        {"roc_auc": 0.75}, {"roc_auc": None}, champion_kind="model", challenger_vs_champion={"roc_auc": None}
    )
    assert not none_shared.promote and "cannot be compared" in none_shared.text


def test_a_worse_challenger_is_rejected_on_the_same_holdout(candidate, coreldove):
    frame = coreldove[0]
    holdout = model.holdout_rows(frame, candidate.holdout)
    y = holdout["label"].to_numpy(dtype=int)
    # A challenger trained without the signal-bearing features does worse on the same rows.
    weak = model.fit(model.time_split(frame).train, ["created_weekend", "created_business_hours"])
    weak_metrics = model.evaluate(weak.predict(holdout), y)
    champion_metrics = model.evaluate(candidate.scorer.predict(holdout), y)
    assert not model.decide(weak_metrics, champion_metrics, champion_kind="model").promote
    assert model.decide(champion_metrics, weak_metrics, champion_kind="model", min_auc=0.5).promote


def test_calibration_table_compares_predicted_and_observed():
    probability = np.array([0.05, 0.05, 0.15, 0.95, 0.95, 0.97])
    label = np.array([0, 0, 1, 1, 1, 0])
    metrics = model.evaluate(probability, label)
    bins = {b["bin"]: b for b in metrics["calibration"]}
    assert set(bins) == {"0.0-0.1", "0.1-0.2", "0.9-1.0"}
    assert bins["0.9-1.0"]["leads"] == 3 and bins["0.9-1.0"]["observed"] == pytest.approx(2 / 3, abs=1e-4)
    assert metrics["positives"] == 3 and 0 < metrics["roc_auc"] < 1
    assert list(model.scores(np.array([0.0, 0.004, 0.5, 0.996, 1.0]))) == [0, 0, 50, 100, 100]
