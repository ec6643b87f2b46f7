"""QuantTrade's market-data parsing and source clients, driven through their real httpx clients and
the recorded answers in fixtures/ (coingecko, alphavantage, frankfurter and their errors/). Waits
are recorded instead of slept."""

from datetime import UTC, date, datetime

import pytest

from ml.trading.bars import (
    clean_bars,
    expected_days,
    find_gaps,
    gap_ranges,
    nyse_holidays,
    parse_alphavantage,
    parse_coingecko,
    trades_on,
)
from ml.trading.universe import UniverseError, parse_universe
from orchestration.replay import SECRET_PARAMS
from orchestration.sources import SourceError, describe
from orchestration.trading_sources import (
    AlphaVantageResource,
    CoinGeckoResource,
    FrankfurterResource,
    ladder_days,
    now_of,
    source_today,
)

TODAY = date(2026, 11, 25)  # the replay date
DAY_MS = 86_400_000


def quiet(resource):
    waits: list[float] = []
    object.__setattr__(resource, "_sleep", waits.append)
    return waits


# --- universe -------------------------------------------------------------------------------------


def test_the_universe_maps_each_name_to_its_source():
    coins, stock, lse, fx, explicit = parse_universe(
        {
            "universe": [
                "btc-usd",
                "AAPL",
                "TSCO.LON",
                "EURUSD",
                {"symbol": "PEPE-USD", "asset_class": "crypto", "source_id": "pepe"},
            ]
        }
    )
    assert (coins.symbol, coins.asset_class, coins.source, coins.source_id) == (
        "BTC-USD",
        "crypto",
        "coingecko",
        "bitcoin",
    )
    assert (stock.source, stock.source_id) == ("alphavantage", "AAPL")
    assert (lse.asset_class, lse.source_id) == ("stock", "TSCO.LON")
    assert (fx.source, fx.base, fx.currency) == ("frankfurter", "EUR", "USD")
    assert (explicit.source_id, explicit.symbol) == ("pepe", "PEPE-USD")


@pytest.mark.parametrize(
    ("trading", "key", "fragment"),
    [
        ({"universe": ["FOO-USD"]}, "universe[0]", "known coin"),
        ({"universe": ["AAPL", "AAPL"]}, "universe[1]", "listed once"),
        ({"universe": []}, "universe", "non-empty list"),
        ({"universe": "AAPL"}, "universe", "non-empty list"),
        ({"universe": ["AAPL", "bad symbol!"]}, "universe[1]", "BTC-USD"),
        ({"universe": [{"symbol": "X", "asset_class": "bond"}]}, "universe[0].asset_class", "crypto"),
        (["AAPL"], "", "an object"),
    ],
)
def test_a_bad_universe_names_the_entry(trading, key, fragment):
    with pytest.raises(UniverseError) as error:
        parse_universe(trading)
    assert error.value.key == key and fragment in error.value.expected


# --- calendars and cleaning -----------------------------------------------------------------------


def test_calendars_know_weekends_and_holidays():
    assert date(2025, 11, 27) in nyse_holidays(2025)  # Thanksgiving
    assert date(2024, 3, 29) in nyse_holidays(2024)  # Good Friday
    assert date(2022, 12, 26) in nyse_holidays(2022)  # Christmas on a Sunday, observed Monday
    assert date(2022, 12, 31) not in nyse_holidays(2022) and date(2021, 12, 31) not in nyse_holidays(2022)
    assert trades_on("crypto", date(2025, 12, 25)) and not trades_on("stock", date(2025, 12, 25))
    assert not trades_on("forex", date(2025, 12, 26)) and trades_on("stock", date(2025, 12, 26))
    assert not trades_on("forex", date(2024, 4, 1))  # Easter Monday (TARGET)
    assert len(expected_days("stock", date(2025, 1, 1), date(2025, 12, 31))) == 250  # NYSE's 2025 sessions


def test_gaps_are_expected_days_without_a_bar():
    week = [date(2026, 11, d) for d in (16, 17, 19, 20, 23)]  # Wednesday 18th missing
    assert find_gaps("stock", week) == [date(2026, 11, 18)]
    assert find_gaps("forex", week) == [date(2026, 11, 18)]
    assert find_gaps("crypto", week) == [date(2026, 11, d) for d in (18, 21, 22)]
    assert gap_ranges(find_gaps("crypto", week)) == ["2026-11-18", "2026-11-21..2026-11-22"]
    assert find_gaps("stock", [], date(2026, 11, 23), date(2026, 11, 24)) == [
        date(2026, 11, 23),
        date(2026, 11, 24),
    ]


def test_duplicate_and_impossible_bars_are_dropped_and_reported():
    def bar(day, o=10.0, h=11.0, low=9.0, c=10.5, v=5.0):
        return {"day": date(2026, 11, day), "open": o, "high": h, "low": low, "close": c, "volume": v}

    cleaned = clean_bars([bar(3), bar(2), bar(2), bar(4), bar(4, c=10.6), bar(5, h=10.2), bar(6, low=0)])
    assert [b["day"].day for b in cleaned.bars] == [2, 3]  # sorted; an identical duplicate kept once
    assert [d.day for d in cleaned.duplicate_days] == [2, 4]
    reasons = {i["day"].day: i["reason"] for i in cleaned.invalid}
    assert set(reasons) == {4, 5, 6} and "bound" in reasons[5] and "positive" in reasons[6]


def test_coingecko_candles_are_dated_by_their_day_and_partial_days_dropped():
    midnight = int(datetime(2026, 11, 25, tzinfo=UTC).timestamp() * 1000)
    ohlc = [[midnight - DAY_MS, 1, 2, 0.5, 1.5], [midnight, 1.5, 3, 1, 2], [midnight + 3_600_000, 2, 2, 2, 2]]
    chart = {"total_volumes": [[midnight, 42.0], [midnight + 3_600_000, 7.0]]}
    bars, partial = parse_coingecko(ohlc, chart, now_of(TODAY))
    assert [(b["day"], b["close"], b["volume"]) for b in bars] == [
        (date(2026, 11, 23), 1.5, None),
        (date(2026, 11, 24), 2.0, 42.0),
    ]
    assert partial == 1


def test_alpha_vantage_strings_become_numbers():
    [bar] = parse_alphavantage(
        {
            "Time Series (Daily)": {
                "2026-11-24": {
                    "1. open": "165.5000",
                    "2. high": "166.8900",
                    "3. low": "164.2100",
                    "4. close": "165.7100",
                    "5. volume": "3812455",
                }
            }
        }
    )
    assert bar == {
        "day": date(2026, 11, 24),
        "open": 165.5,
        "high": 166.89,
        "low": 164.21,
        "close": 165.71,
        "volume": 3812455.0,
    }


# --- requests follow the ladder -------------------------------------------------------------------


def test_history_requests_follow_a_fixed_ladder():
    assert source_today("replay") == TODAY
    assert ladder_days(date(2026, 11, 24), TODAY) == 7
    assert ladder_days(date(2026, 10, 1), TODAY) == 90
    assert ladder_days(date(2019, 1, 1), TODAY) is None
    assert AlphaVantageResource.outputsize(date(2026, 8, 1), TODAY) == "compact"
    assert AlphaVantageResource.outputsize(date(2026, 1, 2), TODAY) == "full"
    assert FrankfurterResource.series_start(date(2024, 6, 3), TODAY) == date(2024, 1, 1)
    assert {"apikey", "x_cg_demo_api_key", "x_cg_pro_api_key"} <= SECRET_PARAMS


# --- CoinGecko ------------------------------------------------------------------------------------


def test_coingecko_daily_bars_from_the_recordings():
    resource = CoinGeckoResource()
    attempts = []
    ohlc, chart = resource.daily_bars_answers(
        resource.http_client(), "ethereum", date(2026, 11, 20), TODAY, attempts=attempts
    )
    bars, partial = parse_coingecko(ohlc, chart, now_of(TODAY))
    assert bars[-1]["day"] == date(2026, 11, 24) and partial == 1
    assert all(b["volume"] > 0 for b in bars)
    assert [a.request.split("?")[0].rsplit("/", 1)[1] for a in attempts] == ["ohlc", "market_chart"]
    assert "days=7" in attempts[0].request and "interval=daily" in attempts[0].request


def test_coingecko_429_waits_60_s_without_retry_after_then_succeeds():
    resource = CoinGeckoResource()
    waits = quiet(resource)
    attempts = []
    ohlc, _ = resource.daily_bars_answers(
        resource.http_client(), "solana", date(2026, 11, 24), TODAY, attempts=attempts
    )
    assert waits == [60.0] and [a.status for a in attempts] == [429, 200, 200] and ohlc
    assert "exceeded the Rate Limit" in attempts[0].body


@pytest.mark.parametrize(
    ("coin", "fragment"),
    [
        ("not-a-coin", "coin not found"),
        ("cardano", "10005"),
        ("dogecoin", "malformed response body"),
    ],
)
def test_coingecko_errors_that_retrying_cannot_fix(coin, fragment):
    resource = CoinGeckoResource()
    waits = quiet(resource)
    with pytest.raises(SourceError) as error:
        resource.daily_bars_answers(resource.http_client(), coin, date(2026, 11, 24), TODAY, attempts=[])
    assert fragment in str(error.value) and not error.value.retryable and waits == []


def test_coingecko_pro_plan_uses_the_pro_host_and_header():
    resource = CoinGeckoResource(mode="live", plan="pro", api_key="k-123")
    assert resource.base_url.startswith("https://pro-api.coingecko.com")
    assert resource.http_client().headers["x-cg-pro-api-key"] == "k-123"
    with pytest.raises(Exception, match="COINGECKO_API_KEY"):
        CoinGeckoResource(mode="live", plan="demo").http_client()


# --- Alpha Vantage --------------------------------------------------------------------------------


def _av(symbol, first=date(2026, 11, 24), **kwargs):
    resource = AlphaVantageResource(min_interval_s=0, **kwargs)
    waits = quiet(resource)
    attempts = []
    try:
        return (
            resource.daily(resource.http_client(), symbol, first, TODAY, attempts=attempts),
            waits,
            attempts,
        )
    except SourceError as exc:
        return exc, waits, attempts


def test_alpha_vantage_note_in_http_200_is_retried_after_a_minute():
    body, waits, attempts = _av("IBM")
    assert len(parse_alphavantage(body)) == 100 and waits == [60.0]
    assert [a.status for a in attempts] == [200, 200] and "Note" in attempts[0].body


def test_alpha_vantage_burst_information_is_retried_after_a_second():
    body, waits, _ = _av("TSLA")
    assert parse_alphavantage(body) and waits == [1.0]


@pytest.mark.parametrize(
    ("symbol", "first", "retryable", "fragment"),
    [
        ("NVDA", date(2026, 11, 24), True, "daily request quota is spent"),
        ("IBM", date(2020, 1, 2), False, "premium feature"),
        ("BADSYM", date(2026, 11, 24), False, "check the symbol"),
        ("ZZZZ", date(2026, 11, 24), False, "empty or malformed"),
        ("GOOG", date(2026, 11, 24), False, "upstream error, not 'no data'"),
        ("AMZN", date(2026, 11, 24), False, "malformed response body"),
    ],
)
def test_alpha_vantage_errors_in_http_200_are_classified(symbol, first, retryable, fragment):
    error, waits, attempts = _av(symbol, first)
    assert isinstance(error, SourceError) and fragment in str(error)
    assert error.retryable is retryable and waits == [] and len(attempts) == 1  # never retried in-run


def test_alpha_vantage_key_is_required_live_and_never_described():
    with pytest.raises(Exception, match="ALPHAVANTAGE_API_KEY"):
        AlphaVantageResource(mode="live").key()
    resource = AlphaVantageResource(mode="live", api_key="secret-key")
    request = resource.http_client().build_request(
        "GET", resource.base_url, params={"apikey": resource.key()}
    )
    assert "secret-key" not in describe(request)


# --- Frankfurter ----------------------------------------------------------------------------------


def test_frankfurter_series_and_unknown_currency():
    resource = FrankfurterResource()
    body = resource.series(resource.http_client(), "EUR", "USD", date(2026, 11, 20), TODAY, attempts=[])
    assert body["base"] == "EUR" and "2026-11-24" in body["rates"] and "2026-11-22" not in body["rates"]
    with pytest.raises(SourceError, match="no such currency pair") as error:
        resource.series(resource.http_client(), "XAU", "USD", date(2026, 11, 20), TODAY, attempts=[])
    assert not error.value.retryable
