"""The validation stages' rules: the in-sample and forward windows, each stage's criteria, the
backtest-vs-forward gap, and how the approval queue moves when the stages are re-run.

Windows (walk-forward): the last `holdout_days` of history are never seen in-sample. The
in-sample window starts `warmup_days` after the first bar (so every indicator of the grid is
defined when trading starts) and ends `holdout_days` before the last bar; the forward window
starts `gap_days` (an embargo) after the in-sample end and runs to the last bar.

performance_gap: the forward test's relative shortfall against the backtest on the compared
metric, (backtest - forward) / |backtest|: 0 means the forward window did as well, 0.15 means
15 % worse (the plan's target is a gap within 15 %), negative means it did better. Undefined
(NaN) when either value is undefined or the backtest value is 0.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import numpy as np
import pandas as pd

PLAN_GAP_TARGET = 0.15


@dataclass(frozen=True)
class Window:
    start: date
    end: date


def in_sample_window(
    first_day: date, last_day: date, *, warmup_days: int, holdout_days: int, in_sample_days: int | None = None
) -> Window:
    start = first_day + timedelta(days=warmup_days)
    end = last_day - timedelta(days=holdout_days)
    if in_sample_days is not None:
        start = max(start, end - timedelta(days=in_sample_days - 1))
    if start > end:
        raise ValueError(
            f"history {first_day}..{last_day} is too short for {warmup_days} warm-up days and "
            f"{holdout_days} held-out days: no in-sample window is left"
        )
    return Window(start, end)


def forward_window(in_sample_end: date, last_day: date, *, gap_days: int) -> Window:
    start = in_sample_end + timedelta(days=gap_days + 1)
    if start > last_day:
        raise ValueError(
            f"no forward window: the in-sample window ends {in_sample_end}, the embargo of {gap_days} days "
            f"reaches past the last bar {last_day}"
        )
    return Window(start, last_day)


@dataclass(frozen=True)
class Rule:
    """One criterion: `metric` must be at least (min) or at most (max) `limit`. An undefined
    value (NaN) fails unless `undefined_passes` (e.g. a profit factor without losing trades)."""

    metric: str
    bound: Literal["min", "max"]
    limit: float
    undefined_passes: bool = False

    def failing(self, values: pd.Series) -> pd.Series:
        values = values.astype(float)
        undefined = values.isna()
        outside = values < self.limit if self.bound == "min" else values > self.limit
        return (outside & ~undefined) | (undefined & (not self.undefined_passes))

    def reason(self, value: float) -> str:
        if value is None or np.isnan(value):
            return f"{self.metric} undefined"
        sign = "<" if self.bound == "min" else ">"
        return f"{self.metric} {value:.4g} {sign} {self.bound} {self.limit:g}"


def judge(frame: pd.DataFrame, rules: Sequence[Rule]) -> tuple[pd.Series, pd.Series]:
    """(passed, fail_reasons) per row of `frame`, vectorised per rule."""
    reasons = pd.Series([[] for _ in range(len(frame))], index=frame.index, dtype=object)
    for rule in rules:
        failing = rule.failing(frame[rule.metric])
        for key in failing[failing].index:
            reasons[key].append(rule.reason(frame.at[key, rule.metric]))
    return reasons.map(len).eq(0), reasons


def performance_gap(backtest: np.ndarray | pd.Series, forward: np.ndarray | pd.Series) -> np.ndarray:
    b = np.asarray(backtest, dtype=float)
    f = np.asarray(forward, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, (b - f) / np.abs(b), np.nan)


def share(mask: pd.Series | np.ndarray) -> float | None:
    """The share of True in `mask` (None for an empty one: no rate to report)."""
    mask = np.asarray(mask, dtype=bool)
    return float(mask.mean()) if mask.size else None


# --- the approval queue --------------------------------------------------------------------------

OPEN = ("pending", "approved")


@dataclass(frozen=True)
class QueueChange:
    candidate_id: str
    status: str  # the new status
    reason: str | None


def plan_queue(
    current: Mapping[str, str], passing: Collection[str], why_not: Mapping[str, str]
) -> list[QueueChange]:
    """How the queue moves after a run of the stages. `current`: candidate -> stored status;
    `passing`: candidates that passed every stage now; `why_not`: why a candidate does not.

    - passing and new, or passing again after a withdrawal: pending (a fresh human decision);
    - passing and pending: stays pending (its snapshot is refreshed by the caller);
    - approved or rejected and passing: untouched, a human decided;
    - pending or approved and no longer passing: withdrawn, with the reason;
    - rejected or withdrawn and not passing: untouched.
    """
    changes = []
    for cid in sorted(set(passing)):
        status = current.get(cid)
        if status is None:
            changes.append(QueueChange(cid, "pending", None))
        elif status == "withdrawn":
            changes.append(QueueChange(cid, "pending", "passes every stage again"))
        elif status == "pending":
            changes.append(QueueChange(cid, "pending", None))
    for cid, status in sorted(current.items()):
        if status in OPEN and cid not in passing:
            changes.append(QueueChange(cid, "withdrawn", why_not.get(cid, "no longer passes every stage")))
    return changes
