"""Per-tenant lead scoring: a time-split logistic model, its baseline, and the promotion rule.

The model is a logistic regression on standardised point-in-time features: calibrated enough for
its probabilities to read as chances, and linear, so each lead's reasons are exact (a feature's
effect is its coefficient times the lead's standardised value, in log-odds). The baseline is the
lead's source's historical conversion rate as of its scoring time: what a sales team would guess
without a model, and what a tenant with too few outcomes is scored by.

Validation is time-based: the latest `holdout_fraction` of labelled leads by scoring time are held
out, the model is fitted on the earlier ones only, and the fitted model is what is deployed (no
refit on the holdout), so a later challenger's holdout is always unseen by the current champion
and both can be compared on the same rows.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ml.crm.features import SOURCE_PREFIX, feature_names

ALGORITHM = "logistic_regression"
BASELINE_ALGORITHM = "source_conversion_rate"
DEFAULT_HOLDOUT_FRACTION = 0.25
DEFAULT_MIN_OUTCOMES = 200
DEFAULT_MIN_AUC = 0.6
# A challenger may be this much below the champion's ROC AUC on the same holdout and still be
# promoted: it is trained on more recent outcomes, and smaller AUC gaps are noise at these sizes.
PROMOTION_TOLERANCE = 0.005
MODEL_PARAMS = {"C": 1.0, "max_iter": 1000}
CALIBRATION_BINS = 10
LEARNING_CURVE_POINTS = (0.2, 0.4, 0.6, 0.8, 1.0)


def matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """The features in the given order; a feature the frame lacks (a source unseen since) is 0."""
    return frame.reindex(columns=features, fill_value=0.0).to_numpy(dtype=float)


def labelled(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["label"].notna()]


# --- scorers ---------------------------------------------------------------------------------------


class BaselineScorer:
    """The source's historical conversion rate, as of each lead's scoring time."""

    kind = "baseline"
    algorithm = BASELINE_ALGORITHM
    features = ["source_conversion_rate"]

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return matrix(frame, self.features)[:, 0].clip(0.0, 1.0)

    def reasons(self, frame: pd.DataFrame) -> list[list[dict]]:
        rates = matrix(frame, self.features)[:, 0]
        return [
            [{"feature": "source_conversion_rate", "value": round(float(rate), 4), "effect": 0.0,
              "text": f"baseline only: {source} leads have converted {rate:.0%} of the time"}]
            for source, rate in zip(frame["source"], rates, strict=True)
        ]  # fmt: skip


class ModelScorer:
    """A fitted scaler + logistic regression over named features."""

    kind = "model"
    algorithm = ALGORITHM

    def __init__(self, pipeline: Pipeline, features: list[str]):
        self.pipeline, self.features = pipeline, list(features)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.pipeline.predict_proba(matrix(frame, self.features))[:, 1]

    def effects(self, frame: pd.DataFrame) -> np.ndarray:
        """Each feature's push on each lead's log-odds, relative to the average training lead."""
        scaler, model = self.pipeline.named_steps["scale"], self.pipeline.named_steps["model"]
        return scaler.transform(matrix(frame, self.features)) * model.coef_[0]

    def coefficients(self) -> dict[str, float]:
        scaler, model = self.pipeline.named_steps["scale"], self.pipeline.named_steps["model"]
        # Per unit of the raw feature, so signs and sizes read in the feature's own terms.
        return {f: float(c / s) for f, c, s in zip(self.features, model.coef_[0], scaler.scale_, strict=True)}

    def reasons(self, frame: pd.DataFrame, up: int = 3, down: int = 2) -> list[list[dict]]:
        effects = self.effects(frame)
        values = matrix(frame, self.features)
        order = np.argsort(-np.abs(effects), axis=1, kind="stable")
        sources = frame["source"].to_numpy()
        out = []
        for i in range(len(frame)):
            ups, downs = [], []
            for j in order[i]:
                effect = effects[i, j]
                if abs(effect) < 0.01 or (len(ups) >= up and len(downs) >= down):
                    break
                side = ups if effect > 0 else downs
                if len(side) >= (up if effect > 0 else down):
                    continue
                text = _describe(self.features[j], float(values[i, j]), sources[i])
                if text is not None:
                    side.append({"feature": self.features[j], "value": round(float(values[i, j]), 4),
                                 "effect": round(float(effect), 4), "text": text})  # fmt: skip
            out.append(sorted(ups + downs, key=lambda r: -abs(r["effect"])))
        return out


def describe(feature: str, value: float, source: str) -> str | None:
    """A feature's value in a salesperson's words (None: not worth saying, e.g. 'not from X')."""
    n = int(round(value))
    if feature.startswith(SOURCE_PREFIX):
        return f"came from {feature[len(SOURCE_PREFIX) :].replace('_', ' ')}" if value else None
    texts = {
        "corporate_email": ("company email address", "free email address (Gmail, Yahoo, ...)"),
        "phone_present": ("left a phone number", "no phone number"),
        "company_present": ("gave a company name", "no company name"),
        "has_campaign": ("came through a campaign", "came in without a campaign"),
        "created_business_hours": ("signed up during business hours", "signed up outside business hours"),
        "created_weekend": ("signed up at the weekend", "signed up on a weekday"),
    }
    if feature in texts:
        return texts[feature][0 if value else 1]
    plural = "" if n == 1 else "es"
    match feature:
        case "touches_first_day":
            return f"{n} touch{plural} in the first day" if n else "no touches in the first day"
        case "touches_before_creation":
            return (
                f"{n} campaign touch{plural} before signing up"
                if n
                else "no campaign touches before signing up"
            )
        case "campaigns_touched":
            return f"engaged with {n} campaign{'s' if n != 1 else ''}" if n else "engaged with no campaign"
        case "hours_since_last_touch":
            if value >= 24 * 30:
                return "never engaged"
            return f"last engaged {value:.0f} h before scoring" if value >= 1 else "engaged within the hour"
        case "source_conversion_rate":
            return f"{source.replace('_', ' ')} leads convert {value:.0%} of the time"
        case "campaign_conversion_rate":
            return f"its campaign's leads convert {value:.0%} of the time"
        case "campaign_cost_per_lead":
            return f"its campaign costs {np.expm1(value):.0f} per lead" if value else None
        case "campaign_ctr":
            return f"its campaign's click-through rate is {value:.1%}" if value else None
    return feature.replace("_", " ")


_describe = lru_cache(maxsize=65_536)(describe)


def dump(scorer: ModelScorer) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(scorer, buffer)
    return buffer.getvalue()


def load(artifact: bytes | None):
    """The registry's artifact back into a scorer; a baseline has none."""
    return BaselineScorer() if artifact is None else joblib.load(io.BytesIO(bytes(artifact)))


# --- training and evaluation -----------------------------------------------------------------------


def evaluate(probability: np.ndarray, label: np.ndarray) -> dict[str, Any]:
    """ROC AUC, PR AUC, Brier score and a calibration table; AUCs are None without both classes."""
    label = np.asarray(label, dtype=int)
    probability = np.asarray(probability, dtype=float)
    both = 0 < label.sum() < len(label)
    bins = np.minimum((probability * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    calibration = [
        {"bin": f"{b / CALIBRATION_BINS:.1f}-{(b + 1) / CALIBRATION_BINS:.1f}",
         "leads": int((bins == b).sum()),
         "predicted": round(float(probability[bins == b].mean()), 4),
         "observed": round(float(label[bins == b].mean()), 4)}
        for b in range(CALIBRATION_BINS) if (bins == b).any()
    ]  # fmt: skip
    return {
        "rows": int(len(label)),
        "positives": int(label.sum()),
        "roc_auc": round(float(roc_auc_score(label, probability)), 4) if both else None,
        "pr_auc": round(float(average_precision_score(label, probability)), 4) if both else None,
        "brier": round(float(brier_score_loss(label, probability)), 4) if len(label) else None,
        "calibration": calibration,
    }


@dataclass
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame
    cutoff: pd.Timestamp | None

    def describe(self) -> dict[str, Any]:
        return {
            "method": "time",
            "cutoff": self.cutoff.isoformat() if self.cutoff is not None else None,
            "train_rows": int(len(self.train)),
            "rows": int(len(self.holdout)),
            "positives": int(self.holdout["label"].sum()) if len(self.holdout) else 0,
            "lead_ids": sorted(self.holdout["lead_id"].tolist()),
        }


def time_split(frame: pd.DataFrame, holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION) -> Split:
    """Labelled leads scored before the cut-off train; the latest `holdout_fraction` are held out."""
    rows = labelled(frame).sort_values(["as_of", "lead_id"], kind="stable")
    if len(rows) < 2:
        return Split(rows, rows.iloc[:0], None)
    cutoff = rows["as_of"].iloc[int(len(rows) * (1 - holdout_fraction))]
    return Split(rows[rows["as_of"] < cutoff], rows[rows["as_of"] >= cutoff], cutoff)


def holdout_rows(frame: pd.DataFrame, holdout: dict[str, Any]) -> pd.DataFrame:
    """The rows of a registry version's holdout, as labelled now."""
    return labelled(frame[frame["lead_id"].isin(set(holdout.get("lead_ids", ())))])


def unseen_by(rows: pd.DataFrame, holdout: dict[str, Any]) -> pd.DataFrame:
    """The `rows` a version with this holdout never trained on (scored at or after its cut-off).
    A champion judged on rows it was fitted to would look better than it is."""
    cutoff = holdout.get("cutoff")
    if not cutoff:
        return rows
    return rows[rows["as_of"] >= pd.Timestamp(cutoff)]


def fit(train: pd.DataFrame, features: list[str]) -> ModelScorer:
    pipeline = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(**MODEL_PARAMS))])
    pipeline.fit(matrix(train, features), train["label"].to_numpy(dtype=int))
    return ModelScorer(pipeline, features)


@dataclass
class Candidate:
    """A trained challenger (or baseline) with its holdout metrics, ready for the registry."""

    scorer: Any
    kind: str
    metrics: dict[str, Any]
    holdout: dict[str, Any]
    training_rows: int
    params: dict[str, Any] = field(default_factory=dict)
    learning_curve: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""

    @property
    def features(self) -> list[str]:
        return list(self.scorer.features)


def train_candidate(
    frame: pd.DataFrame,
    *,
    min_outcomes: int = DEFAULT_MIN_OUTCOMES,
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
) -> Candidate:
    """A model trained on the earlier labelled leads, or the baseline when there are too few."""
    rows = labelled(frame)
    split = time_split(frame, holdout_fraction)
    positives = int(rows["label"].sum()) if len(rows) else 0
    too_few = len(rows) < min_outcomes or positives < 2 or positives > len(rows) - 2
    if too_few or split.train["label"].nunique() < 2 or split.holdout["label"].nunique() < 2:
        note = (
            f"{len(rows)} labelled leads ({positives} won), fewer than the {min_outcomes} a model needs"
            if too_few
            else "the time split leaves one class only on one side"
        )
        return baseline_candidate(frame, note, min_outcomes)

    features = feature_names(frame)
    scorer = fit(split.train, features)
    y = split.holdout["label"].to_numpy(dtype=int)
    metrics = evaluate(scorer.predict(split.holdout), y)
    base = evaluate(BaselineScorer().predict(split.holdout), y)
    metrics.update({f"baseline_{k}": base[k] for k in ("roc_auc", "pr_auc", "brier")})
    metrics["coefficients"] = {k: round(v, 4) for k, v in scorer.coefficients().items()}
    return Candidate(
        scorer,
        "model",
        metrics,
        split.describe(),
        len(split.train),
        {**MODEL_PARAMS, "scaler": "standard", "holdout_fraction": holdout_fraction},
        learning_curve(split, features),
    )


def baseline_candidate(frame: pd.DataFrame, note: str, min_outcomes: int = DEFAULT_MIN_OUTCOMES) -> Candidate:
    """The baseline, measured on every labelled lead (it learns nothing from them)."""
    rows = labelled(frame)
    baseline = BaselineScorer()
    metrics = evaluate(baseline.predict(rows), rows["label"].to_numpy(dtype=int))
    metrics["baseline_roc_auc"], metrics["baseline_pr_auc"] = metrics["roc_auc"], metrics["pr_auc"]
    holdout = {"method": "all_labelled", "cutoff": None, "train_rows": 0, "rows": int(len(rows)),
               "positives": int(metrics["positives"]), "lead_ids": []}  # fmt: skip
    return Candidate(baseline, "baseline", metrics, holdout, 0, {"min_outcomes": min_outcomes}, [], note)


def learning_curve(split: Split, features: list[str]) -> list[dict[str, Any]]:
    """Holdout ROC AUC when trained on the outcomes known up to successive cut-offs: how the
    model improves as outcomes arrive."""
    train = split.train.sort_values("as_of", kind="stable")
    y = split.holdout["label"].to_numpy(dtype=int)
    points = []
    for share in LEARNING_CURVE_POINTS:
        part = train.iloc[: max(int(len(train) * share), 1)]
        if part["label"].nunique() < 2:
            continue
        auc = evaluate(fit(part, features).predict(split.holdout), y)["roc_auc"]
        points.append({"trained_up_to": part["as_of"].max().isoformat(), "training_rows": int(len(part)),
                       "holdout_roc_auc": auc})  # fmt: skip
    return points


@dataclass(frozen=True)
class Decision:
    promote: bool
    text: str


def decide(
    challenger: dict[str, Any],
    champion: dict[str, Any] | None,
    *,
    challenger_kind: str = "model",
    champion_kind: str | None = None,
    min_auc: float = DEFAULT_MIN_AUC,
    tolerance: float = PROMOTION_TOLERANCE,
    challenger_vs_champion: dict[str, Any] | None = None,
) -> Decision:
    """Promote the challenger only if its holdout metrics (`challenger`) clear the floor and it does
    not do worse than the champion on the same rows: `champion` and `challenger_vs_champion` (the
    challenger's metrics on exactly those rows, when they are not its whole holdout).

    A baseline never displaces a model; it becomes champion only where no model is."""
    if challenger_kind == "baseline":
        if champion_kind == "model":
            return Decision(False, "kept the model champion: a baseline only stands in where no model passed")
        return Decision(
            True,
            "baseline champion: no model scores this tenant yet, so scores are the source's conversion rate",
        )
    auc = challenger.get("roc_auc")
    if auc is None:
        return Decision(False, "rejected: the holdout has only one class, so the model cannot be judged")
    if auc < min_auc:
        return Decision(False, f"rejected: holdout ROC AUC {auc:.3f} is below the floor {min_auc:.2f}")
    if champion is None or champion_kind != "model":
        what = "no champion" if champion is None else "the baseline champion"
        return Decision(True, f"promoted: ROC AUC {auc:.3f} clears the floor {min_auc:.2f}; replaces {what}")
    best = champion.get("roc_auc")
    mine = (challenger_vs_champion or challenger).get("roc_auc")
    if best is None or mine is None:
        return Decision(
            False,
            "kept the champion: the holdout rows it never trained on hold one class or none, so the two "
            "models cannot be compared yet",
        )
    if mine < best - tolerance:
        return Decision(
            False,
            f"rejected: ROC AUC {mine:.3f} vs champion {best:.3f} on the same holdout "
            f"(tolerance {tolerance})",
        )
    return Decision(True, f"promoted: ROC AUC {mine:.3f} vs champion {best:.3f} on the same holdout")


def scores(probability: np.ndarray) -> np.ndarray:
    """Probabilities as the 0-100 `ai_score`."""
    return np.rint(np.clip(probability, 0.0, 1.0) * 100).astype(int)
