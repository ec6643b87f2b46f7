"""Point-in-time lead features: what was knowable about each lead at its scoring time, and its label.

A lead is scored at `as_of = created_at + SCORING_DELAY` once it is that old (its first day of
engagement is in), else at `now`. Every input a row uses is at or before its `as_of`: the lead's own
fields (known at creation), touches up to `as_of`, the won/lost labels of OTHER leads that were
known by `as_of` (historical conversion rates), and campaign figures of days that had ended by
`as_of`. `max_input_at` is the latest input a row used, so "nothing from the future" is checkable
row by row (`leakage_rows`).

Labels: won -> 1 and lost -> 0 at the outcome's time; no outcome `horizon` after creation -> 0
at creation + horizon; otherwise unknown (None). Labels never feed their own lead's features.

Inputs are plain frames (timestamps tz-aware UTC):
  leads:         lead_id, email_key, phone, company_name, source, campaign_id, created_at
  touches:       lead_id, campaign_id, touched_at
  outcomes:      lead_id, outcome, occurred_at
  campaign_days: campaign_id, day, spend, impressions, clicks, conversions
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from ml.crm.emails import email_key, is_free_domain, lead_id_for
from ml.crm.synthetic import SCORING_DELAY, CrmHistory

DEFAULT_HORIZON = timedelta(days=60)
RECENT_CAMPAIGN_WINDOW = timedelta(days=14)
# Pseudo-counts pulling small groups toward their parent rate: a source with 2 leads, both won,
# reads as a little above the tenant's rate, not 100 %.
TENANT_PRIOR = 2.0
GROUP_PRIOR = 10.0
NO_TOUCH_HOURS = 30 * 24.0  # "never touched" reads as a month of silence

BASE_FEATURES = (
    "corporate_email",
    "phone_present",
    "company_present",
    "has_campaign",
    "touches_before_creation",
    "touches_first_day",
    "campaigns_touched",
    "hours_since_last_touch",
    "created_business_hours",
    "created_weekend",
    "source_conversion_rate",
    "campaign_conversion_rate",
    "campaign_cost_per_lead",
    "campaign_ctr",
)
SOURCE_PREFIX = "source="

LEAD_COLUMNS = ("lead_id", "email_key", "phone", "company_name", "source", "campaign_id", "created_at")
TOUCH_COLUMNS = ("lead_id", "campaign_id", "touched_at")
OUTCOME_COLUMNS = ("lead_id", "outcome", "occurred_at")
CAMPAIGN_DAY_COLUMNS = ("campaign_id", "day", "spend", "impressions", "clicks", "conversions")


@dataclass(frozen=True)
class FeatureInputs:
    leads: pd.DataFrame
    touches: pd.DataFrame
    outcomes: pd.DataFrame
    campaign_days: pd.DataFrame

    @classmethod
    def from_rows(cls, leads, touches, outcomes, campaign_days) -> FeatureInputs:
        return cls(
            _frame(leads, LEAD_COLUMNS, ("created_at",)),
            _frame(touches, TOUCH_COLUMNS, ("touched_at",)),
            _frame(outcomes, OUTCOME_COLUMNS, ("occurred_at",)),
            _frame(campaign_days, CAMPAIGN_DAY_COLUMNS, ()),
        )


def inputs_from_history(history: CrmHistory) -> FeatureInputs:
    """A synthetic history as the feature inputs, merged like orchestration.crm_seed (the first
    record of an email is the lead), for tests and benchmarks that skip the database."""
    tenant, leads = history.tenant_id, {}
    for r in history.records:
        key = email_key(r.email)
        if key is not None and key not in leads:
            leads[key] = (lead_id_for(tenant, key), key, r.phone, r.company_name, r.source, r.campaign_id,
                          r.created_at)  # fmt: skip
    return FeatureInputs.from_rows(
        pd.DataFrame(list(leads.values()), columns=list(LEAD_COLUMNS)),
        pd.DataFrame([(lead_id_for(tenant, t.email_key), t.campaign_id, t.touched_at)
                      for t in history.touches], columns=list(TOUCH_COLUMNS)),
        pd.DataFrame([(lead_id_for(tenant, o.email_key), o.outcome, o.occurred_at) for o in history.outcomes],
                     columns=list(OUTCOME_COLUMNS)),
        pd.DataFrame([(d.campaign_id, d.day, float(d.spend), d.impressions, d.clicks, d.conversions)
                      for d in history.campaign_days], columns=list(CAMPAIGN_DAY_COLUMNS)),
    )  # fmt: skip


def _frame(rows, columns, times) -> pd.DataFrame:
    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=list(columns))
    missing = set(columns) - set(frame.columns)
    if missing:
        raise ValueError(f"input is missing columns {sorted(missing)}")
    for column in times:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def source_features(sources) -> list[str]:
    return [f"{SOURCE_PREFIX}{s}" for s in sorted(set(sources))]


def feature_names(frame: pd.DataFrame) -> list[str]:
    """The model inputs present in a features frame, in a stable order."""
    return [*BASE_FEATURES, *sorted(c for c in frame.columns if c.startswith(SOURCE_PREFIX))]


def labels(inputs: FeatureInputs, now: datetime, horizon: timedelta = DEFAULT_HORIZON) -> pd.DataFrame:
    """lead_id, label, label_at, is_open: each lead's label as known at `now`."""
    now_ts = pd.Timestamp(now)
    leads = inputs.leads[["lead_id", "created_at"]].copy()
    outcomes = inputs.outcomes
    # The platform's one rule for what happened to a lead (crm_leads.status follows it too):
    # the latest won/lost known at `now`, a win on a tie. A lead lost, re-opened and won is won.
    closed = (
        outcomes[outcomes["outcome"].isin(("won", "lost")) & (outcomes["occurred_at"] <= now_ts)]
        .sort_values(["occurred_at", "outcome"], kind="stable")
        .drop_duplicates("lead_id", keep="last")[["lead_id", "outcome", "occurred_at"]]
    )
    merged = leads.merge(closed, on="lead_id", how="left")
    outcome, outcome_at = merged["outcome"], pd.to_datetime(merged["occurred_at"], utc=True)
    expired_at = leads["created_at"] + pd.Timedelta(horizon)
    expired = outcome.isna() & (expired_at <= now_ts)
    label = pd.Series(pd.NA, index=leads.index, dtype="Int8")
    label[outcome == "won"] = 1
    label[(outcome == "lost") | expired] = 0
    label_at = outcome_at.where(outcome.notna(), expired_at.where(expired))
    return pd.DataFrame(
        {
            "lead_id": leads["lead_id"],
            "label": label,
            "label_at": pd.to_datetime(label_at, utc=True),
            "is_open": outcome.isna().to_numpy(),
        }
    )


def _ns(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype="datetime64[ns]").astype("int64")


def _group_rates(
    keys: pd.Series, at_ns: np.ndarray, events: pd.DataFrame, event_key: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query row: (labelled count, positives, latest label time used) among `events` of the
    same group with label_at <= the row's time."""
    n = len(keys)
    count, positives, latest = np.zeros(n), np.zeros(n), np.full(n, np.iinfo("int64").min)
    key_values = keys.to_numpy()
    for group, part in events.groupby(event_key, sort=False):
        rows = np.flatnonzero(key_values == group)
        if not len(rows):
            continue
        part = part.sort_values("label_at", kind="stable")
        times = _ns(part["label_at"])
        cumulative = np.concatenate(([0], np.cumsum(part["label"].to_numpy(dtype=float))))
        idx = np.searchsorted(times, at_ns[rows], side="right")
        count[rows] = idx
        positives[rows] = cumulative[idx]
        latest[rows] = np.where(idx > 0, times[np.maximum(idx - 1, 0)], latest[rows])
    return count, positives, latest


def build_features(
    inputs: FeatureInputs,
    now: datetime,
    *,
    horizon: timedelta = DEFAULT_HORIZON,
    scoring_delay: timedelta = SCORING_DELAY,
) -> pd.DataFrame:
    """One row per lead: lead_id, as_of, max_input_at, source, label, label_at, is_open and the
    feature columns (`feature_names(frame)`)."""
    now_ts = pd.Timestamp(now)
    leads = inputs.leads.reset_index(drop=True)
    if leads.empty:
        return pd.DataFrame(columns=["lead_id", "as_of", "max_input_at", "source", "label", "label_at",
                                     "is_open", *BASE_FEATURES])  # fmt: skip
    created = leads["created_at"]
    ready = created + pd.Timedelta(scoring_delay)
    as_of = ready.where(ready <= now_ts, now_ts)
    as_of = as_of.where(as_of >= created, created)  # a lead "created" after now is scored at creation
    as_of_ns = _ns(as_of)
    latest = _ns(created)

    out = pd.DataFrame({"lead_id": leads["lead_id"], "as_of": as_of, "source": leads["source"]})
    out["corporate_email"] = [0.0 if is_free_domain(k) else 1.0 for k in leads["email_key"]]
    out["phone_present"] = leads["phone"].fillna("").astype(str).str.strip().ne("").astype(float)
    out["company_present"] = leads["company_name"].fillna("").astype(str).str.strip().ne("").astype(float)
    campaign = leads["campaign_id"].where(leads["campaign_id"].notna() & leads["campaign_id"].ne(""))
    out["has_campaign"] = campaign.notna().astype(float)
    out["created_business_hours"] = created.dt.hour.between(9, 17).astype(float)
    out["created_weekend"] = (created.dt.day_of_week >= 5).astype(float)

    # Touches up to the scoring time only: later ones (onboarding after a win) would leak the label.
    position = pd.Series(np.arange(len(leads)), index=leads["lead_id"])
    touches = inputs.touches
    touches = touches[touches["lead_id"].isin(position.index)]
    row = position.reindex(touches["lead_id"]).to_numpy()
    t_ns = _ns(touches["touched_at"])
    seen = t_ns <= as_of_ns[row]
    row, t_ns, touched_campaign = row[seen], t_ns[seen], touches["campaign_id"].to_numpy()[seen]
    before = t_ns < latest[row]
    n = len(leads)
    out["touches_before_creation"] = np.bincount(row[before], minlength=n).astype(float)
    out["touches_first_day"] = np.bincount(row[~before], minlength=n).astype(float)
    distinct = pd.DataFrame({"row": row, "campaign": touched_campaign}).drop_duplicates()
    out["campaigns_touched"] = np.bincount(distinct["row"].to_numpy(), minlength=n).astype(float)
    last_touch = np.full(n, np.iinfo("int64").min)
    np.maximum.at(last_touch, row, t_ns)
    touched = last_touch > np.iinfo("int64").min
    out["hours_since_last_touch"] = np.where(touched, (as_of_ns - last_touch) / 3.6e12, NO_TOUCH_HOURS).clip(
        0, NO_TOUCH_HOURS
    )
    latest = np.maximum(latest, last_touch)

    # Historical conversion rates from OTHER leads' labels known by as_of, each with a prior.
    known = labels(inputs, now, horizon)
    events = known[known["label"].notna()].merge(
        leads[["lead_id", "source", "campaign_id"]], on="lead_id", how="left"
    )
    events = events.assign(label=events["label"].astype(float), all="all")
    own_label = known["label"].astype(float).to_numpy()
    own_seen = known["label"].notna().to_numpy() & (
        np.nan_to_num(_ns(known["label_at"].fillna(pd.Timestamp(0, tz="UTC"))), nan=0) <= as_of_ns
    )

    def rate(keys, key, prior_rate, prior):
        nonlocal latest
        count, positives, used = _group_rates(keys, as_of_ns, events, key)
        count = count - own_seen
        positives = positives - np.where(own_seen, np.nan_to_num(own_label), 0)
        latest = np.maximum(latest, used)
        return (positives + prior * prior_rate) / (count + prior)

    tenant_rate = rate(pd.Series(["all"] * n), "all", 0.5, TENANT_PRIOR)
    out["source_conversion_rate"] = rate(leads["source"], "source", tenant_rate, GROUP_PRIOR)
    campaign_rate = rate(campaign.fillna("\0none"), "campaign_id", out["source_conversion_rate"], GROUP_PRIOR)
    out["campaign_conversion_rate"] = np.where(campaign.notna(), campaign_rate, out["source_conversion_rate"])

    # The campaign's figures over the days that had ended by as_of (a day's totals are final at
    # the next midnight UTC).
    spend, leads_won, clicks, impressions = (np.zeros(n) for _ in range(4))
    days = inputs.campaign_days
    campaign_values = campaign.to_numpy()
    window = pd.Timedelta(RECENT_CAMPAIGN_WINDOW).value
    for campaign_id, part in days.groupby("campaign_id", sort=False):
        rows = np.flatnonzero(campaign_values == campaign_id)
        if not len(rows):
            continue
        part = part.sort_values("day")
        ends = _ns(pd.to_datetime(part["day"]).dt.tz_localize("UTC") + pd.Timedelta(days=1))
        hi = np.searchsorted(ends, as_of_ns[rows], side="right")
        lo = np.searchsorted(ends, as_of_ns[rows] - window, side="right")
        for target, column in ((spend, "spend"), (leads_won, "conversions"), (clicks, "clicks"),
                               (impressions, "impressions")):  # fmt: skip
            cumulative = np.concatenate(([0.0], np.cumsum(part[column].to_numpy(dtype=float))))
            target[rows] = cumulative[hi] - cumulative[lo]
        latest[rows] = np.where(hi > 0, np.maximum(latest[rows], ends[np.maximum(hi - 1, 0)]), latest[rows])
    out["campaign_cost_per_lead"] = np.log1p(np.where(leads_won > 0, spend / np.maximum(leads_won, 1), 0.0))
    out["campaign_ctr"] = np.where(impressions > 0, clicks / np.maximum(impressions, 1), 0.0)

    for name in source_features(leads["source"]):
        out[name] = (leads["source"] == name[len(SOURCE_PREFIX) :]).astype(float)

    out["max_input_at"] = pd.to_datetime(latest, utc=True)
    out = out.merge(known, on="lead_id", how="left")
    ordered = ["lead_id", "as_of", "max_input_at", "source", "label", "label_at", "is_open"]
    return out[ordered + feature_names(out)]


def leakage_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that used an input later than their scoring time (must be empty)."""
    return frame[frame["max_input_at"] > frame["as_of"]]


def feature_records(frame: pd.DataFrame) -> list[dict]:
    """Rows for core.crm_lead_features: the model inputs as one `features` document per lead."""
    names = feature_names(frame)
    values = frame[names].to_numpy(dtype=float).round(6)
    records = []
    for i, row in enumerate(frame.itertuples(index=False)):
        records.append(
            {
                "lead_id": row.lead_id,
                "as_of": row.as_of.to_pydatetime(),
                "max_input_at": row.max_input_at.to_pydatetime(),
                "features": dict(zip(names, values[i].tolist(), strict=True)),
                "source": row.source,
                "label": None if pd.isna(row.label) else int(row.label),
                "label_at": None if pd.isna(row.label_at) else row.label_at.to_pydatetime(),
                "is_open": bool(row.is_open),
            }
        )
    return records


def frame_from_records(records) -> pd.DataFrame:
    """core.crm_lead_features rows back into a features frame (the training/scoring input)."""
    records = list(records)
    base = pd.DataFrame(
        [{k: r[k] for k in ("lead_id", "as_of", "max_input_at", "source", "label", "label_at", "is_open")}
         for r in records],
        columns=["lead_id", "as_of", "max_input_at", "source", "label", "label_at", "is_open"],
    )  # fmt: skip
    for column in ("as_of", "max_input_at", "label_at"):
        base[column] = pd.to_datetime(base[column], utc=True)
    base["label"] = base["label"].astype("Int8")
    values = pd.DataFrame([r["features"] for r in records], index=base.index).fillna(0.0)
    return pd.concat([base, values], axis=1)
