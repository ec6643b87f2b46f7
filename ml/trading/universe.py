"""The tenant's symbol universe (settings.trading.universe) as instruments the sources understand.

A universe entry is a name as the researchers write it:
- crypto: `<COIN>-USD` (BTC-USD), priced by CoinGecko under the coin's id (`COINGECKO_IDS`);
- forex: a six-letter pair of ISO 4217 codes (EURUSD: how many USD one EUR buys), from the
  ECB reference rates (Frankfurter);
- anything else: a stock ticker as Alpha Vantage writes it (AAPL, BRK.B, TSCO.LON, SHOP.TRT).
An entry may also be an object `{symbol, asset_class, source_id}` to name a coin the map lacks
(`{"symbol": "PEPE-USD", "asset_class": "crypto", "source_id": "pepe"}`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ASSET_CLASSES = ("crypto", "stock", "forex")
SOURCE_OF = {"crypto": "coingecko", "stock": "alphavantage", "forex": "frankfurter"}

# Coin symbol -> CoinGecko coin id (ids are not symbols: many coins share a symbol, and the id
# is what every CoinGecko endpoint takes; see /coins/list).
COINGECKO_IDS = {
    "BTC": "bitcoin",
    "ETH": "ethereum",
    "SOL": "solana",
    "BNB": "binancecoin",
    "XRP": "ripple",
    "ADA": "cardano",
    "DOGE": "dogecoin",
    "DOT": "polkadot",
    "AVAX": "avalanche-2",
    "LINK": "chainlink",
    "LTC": "litecoin",
    "MATIC": "matic-network",
    "TRX": "tron",
    "XLM": "stellar",
    "ATOM": "cosmos",
    "UNI": "uniswap",
    "BCH": "bitcoin-cash",
    "USDT": "tether",
    "USDC": "usd-coin",
}
# The ECB publishes reference rates against the euro for these currencies (Frankfurter's list).
ECB_CURRENCIES = frozenset(
    [
        "EUR",
        "USD",
        "JPY",
        "BGN",
        "CZK",
        "DKK",
        "GBP",
        "HUF",
        "PLN",
        "RON",
        "SEK",
        "CHF",
        "ISK",
        "NOK",
        "TRY",
        "AUD",
        "BRL",
        "CAD",
        "CNY",
        "HKD",
        "IDR",
        "ILS",
        "INR",
        "KRW",
        "MXN",
        "MYR",
        "NZD",
        "PHP",
        "SGD",
        "THB",
        "ZAR",
    ]
)
CRYPTO = re.compile(r"^([A-Z0-9]{2,10})-USD$")
FOREX = re.compile(r"^([A-Z]{3})([A-Z]{3})$")
# Alpha Vantage tickers: letters, digits, dots and dashes, with an optional exchange suffix.
STOCK = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,14}$")
MAX_UNIVERSE = 200


class UniverseError(ValueError):
    """A universe entry that cannot be priced: `key` (under settings.trading), what was expected,
    and what was found, so the caller can word the settings error."""

    def __init__(self, key: str, expected: str, got: Any):
        super().__init__(f"settings.trading.{key} must be {expected} (got {got!r})")
        self.key, self.expected, self.got = key, expected, got


@dataclass(frozen=True)
class Instrument:
    symbol: str  # the universe name, the key in core.market_prices
    asset_class: str
    source_id: str  # CoinGecko coin id, Alpha Vantage ticker, or the pair's base currency
    currency: str  # the currency prices are quoted in

    @property
    def source(self) -> str:
        return SOURCE_OF[self.asset_class]

    @property
    def base(self) -> str:
        """Forex: the base currency (EUR of EURUSD)."""
        return self.source_id


def parse_instrument(entry: Any, index: int = 0) -> Instrument:
    key = f"universe[{index}]"
    if isinstance(entry, Mapping):
        return _explicit(entry, index)
    if not isinstance(entry, str) or not entry.strip():
        raise UniverseError(key, "a symbol such as BTC-USD, AAPL or EURUSD", entry)
    symbol = entry.strip().upper()
    if match := CRYPTO.match(symbol):
        coin = match.group(1)
        if coin not in COINGECKO_IDS:
            raise UniverseError(
                key,
                f"a known coin ({', '.join(sorted(COINGECKO_IDS))}) or an object "
                "{symbol, asset_class: crypto, source_id: <CoinGecko id>}",
                entry,
            )
        return Instrument(symbol, "crypto", COINGECKO_IDS[coin], "USD")
    if (match := FOREX.match(symbol)) and {match.group(1), match.group(2)} <= ECB_CURRENCIES:
        base, quote = match.groups()
        if base == quote:
            raise UniverseError(key, "a pair of two different currencies", entry)
        return Instrument(symbol, "forex", base, quote)
    if STOCK.match(symbol):
        return Instrument(symbol, "stock", symbol, "USD")
    raise UniverseError(key, "a symbol such as BTC-USD, AAPL, TSCO.LON or EURUSD", entry)


def _explicit(entry: Mapping, index: int) -> Instrument:
    key = f"universe[{index}]"
    symbol, asset_class, source_id = (entry.get(k) for k in ("symbol", "asset_class", "source_id"))
    if not isinstance(symbol, str) or not symbol.strip():
        raise UniverseError(f"{key}.symbol", "a non-empty name", symbol)
    if asset_class not in ASSET_CLASSES:
        raise UniverseError(f"{key}.asset_class", f"one of {', '.join(ASSET_CLASSES)}", asset_class)
    if source_id is None:
        return parse_instrument(symbol, index)
    if not isinstance(source_id, str) or not re.fullmatch(r"[A-Za-z0-9.\-]{1,60}", source_id):
        raise UniverseError(f"{key}.source_id", "the source's id (letters, digits, dots, dashes)", source_id)
    currency = str(entry.get("currency", "USD")).upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise UniverseError(f"{key}.currency", "an ISO 4217 code", entry.get("currency"))
    if asset_class == "forex" and source_id.upper() not in ECB_CURRENCIES | {currency}:
        raise UniverseError(f"{key}.source_id", "the base currency of the pair", source_id)
    return Instrument(symbol.strip().upper(), asset_class, source_id, currency)


def parse_universe(trading: Any) -> list[Instrument]:
    """settings.trading -> its instruments, in the order given, or a UniverseError."""
    if trading is None:
        trading = {}
    if not isinstance(trading, Mapping):
        raise UniverseError("", "an object", trading)
    universe = trading.get("universe")
    if not isinstance(universe, Sequence) or isinstance(universe, str) or not universe:
        raise UniverseError("universe", "a non-empty list of symbols", universe)
    if len(universe) > MAX_UNIVERSE:
        raise UniverseError("universe", f"at most {MAX_UNIVERSE} symbols", f"{len(universe)} symbols")
    instruments = [parse_instrument(entry, i) for i, entry in enumerate(universe)]
    seen: set[str] = set()
    for i, instrument in enumerate(instruments):
        if instrument.symbol in seen:
            raise UniverseError(f"universe[{i}]", "listed once", instrument.symbol)
        seen.add(instrument.symbol)
    return instruments
