"""Point-in-time lead features: nothing from after a lead's scoring time, and labels as known."""

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ml.crm.features import (
    GROUP_PRIOR,
    FeatureInputs,
    build_features,
    feature_records,
    frame_from_records,
    inputs_from_history,
    labels,
    leakage_rows,
)
from ml.crm.synthetic import SCORING_DELAY, generate_history

START, END = date(2026, 6, 1), date(2026, 10, 1)
T0 = datetime(2026, 9, 1, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def history():
    return generate_history("business_directory", START, END)


@pytest.fixture(scope="module")
def inputs(history):
    return inputs_from_history(history)


@pytest.fixture(scope="module")
def frame(history, inputs):
    return build_features(inputs, history.now)


def test_every_row_uses_only_inputs_up_to_its_scoring_time(history, inputs, frame):
    assert len(frame) == len(inputs.leads) and leakage_rows(frame).empty
    created = frame["lead_id"].map(inputs.leads.set_index("lead_id")["created_at"])
    old = created + SCORING_DELAY <= pd.Timestamp(history.now)
    assert (frame.loc[old, "as_of"] == created[old] + SCORING_DELAY).all()
    assert (frame.loc[~old, "as_of"] == pd.Timestamp(history.now)).all() and (~old).any()
    assert (frame["max_input_at"] >= created).all()


def test_the_look_ahead_trap_changes_the_features_and_is_caught(inputs, frame, history):
    # Letting the features see a year past creation takes in the onboarding touches that only
    # won leads get, after their win: the touch count turns into a near-perfect label leak.
    leaky = build_features(inputs, history.now, scoring_delay=timedelta(days=365))
    known = frame["label"].notna().to_numpy()
    y = frame.loc[known, "label"].astype(int)
    honest_auc = roc_auc_score(y, frame.loc[known, "touches_first_day"])
    leaky_auc = roc_auc_score(y, leaky.loc[known, "touches_first_day"])
    assert leaky_auc > honest_auc + 0.1
    assert (leaky["touches_first_day"] >= frame["touches_first_day"]).all()
    assert (leaky["touches_first_day"] > frame["touches_first_day"]).any()
    # Judged against the honest scoring time, those rows are flagged as using the future.
    caught = leakage_rows(leaky.assign(as_of=frame["as_of"]))
    assert len(caught) > 0
    assert set(caught["lead_id"]) >= set(frame.loc[leaky["touches_first_day"] > frame["touches_first_day"],
                                                    "lead_id"])  # fmt: skip


def _tiny(leads, touches=(), outcomes=(), days=()):
    return FeatureInputs.from_rows(
        pd.DataFrame(leads, columns=["lead_id", "email_key", "phone", "company_name", "source", "campaign_id",
                                     "created_at"]),
        pd.DataFrame(list(touches), columns=["lead_id", "campaign_id", "touched_at"]),
        pd.DataFrame(list(outcomes), columns=["lead_id", "outcome", "occurred_at"]),
        pd.DataFrame(list(days), columns=["campaign_id", "day", "spend", "impressions", "clicks",
                                          "conversions"]),
    )  # fmt: skip


def test_conversion_rates_use_other_leads_known_labels_with_a_prior():
    h = timedelta(hours=1)
    leads = [
        ("a", "a@acme.example", None, None, "referral", None, T0),
        ("b", "b@gmail.com", None, None, "referral", None, T0 + 2 * h),
        ("c", "c@gmail.com", None, None, "referral", None, T0 + 72 * h),
        ("d", "d@gmail.com", None, None, "web", None, T0 + 72 * h),
    ]
    # a is won on day 2, b on day 4: c (scored on day 4, before b's win) knows only a's.
    outcomes = [("a", "won", T0 + 30 * h), ("b", "won", T0 + 100 * h)]
    frame = build_features(_tiny(leads, outcomes=outcomes), T0 + 200 * h).set_index("lead_id")
    tenant_rate_c = (1 + 2 * 0.5) / (1 + 2)
    assert frame.loc["c", "source_conversion_rate"] == pytest.approx(
        (1 + GROUP_PRIOR * tenant_rate_c) / (1 + 10)
    )
    # a's own win is not in a's rate (it was not known at a's scoring time, and it is a's label).
    assert frame.loc["a", "source_conversion_rate"] == pytest.approx(0.5)
    # d (web) has no web history: it gets the tenant's rate, not 0 or 1.
    assert frame.loc["d", "source_conversion_rate"] == pytest.approx(tenant_rate_c)
    assert frame.loc["c", "max_input_at"] == T0 + 72 * h  # its creation, the latest of what it used
    assert frame.loc["a", "corporate_email"] == 1 and frame.loc["b", "corporate_email"] == 0
    assert frame.loc["a", "source=referral"] == 1 and frame.loc["d", "source=referral"] == 0


def test_touches_and_campaign_days_count_only_once_they_happened():
    created = T0  # 10:00 on 2026-09-01
    leads = [("a", "a@acme.example", "+15125550101", "Acme", "paid_search", "cmp", created)]
    touches = [
        ("a", "cmp", created - timedelta(days=3)),
        ("a", "cmp", created + timedelta(hours=2)),
        ("a", "other", created + timedelta(hours=20)),
        ("a", "cmp", created + timedelta(hours=30)),  # after the scoring time
    ]
    days = [("cmp", date(2026, 8, 31), 100.0, 10_000, 200, 4), ("cmp", date(2026, 9, 1), 50.0, 1000, 100, 1),
            ("cmp", date(2026, 9, 2), 999.0, 1, 1, 1)]  # fmt: skip
    row = build_features(_tiny(leads, touches, days=days), T0 + timedelta(days=5)).iloc[0]
    assert (row["touches_before_creation"], row["touches_first_day"], row["campaigns_touched"]) == (1, 2, 2)
    assert row["hours_since_last_touch"] == pytest.approx(4.0)
    assert row["phone_present"] == 1 and row["company_present"] == 1 and row["has_campaign"] == 1
    # as_of is 2026-09-02 10:00: the days of Aug 31 and Sep 1 have ended, Sep 2 has not.
    assert row["campaign_cost_per_lead"] == pytest.approx(np.log1p(150.0 / 5))
    assert row["campaign_ctr"] == pytest.approx(300 / 11_000)
    assert row["max_input_at"] == created + timedelta(hours=20)  # the last touch it counted


def test_labels_as_known_now():
    leads = [(k, f"{k}@gmail.com", None, None, "web", None, T0) for k in "wlxyz"]
    outcomes = [("w", "won", T0 + timedelta(days=5)), ("w", "qualified", T0 + timedelta(days=2)),
                ("l", "lost", T0 + timedelta(days=9)), ("z", "won", T0 + timedelta(days=70))]  # fmt: skip
    now = T0 + timedelta(days=65)
    known = labels(_tiny(leads, outcomes=outcomes), now, timedelta(days=60)).set_index("lead_id")
    assert known.loc["w", "label"] == 1 and known.loc["w", "label_at"] == T0 + timedelta(days=5)
    assert known.loc["l", "label"] == 0 and not known.loc["l", "is_open"]
    # No outcome 60 days on: lost, as of day 60. z's win comes after now, so it is not known yet.
    assert known.loc["x", "label"] == 0 and known.loc["x", "label_at"] == T0 + timedelta(days=60)
    assert known.loc["z", "label"] == 0 and known.loc["z", "is_open"]
    young = labels(_tiny(leads, outcomes=outcomes), T0 + timedelta(days=20), timedelta(days=60))
    assert young.set_index("lead_id")["label"].isna().sum() == 3
    assert (known["label_at"].dropna() <= now).all()


def test_records_round_trip(frame):
    back = frame_from_records(feature_records(frame))
    assert list(back["lead_id"]) == list(frame["lead_id"])
    assert np.allclose(back["source_conversion_rate"], frame["source_conversion_rate"], atol=1e-6)
    assert back["label"].isna().sum() == frame["label"].isna().sum()
