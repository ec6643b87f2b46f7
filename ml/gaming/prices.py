"""Money: Steam's minor units, the currencies a price may be in, and day-over-day changes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

# Active ISO 4217 codes (2025). Steam prices in about 40 of them; anything else is bad data.
_CODES = """AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN
    BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
    GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW
    KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD
    NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD
    SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED
    VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG"""
ISO_4217 = frozenset(_CODES.split())
CENT = Decimal("0.01")


def minor_to_major(amount: Any) -> Decimal | None:
    """Steam's `initial`/`final` (an integer count of hundredths) as a decimal amount.

    Steam scales every currency by 100, zero-decimal ones included (JPY 4,980 arrives as
    498000), so the divisor is always 100, never the currency's ISO exponent."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        return None
    return (Decimal(amount) / 100).quantize(CENT)


def price_changes(
    previous: Iterable[Mapping[str, Any]], current: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Games whose price, discount or availability differs from the previous snapshot, with
    what changed (`kind`: price_up, price_down, discount_started, discount_ended, listed,
    delisted). Games only in one of the two snapshots are not compared."""
    before = {row["igdb_id"]: row for row in previous}
    changes = []
    for row in current:
        old = before.get(row["igdb_id"])
        if old is None:
            continue
        kinds = []
        if old.get("available") and not row.get("available"):
            kinds.append("delisted")
        elif row.get("available") and not old.get("available"):
            kinds.append("listed")
        old_price, new_price = old.get("final_price"), row.get("final_price")
        if old_price is not None and new_price is not None and old.get("currency") == row.get("currency"):
            if new_price > old_price:
                kinds.append("price_up")
            elif new_price < old_price:
                kinds.append("price_down")
        old_discount, new_discount = old.get("discount_percent") or 0, row.get("discount_percent") or 0
        if new_discount and not old_discount:
            kinds.append("discount_started")
        elif old_discount and not new_discount:
            kinds.append("discount_ended")
        if kinds:
            changes.append(
                {
                    "igdb_id": row["igdb_id"],
                    "name": row.get("name"),
                    "kind": ",".join(kinds),
                    "previous_price": old_price,
                    "price": new_price,
                    "previous_discount": old_discount,
                    "discount_percent": new_discount,
                }
            )
    return changes
