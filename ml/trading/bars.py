"""Daily bars from the market-data sources' answers, and the calendars that say which days a
symbol should have a bar on (for gap detection).

A bar is a dict `{day, open, high, low, close, volume}` for one UTC day. Parsers return what the
answer holds; `clean_bars` then drops what the warehouse must not store (duplicate days,
impossible OHLC) and says what it dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

DAY_MS = 86_400_000
AV_SERIES = "Time Series (Daily)"
AV_FIELDS = {
    "open": "1. open",
    "high": "2. high",
    "low": "3. low",
    "close": "4. close",
    "volume": "5. volume",
}


class BarsError(ValueError):
    """An answer without the shape its API documents."""


# --- parsers --------------------------------------------------------------------------------------


def _midnight_day(ms: Any) -> date | None:
    """The UTC day a millisecond timestamp starts, or None if it is not exactly midnight."""
    if isinstance(ms, bool) or not isinstance(ms, int | float) or ms % DAY_MS:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).date()


def parse_coingecko(ohlc: Any, chart: Any, now: datetime) -> tuple[list[dict], int]:
    """`/coins/{id}/ohlc?interval=daily` candles with `/market_chart?interval=daily` volumes.

    CoinGecko stamps a candle with its close time, so the candle stamped D+1 00:00 is day D, and
    the 24-hour volume stamped D+1 00:00 is day D's. A point not on a midnight (the trailing
    "now" point, a candle still forming) or closing after `now` is a partial day: dropped and
    counted. Days without a volume point get volume None."""
    if not isinstance(ohlc, list) or not isinstance(chart, Mapping):
        raise BarsError("CoinGecko: expected an array of candles and a market_chart object")
    volumes_raw = chart.get("total_volumes")
    if not isinstance(volumes_raw, list):
        raise BarsError("CoinGecko market_chart: no total_volumes array")
    now_ms = now.timestamp() * 1000
    volumes: dict[date, float] = {}
    for point in volumes_raw:
        if not isinstance(point, list) or len(point) != 2:
            raise BarsError(f"CoinGecko market_chart: malformed point {point!r}")
        closed = _midnight_day(point[0])
        if closed is not None and point[0] <= now_ms and isinstance(point[1], int | float):
            volumes[closed - timedelta(days=1)] = float(point[1])
    bars, partial = [], 0
    for candle in ohlc:
        if not isinstance(candle, list) or len(candle) != 5:
            raise BarsError(f"CoinGecko ohlc: malformed candle {candle!r}")
        closed = _midnight_day(candle[0])
        if closed is None or candle[0] > now_ms:
            partial += 1
            continue
        day = closed - timedelta(days=1)
        o, h, low, c = (_number(v, "CoinGecko ohlc") for v in candle[1:])
        bars.append({"day": day, "open": o, "high": h, "low": low, "close": c, "volume": volumes.get(day)})
    return bars, partial


def parse_alphavantage(body: Any) -> list[dict]:
    """TIME_SERIES_DAILY: dates are the keys of "Time Series (Daily)", every number a string."""
    series = body.get(AV_SERIES) if isinstance(body, Mapping) else None
    if not isinstance(series, Mapping):
        raise BarsError(f'Alpha Vantage: no "{AV_SERIES}" object in the answer')
    bars = []
    for key, values in series.items():
        try:
            day = date.fromisoformat(key)
        except (TypeError, ValueError):
            raise BarsError(f"Alpha Vantage: {key!r} is not a date") from None
        if not isinstance(values, Mapping):
            raise BarsError(f"Alpha Vantage: the bar of {key} is not an object")
        bar: dict[str, Any] = {"day": day}
        for name, field_name in AV_FIELDS.items():
            if field_name not in values:
                raise BarsError(f"Alpha Vantage: the bar of {key} has no {field_name!r}")
            bar[name] = _number(values[field_name], f"Alpha Vantage {key} {field_name}")
        bars.append(bar)
    return bars


def parse_frankfurter(body: Any, quote: str) -> list[dict]:
    """A Frankfurter time series: one ECB fix a day, so open = high = low = close, no volume."""
    rates = body.get("rates") if isinstance(body, Mapping) else None
    if not isinstance(rates, Mapping):
        raise BarsError("Frankfurter: no rates object in the answer")
    bars = []
    for key, by_currency in rates.items():
        try:
            day = date.fromisoformat(key)
        except (TypeError, ValueError):
            raise BarsError(f"Frankfurter: {key!r} is not a date") from None
        if not isinstance(by_currency, Mapping) or quote not in by_currency:
            raise BarsError(f"Frankfurter: no {quote} rate on {key}")
        rate = _number(by_currency[quote], f"Frankfurter {key}")
        bars.append({"day": day, "open": rate, "high": rate, "low": rate, "close": rate, "volume": None})
    return bars


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise BarsError(f"{where}: {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BarsError(f"{where}: {value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise BarsError(f"{where}: {value!r} is not a finite number")
    return number


@dataclass
class CleanBars:
    bars: list[dict]
    duplicate_days: list[date] = field(default_factory=list)
    invalid: list[dict] = field(default_factory=list)  # {day, reason}


def bar_problem(bar: Mapping) -> str | None:
    """Why a bar cannot be stored (prices must be positive, low <= open/close <= high)."""
    o, h, low, c, v = (bar[k] for k in ("open", "high", "low", "close", "volume"))
    if min(o, h, low, c) <= 0:
        return "a price is not positive"
    if not low <= min(o, c) or not h >= max(o, c):
        return "low/high do not bound open and close"
    if v is not None and v < 0:
        return "negative volume"
    return None


def clean_bars(bars: Iterable[Mapping]) -> CleanBars:
    """Bars sorted by day, one per day. A day the answer holds twice is a duplicate: kept only if
    both bars agree, else dropped (which one is right cannot be told); impossible bars dropped."""
    by_day: dict[date, list[Mapping]] = {}
    for bar in bars:
        by_day.setdefault(bar["day"], []).append(bar)
    result = CleanBars([])
    for day in sorted(by_day):
        candidates = by_day[day]
        if len(candidates) > 1:
            result.duplicate_days.append(day)
            if any(dict(c) != dict(candidates[0]) for c in candidates[1:]):
                result.invalid.append({"day": day, "reason": f"{len(candidates)} different bars for the day"})
                continue
        bar = dict(candidates[0])
        if problem := bar_problem(bar):
            result.invalid.append({"day": day, "reason": problem})
            continue
        result.bars.append(bar)
    return result


# --- calendars ------------------------------------------------------------------------------------


def easter(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (h + m - 7 * ((a + 11 * h + 22 * m) // 451) + 114) // 31
    p = (h + m - 7 * ((a + 11 * h + 22 * m) // 451) + 114) % 31
    return date(year, n, p + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th `weekday` (0 = Monday) of the month; n = -1 for the last."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date | None:
    """NYSE: a holiday on Saturday is observed on Friday, on Sunday on Monday."""
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


# Unscheduled NYSE closures (national days of mourning).
NYSE_SPECIAL_CLOSURES = frozenset({date(2025, 1, 9)})


@cache
def nyse_holidays(year: int) -> frozenset[date]:
    days = {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        easter(year) - timedelta(days=2),  # Good Friday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }
    # New Year's Day on a Saturday is not moved to the Friday before (NYSE rule 7.2).
    if date(year, 1, 1).weekday() != 5:
        days.add(_observed(date(year, 1, 1)))
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth
    return frozenset(days | {d for d in NYSE_SPECIAL_CLOSURES if d.year == year})


@cache
def target_holidays(year: int) -> frozenset[date]:
    """Days the ECB publishes no reference rates on (TARGET2 closing days), weekends aside."""
    e = easter(year)
    return frozenset(
        {
            date(year, 1, 1),
            e - timedelta(days=2),
            e + timedelta(days=1),
            date(year, 5, 1),
            date(year, 12, 25),
            date(year, 12, 26),
        }
    )


def trades_on(asset_class: str, day: date) -> bool:
    """Whether a symbol of `asset_class` should have a bar on `day`: crypto every day, stocks on
    NYSE sessions (non-US tickers follow their own exchange: expect a few false gaps), forex on
    TARGET days."""
    if asset_class == "crypto":
        return True
    if day.weekday() >= 5:
        return False
    if asset_class == "stock":
        return day not in nyse_holidays(day.year)
    if asset_class == "forex":
        return day not in target_holidays(day.year)
    raise ValueError(f"unknown asset class {asset_class!r}")


def expected_days(asset_class: str, start: date, end: date) -> list[date]:
    """The days from `start` to `end` (inclusive) a bar is expected on."""
    return [
        start + timedelta(days=i)
        for i in range((end - start).days + 1)
        if trades_on(asset_class, start + timedelta(days=i))
    ]


def find_gaps(asset_class: str, days: Iterable[date], start: date | None = None, end: date | None = None):
    """Expected days without a bar between `start` and `end` (default: the first and last bar)."""
    present = set(days)
    if not present and (start is None or end is None):
        return []
    start = start or min(present)
    end = end or max(present)
    return [d for d in expected_days(asset_class, start, end) if d not in present]


def gap_ranges(gaps: Iterable[date]) -> list[str]:
    """Missing days as readable ranges: ['2024-03-04', '2024-03-06..2024-03-08']."""
    ranges: list[list[date]] = []
    for day in sorted(gaps):
        if ranges and (day - ranges[-1][1]).days <= 1:
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    return [f"{a}" if a == b else f"{a}..{b}" for a, b in ranges]
