"""The soak's verdict maths, kept pure so it has fast unit tests: memory growth, API error rate,
the ticks a schedule has on a day, and the comparison of table counts with the clean baseline."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from dagster._utils.schedules import cron_string_iterator

# A long-lived process may still settle after the first half (caches, pools): growth in the second
# half below this, or below half the first half's, counts as bounded.
GROWTH_TOLERANCE_MB_PER_MIN = 1.0
MIN_SPAN_S = 600.0  # judge growth over at least ten minutes of samples
API_ERROR_BUDGET = 0.005  # the plan's 99.5% API success target


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per minute; 0 for fewer than 2 points."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    cov = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return cov / var * 60.0


def growth_verdict(
    points: Sequence[tuple[float, float]],
    tolerance_mb_per_min: float = GROWTH_TOLERANCE_MB_PER_MIN,
    min_span_s: float = MIN_SPAN_S,
) -> dict:
    """Memory of one process group over the soak: slopes of the first and second half (by time),
    and whether growth was bounded (the second half flat, or flattening). None: too short to judge
    (a few minutes are start-up: imports, pools and caches filling)."""
    points = sorted(points)
    if len(points) < 4:
        return {"samples": len(points), "first_half_mb_per_min": None, "second_half_mb_per_min": None,
                "bounded": None, "start_mb": None, "end_mb": None, "peak_mb": None}  # fmt: skip
    middle = (points[0][0] + points[-1][0]) / 2
    first = [p for p in points if p[0] <= middle]
    second = [p for p in points if p[0] >= middle]
    s1, s2 = slope_per_minute(first), slope_per_minute(second)
    return {
        "samples": len(points),
        "first_half_mb_per_min": round(s1, 3),
        "second_half_mb_per_min": round(s2, 3),
        "bounded": None
        if points[-1][0] - points[0][0] < min_span_s
        else s2 <= tolerance_mb_per_min or s2 <= 0.5 * s1,
        "start_mb": round(points[0][1], 1),
        "end_mb": round(points[-1][1], 1),
        "peak_mb": round(max(y for _, y in points), 1),
    }


def api_error_rate(counts: Mapping[str, int]) -> float:
    """(5xx answers + connection errors) / all requests; 4xx answers are the API working."""
    total = counts.get("total", 0)
    if not total:
        return 0.0
    return (counts.get("5xx", 0) + counts.get("connection_errors", 0)) / total


def schedule_tick(cron: str, timezone: str, day: datetime, index: int) -> datetime:
    """The `index`-th tick (0-based, wrapping within the day) of a cron schedule on `day` (UTC);
    a schedule that does not fire that day (weekly) gives its next tick after the day's start."""
    start = day.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=day.tzinfo or UTC)
    ticks = cron_string_iterator(start.timestamp() - 1, cron, timezone)
    on_day = []
    for tick in ticks:
        if tick >= start + timedelta(days=1):
            break
        on_day.append(tick)
    if not on_day:
        return next(cron_string_iterator(start.timestamp() - 1, cron, timezone))
    return on_day[index % len(on_day)]


def compare_counts(
    baseline: Mapping[tuple[str, str], int],
    final: Mapping[tuple[str, str], int],
    accumulating: Iterable[str] = (),
) -> dict[str, list[dict]]:
    """(table, tenant) -> rows before and after: `lost` where a table has fewer rows than the clean
    baseline, `extra` where a table that should be deterministic has more. Tables that keep history
    by design (`accumulating`) may grow, never shrink."""
    growing = set(accumulating)
    lost, extra = [], []
    for key in sorted(set(baseline) | set(final)):
        table, tenant = key
        before, after = baseline.get(key, 0), final.get(key, 0)
        row = {"table": table, "tenant": tenant, "baseline": before, "final": after}
        if after < before:
            lost.append(row)
        elif after > before and table not in growing:
            extra.append(row)
    return {"lost": lost, "extra": extra}


def missing_partitions(
    baseline: Mapping[str, set[str]], final: Mapping[str, set[str]]
) -> dict[str, list[str]]:
    """Per asset, the partitions materialized in the baseline that are not materialized at the end."""
    out = {}
    for asset, keys in sorted(baseline.items()):
        gone = sorted(set(keys) - set(final.get(asset, ())))
        if gone:
            out[asset] = gone
    return out


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
