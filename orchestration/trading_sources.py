"""QuantTrade's market-data sources: CoinGecko (crypto), Alpha Vantage TIME_SERIES_DAILY (stocks)
and Frankfurter (ECB reference rates, forex). Each is a thin resource that builds requests and
says what an answer means; retries live in `HttpSourceResource.fetch`, parsing in `ml.trading.bars`,
budgets and rate slots in `ApiLedger` (taken by the caller through `before_attempt`).

Every request is a function of (symbol, the requested days, "today"), and the history length
comes from a fixed ladder, so a replayed run asks exactly what was recorded and a live run asks
for no more history than it needs. "Today" is the replay date in replay mode.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
from pydantic import Field

from orchestration.errors import PlatformError
from orchestration.settings import (
    DEFAULT_REPLAY_DATE,
    ENV_ALPHAVANTAGE_KEY,
    ENV_COINGECKO_KEY,
    ENV_COINGECKO_PLAN,
    ENV_REPLAY_DATE,
)
from orchestration.sources import (
    Attempt,
    HttpSourceResource,
    Reject,
    Retry,
    SourceError,
    json_body,
    retry_after_seconds,
    retry_on_status,
)

# History lengths a request may ask for (days back from today); beyond the last, everything.
HISTORY_LADDER = (7, 30, 90, 365)


def source_today(mode: str) -> date:
    """The day that has not ended yet: the replay date in replay mode (recordings end the day
    before it), else today's UTC date."""
    if mode == "replay":
        return date.fromisoformat(os.environ.get(ENV_REPLAY_DATE) or DEFAULT_REPLAY_DATE)
    return datetime.now(UTC).date()


def ladder_days(first_day: date, today: date) -> int | None:
    """The shortest history on the ladder that reaches back to `first_day`; None = all of it."""
    back = (today - first_day).days
    return next((n for n in HISTORY_LADDER if n >= back), None)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text[:120].split())
    if isinstance(body, dict):
        status = body.get("status")
        if isinstance(status, dict) and status.get("error_message"):
            return f"{status.get('error_code')}: {status['error_message']}"[:200]
        return str(body.get("error") or body.get("message") or body)[:200]
    return str(body)[:120]


# --- CoinGecko ------------------------------------------------------------------------------------

COINGECKO_HOSTS = {
    "": "https://api.coingecko.com/api/v3",
    "demo": "https://api.coingecko.com/api/v3",
    "pro": "https://pro-api.coingecko.com/api/v3",
}
COINGECKO_KEY_HEADERS = {"demo": "x-cg-demo-api-key", "pro": "x-cg-pro-api-key"}
# Coded errors in CoinGecko's status envelope that mean the key or plan is wrong.
COINGECKO_PLAN_ERRORS = {
    10002: "missing API key",
    10005: "the plan does not include this endpoint or parameter",
    10010: "a Pro key on the public host",
    10011: "a Demo key on the Pro host",
}


class CoinGeckoResource(HttpSourceResource):
    """CoinGecko daily bars: `/coins/{id}/ohlc?interval=daily` (the daily candles; `interval` is
    a paid-plan parameter, and Demo/keyless keys are limited to 365 days of history) plus
    `/coins/{id}/market_chart?interval=daily` for the 24-hour volumes. Two requests per coin
    whatever the number of days. A 429 waits Retry-After, or 60 s when CoinGecko sends none."""

    source = "coingecko"
    api_key: str | None = Field(default=None, description=f"Demo or Pro key ({ENV_COINGECKO_KEY}).")
    plan: str | None = Field(default=None, description=f"demo | pro ({ENV_COINGECKO_PLAN}); unset = keyless.")
    vs_currency: str = Field(default="usd")
    min_interval_s: float = Field(
        default=2.0, ge=0, description="Seconds between requests, platform-wide (Demo: ~30 per minute)."
    )
    throttle_pause_s: float = Field(default=60.0, ge=0, description="Wait after a 429 without Retry-After.")

    @property
    def plan_name(self) -> str:
        plan = (self.plan or "").strip().lower()
        if plan not in COINGECKO_HOSTS:
            raise PlatformError(f"{ENV_COINGECKO_PLAN} must be demo or pro (got {self.plan!r})")
        if plan and not self.api_key and self.mode != "replay":
            raise PlatformError(f"{ENV_COINGECKO_PLAN}={plan} needs a key in {ENV_COINGECKO_KEY}")
        return plan

    @property
    def base_url(self) -> str:
        return COINGECKO_HOSTS[self.plan_name]

    def http_client(self, **kwargs) -> httpx.Client:
        plan = self.plan_name
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        # Replay never sends a key anywhere (matching ignores the key headers anyway).
        if plan and self.mode != "replay":
            headers[COINGECKO_KEY_HEADERS[plan]] = self.api_key or ""
        return super().http_client(headers=headers, **kwargs)

    def _classify(self, expect: type) -> Callable[[httpx.Response], Any]:
        def classify(response: httpx.Response) -> Any:
            status = response.status_code
            if status == 200:
                body = json_body(response, "coingecko")
                if not isinstance(body, expect):
                    raise Reject(
                        f"malformed answer from coingecko: expected {expect.__name__}, got {str(body)[:80]!r}"
                    )
                return body
            if status == 429:
                wait = retry_after_seconds(response)
                raise Retry(f"HTTP 429 {_message(response)}", self.throttle_pause_s if wait is None else wait)
            if status == 404:
                raise Reject(f"HTTP 404 coin not found ({_message(response)}): check the coin id")
            code = _error_code(response)
            if status in (400, 401, 403) or code in COINGECKO_PLAN_ERRORS:
                hint = COINGECKO_PLAN_ERRORS.get(code, "")
                raise Reject(
                    f"CoinGecko refused the request (HTTP {status} {_message(response)}"
                    f"{'; ' + hint if hint else ''}): daily candles need a paid plan "
                    f"({ENV_COINGECKO_PLAN}=pro and {ENV_COINGECKO_KEY})"
                )
            retry_on_status(response)
            if status == 408:
                raise Retry("HTTP 408 Request Timeout")
            raise Reject(f"HTTP {status} from coingecko: {_message(response)}")

        return classify

    def history_param(self, first_day: date, today: date) -> str:
        days = ladder_days(first_day, today)
        return "max" if days is None else str(days)

    def daily_bars_answers(
        self,
        client: httpx.Client,
        coin_id: str,
        first_day: date,
        today: date,
        *,
        before_attempt: Callable[[], None] | None = None,
        attempts: list[Attempt],
    ) -> tuple[list, dict]:
        """(ohlc candles, market_chart) covering `first_day` up to yesterday."""
        params = {
            "vs_currency": self.vs_currency,
            "days": self.history_param(first_day, today),
            "interval": "daily",
        }
        answers = []
        for path, expect in (("ohlc", list), ("market_chart", dict)):
            request = client.build_request("GET", f"{self.base_url}/coins/{coin_id}/{path}", params=params)
            answers.append(
                self.fetch(
                    client, request, self._classify(expect), before_attempt=before_attempt, attempts=attempts
                )
            )
        return answers[0], answers[1]


def _error_code(response: httpx.Response) -> int | None:
    try:
        body = response.json()
    except ValueError:
        return None
    status = body.get("status") if isinstance(body, dict) else None
    code = status.get("error_code") if isinstance(status, dict) else None
    return code if isinstance(code, int) else None


def now_of(today: date) -> datetime:
    """Midnight UTC starting `today`: candles that close after it are still forming."""
    return datetime.combine(today, time(), UTC)


# --- Alpha Vantage --------------------------------------------------------------------------------

# `compact` holds the latest 100 trading days: about 145 calendar days; ask for it only when
# every requested day is well inside.
COMPACT_CALENDAR_DAYS = 130


class QuotaSpentError(SourceError):
    """The API's own daily quota is spent: no further call to it can succeed until the next UTC day."""


class DailyQuotaSpent(Exception):  # noqa: N818 - a signal from classify(): stop for the day
    pass


def classify_alphavantage_information(text: str) -> type[Exception]:
    """What an HTTP 200 `{"Information": ...}` means (SOURCES.md §8): Retry for a burst,
    DailyQuotaSpent for the daily quota, Reject for premium features and the demo key; anything
    else is an upstream error (Reject), never "no data"."""
    lower = text.lower()
    if "per second" in lower or "burst" in lower:
        return Retry
    if "per day" in lower or "daily rate limit" in lower:
        return DailyQuotaSpent
    return Reject


class AlphaVantageResource(HttpSourceResource):
    """Alpha Vantage TIME_SERIES_DAILY, one request per ticker: `compact` (the latest 100 trading
    days) when every requested day is recent, `full` otherwise (full is a premium feature on
    current plans: the free tier answers with a premium notice, reported as such). Throttles and
    errors come with HTTP 200 and are told apart by the body's top-level key. Every request is
    counted in the shared ledger before it is sent (`daily_limit`, free tier 25 a day) and spaced
    platform-wide (`min_interval_s`, free tier historically 5 a minute)."""

    source = "alphavantage"
    api_key: str | None = Field(default=None, description=f"API key ({ENV_ALPHAVANTAGE_KEY}).")
    base_url: str = Field(default="https://www.alphavantage.co/query")
    daily_limit: int = Field(default=25, ge=0, description="Requests per UTC day (free tier: 25).")
    min_interval_s: float = Field(
        default=12.0, ge=0, description="Seconds between requests, platform-wide (free tier: 5 per minute)."
    )
    throttle_pause_s: float = Field(default=60.0, ge=0, description="Wait after a per-minute `Note`.")
    burst_pause_s: float = Field(default=1.0, ge=0, description="Wait after a per-second `Information`.")

    def key(self) -> str:
        if self.mode == "replay":
            return "replay"
        if not self.api_key:
            raise PlatformError(f"Alpha Vantage needs a key: set {ENV_ALPHAVANTAGE_KEY} (live mode)")
        return self.api_key

    @staticmethod
    def outputsize(first_day: date, today: date) -> str:
        return "compact" if (today - first_day).days <= COMPACT_CALENDAR_DAYS else "full"

    def classify(self, response: httpx.Response) -> dict:
        status = response.status_code
        if status != 200:
            retry_on_status(response)
            raise Reject(f"HTTP {status} from alphavantage: {_message(response)}")
        body = json_body(response, "alphavantage")
        if not isinstance(body, dict) or not body:
            raise Reject(f"empty or malformed answer from alphavantage: {str(body)[:80]!r}")
        if "Time Series (Daily)" in body:
            return body
        if note := body.get("Note"):
            raise Retry(f"per-minute throttle (HTTP 200 Note): {str(note)[:120]}", self.throttle_pause_s)
        if error := body.get("Error Message"):
            hint = (
                f"; check {ENV_ALPHAVANTAGE_KEY}" if "apikey" in str(error).lower() else "; check the symbol"
            )
            raise Reject(f"Alpha Vantage rejected the call: {str(error)[:160]}{hint}")
        if info := body.get("Information"):
            kind = classify_alphavantage_information(str(info))
            if kind is Retry:
                raise Retry(f"burst throttle (HTTP 200 Information): {str(info)[:120]}", self.burst_pause_s)
            if kind is DailyQuotaSpent:
                raise DailyQuotaSpent(str(info)[:200])
            lower = str(info).lower()
            what = (
                "a premium feature (outputsize=full needs a premium key, or request only the last "
                "~100 trading days)"
                if "premium" in lower
                else f"the demo key (set {ENV_ALPHAVANTAGE_KEY})"
                if "demo" in lower
                else "an unrecognised notice (an upstream error, not 'no data')"
            )
            raise Reject(f"Alpha Vantage answered with {what}: {str(info)[:160]}")
        raise Reject(f"unexpected answer from alphavantage (keys: {', '.join(sorted(body))[:120]})")

    def daily(
        self,
        client: httpx.Client,
        symbol: str,
        first_day: date,
        today: date,
        *,
        before_attempt: Callable[[], None] | None = None,
        attempts: list[Attempt],
    ) -> dict:
        params = {
            "function": "TIME_SERIES_DAILY",
            "symbol": symbol,
            "outputsize": self.outputsize(first_day, today),
            "datatype": "json",
            "apikey": self.key(),
        }
        request = client.build_request("GET", self.base_url, params=params)
        try:
            return self.fetch(
                client, request, self.classify, before_attempt=before_attempt, attempts=attempts
            )
        except DailyQuotaSpent as exc:
            raise QuotaSpentError(
                f"alphavantage: the daily request quota is spent ({exc}); no stock data was "
                "overwritten, the next day's run retries",
                source=self.source,
                attempts=attempts,
                retryable=True,
            ) from None


# --- Frankfurter (ECB) ----------------------------------------------------------------------------


class FrankfurterResource(HttpSourceResource):
    """Frankfurter's ECB reference rates: one time-series request per pair
    (`/{start}..{end}?base=EUR&symbols=USD`), keyless. Rates are published on TARGET working days
    around 16:00 CET; weekends and holidays are absent from a series."""

    source = "frankfurter"
    base_url: str = Field(default="https://api.frankfurter.dev/v1")
    min_interval_s: float = Field(default=0.5, ge=0, description="Seconds between requests (fair use).")

    @staticmethod
    def series_start(first_day: date, today: date) -> date:
        days = ladder_days(first_day, today)
        return date(first_day.year, 1, 1) if days is None else today - timedelta(days=days)

    def classify(self, response: httpx.Response) -> dict:
        status = response.status_code
        if status == 200:
            body = json_body(response, "frankfurter")
            if not isinstance(body, dict) or not isinstance(body.get("rates"), dict):
                raise Reject(f"malformed answer from frankfurter: {str(body)[:80]!r}")
            return body
        if status in (404, 422):
            raise Reject(f"HTTP {status} {_message(response)}: the ECB publishes no such currency pair")
        retry_on_status(response)
        raise Reject(f"HTTP {status} from frankfurter: {_message(response)}")

    def series(
        self,
        client: httpx.Client,
        base: str,
        quote: str,
        first_day: date,
        today: date,
        *,
        before_attempt: Callable[[], None] | None = None,
        attempts: list[Attempt],
    ) -> dict:
        start, end = self.series_start(first_day, today), today - timedelta(days=1)
        request = client.build_request(
            "GET", f"{self.base_url}/{start}..{end}", params={"base": base, "symbols": quote}
        )
        return self.fetch(client, request, self.classify, before_attempt=before_attempt, attempts=attempts)
