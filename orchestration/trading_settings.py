"""A tenant's `settings.trading` as the strategy stages read it: the strategies and parameter
grids of the candidate set (the universe itself is the market-data part's parser).

    trading:
      universe: [BTC-USD, AAPL, EURUSD]
      strategies: [ma_crossover, momentum]          # optional: a subset of the library
      grids:                                        # optional: replace a strategy's values
        ma_crossover: {fast: [10, 20], slow: [50, 100, 200]}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ml.trading.strategies import STRATEGIES, Candidate, Strategy, generate_candidates
from orchestration.tenant_settings import settings_error

MAX_CANDIDATES = 50_000  # a typo in a grid must not start a sweep of millions


@dataclass(frozen=True)
class TradingSettings:
    strategies: dict[str, Strategy]
    grids: dict[str, dict[str, list]]

    def candidates(self, symbols: list[str]) -> list[Candidate]:
        return generate_candidates(symbols, self.grids, self.strategies)


def trading_settings(tenant_id: str, settings: dict[str, Any]) -> TradingSettings:
    """The tenant's strategies and grids (the whole library by default), or a Failure naming the
    bad key."""
    fail = settings_error(tenant_id, "trading")
    trading = settings.get("trading") or {}
    if not isinstance(trading, dict):
        raise fail("", "an object", trading)
    names = trading.get("strategies", list(STRATEGIES))
    if not isinstance(names, list) or not names or any(n not in STRATEGIES for n in names):
        raise fail("strategies", f"a non-empty list drawn from {', '.join(STRATEGIES)}", names)
    strategies = {name: STRATEGIES[name] for name in dict.fromkeys(names)}
    grids = trading.get("grids") or {}
    if not isinstance(grids, dict):
        raise fail("grids", "an object: strategy -> {parameter: [values]}", grids)
    for name, grid in grids.items():
        if name not in strategies:
            raise fail(f"grids.{name}", f"one of the strategies in use ({', '.join(strategies)})", name)
        if not isinstance(grid, dict):
            raise fail(f"grids.{name}", "an object: parameter -> [values]", grid)
    result = TradingSettings(strategies, {k: dict(v) for k, v in grids.items()})
    try:
        count = len(result.candidates(["_"]))
    except ValueError as error:
        raise fail("grids", "parameters of the strategy with lists of numbers", str(error)) from error
    if count == 0:
        raise fail("grids", "grids with at least one valid parameter set", grids)
    if count > MAX_CANDIDATES:
        raise fail("grids", f"at most {MAX_CANDIDATES} candidates per symbol", f"{count} candidates")
    return result


def universe_symbols(settings: dict[str, Any]) -> list[str]:
    """The universe's names (the keys of core.market_prices), in order. An entry is a name or an
    object with a `symbol`; validating them is the market-data asset's job."""
    universe = (settings.get("trading") or {}).get("universe") or []
    names = [entry.get("symbol") if isinstance(entry, dict) else entry for entry in universe]
    return [name.strip().upper() for name in names if isinstance(name, str) and name.strip()]
